"""Opening secrets: every opening of a round travels in one message per peer.

Opening is where shares stop being private, so protocols open only masked values
(x - a, x + r) and the final result. `open_arith` opens any number of arithmetic shares
(of either ring) in one round; `open_xor` does the same for XOR-shared bit-words, and
`open_mixed` both kinds in one message.
Batching is the point: rounds, not bytes, dominate on a real network (CrypTen's
`reveal_batch`, MP-SPDZ's merging of opens per depth).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share, reconstruct


def open_arith(ctx: PartyContext, shares: Sequence[Share], label: str = "open") -> list[np.ndarray]:
    """Reconstruct every secret in `shares` (one round, one message per peer).

    1. Each party concatenates its shares' bytes and sends them to every peer.
    2. Each party adds the n shares of each secret in its ring.
    """
    return open_mixed(ctx, [], shares, label)[1]


def open_xor(ctx: PartyContext, words: Sequence[np.ndarray], label: str = "open-xor") -> list[np.ndarray]:
    """Reconstruct XOR-shared uint64 bit-words (one round)."""
    return open_mixed(ctx, words, [], label)[0]


def open_mixed(
    ctx: PartyContext, words: Sequence[np.ndarray], shares: Sequence[Share], label: str = "open-mixed"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Reconstruct XOR-shared words and arithmetic shares together, in one round.

    For protocols that interleave boolean and arithmetic steps: the openings of both
    kinds that a round needs travel in one message per peer instead of two rounds.
    """
    payload = _payload(words, shares)
    received = ctx.exchange({p: payload for p in ctx.peers}, ctx.peers, label)  # one round, as all_to_all
    views = {rank: memoryview(data).cast("B") for rank, data in received.items()}
    pos = 8 * sum(int(w.size) for w in words)  # the words lead every message: XORed in one pass
    flat = np.frombuffer(memoryview(payload).cast("B")[:pos], dtype=np.uint64).copy()
    for data in views.values():
        flat ^= np.frombuffer(data[:pos], dtype=np.uint64)
    opened_words, at = [], 0
    for w in words:
        opened_words.append(flat[at : at + w.size].reshape(np.shape(w)))
        at += w.size
    opened_shares = []
    for s in shares:
        size = s.ring.nbytes(s.shape)
        if s.ring.native:  # the peers' shares read in place, added into one fresh array
            total = s.data + np.frombuffer(views[ctx.peers[0]][pos : pos + size], dtype=np.uint64).reshape(s.shape)
            for rank in ctx.peers[1:]:
                total += np.frombuffer(views[rank][pos : pos + size], dtype=np.uint64).reshape(s.shape)
            opened_shares.append(total)
        else:
            theirs = [s.ring.from_bytes(views[rank][pos : pos + size], s.shape) for rank in ctx.peers]
            opened_shares.append(reconstruct([s, *(Share(t, s.ring, s.frac) for t in theirs)]))
        pos += size
    return opened_words, opened_shares


def _payload(words: Sequence[np.ndarray], shares: Sequence[Share]) -> bytes | memoryview:
    """This party's message: the words' bytes, then the shares' bytes, in order.

    Uint64 data is copied once, into one array whose buffer is the message (no `tobytes`, no
    joins); arrays already laid end to end in one buffer (`packed`) are sent with no copy at all.
    """
    arrays = [np.asarray(w, dtype=np.uint64) for w in words]
    if all(s.ring.native for s in shares):
        arrays += [s.data for s in shares]
        whole = _contiguous_run(arrays)
        if whole is not None:
            return whole
        flat = np.concatenate(arrays, axis=None) if arrays else np.empty(0, dtype=np.uint64)
        return flat.data.cast("B")
    return b"".join([*(a.tobytes() for a in arrays), *(s.ring.to_bytes(s.data) for s in shares)])


def packed(ring: Ring, n: int, parts: int) -> list[np.ndarray]:
    """`parts` empty vectors of `n` elements laid end to end in one buffer: shares computed into them
    (`np.subtract(x, a, out=...)`) are opened without being copied into a message first."""
    whole = np.empty(n * parts, dtype=ring.dtype)
    return [whole[i * n : (i + 1) * n] for i in range(parts)]


def _contiguous_run(arrays: Sequence[np.ndarray]) -> memoryview | None:
    """The bytes of `arrays` as one view when they lie end to end in one buffer, in order; else None."""
    if not arrays or any(not a.flags.c_contiguous for a in arrays):
        return None
    owner = arrays[0] if len(arrays) == 1 else arrays[0].base
    if not isinstance(owner, np.ndarray) or not owner.flags.c_contiguous:
        return None
    origin = owner.__array_interface__["data"][0]
    start = pos = arrays[0].__array_interface__["data"][0]
    for a in arrays:
        if a.__array_interface__["data"][0] != pos or (len(arrays) > 1 and a.base is not owner):
            return None
        pos += a.nbytes
    return owner.data.cast("B")[start - origin : pos - origin]


def reveal(ctx: PartyContext, share: Share) -> np.ndarray:
    """Open one share and decode it to float64 with its own scale."""
    (value,) = open_arith(ctx, [share], "reveal")
    fixed = ctx.fixed if share.ring == ctx.fixed.ring else ctx.precise
    return fixed.decode(value, share.frac)


def reveal_int(ctx: PartyContext, share: Share) -> np.ndarray:
    """Open one share holding integers (frac 0) exactly."""
    (value,) = open_arith(ctx, [share], "reveal")
    return share.ring.to_signed(value)
