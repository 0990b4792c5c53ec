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
    head = b"".join(np.ascontiguousarray(w, dtype=np.uint64).tobytes() for w in words)
    received = ctx.all_to_all(head + b"".join(s.ring.to_bytes(s.data) for s in shares), label)
    opened_words, pos = [], 0
    for w in words:
        size = 8 * int(w.size)
        total = w.copy()
        for rank, data in enumerate(received):
            if rank != ctx.rank:
                total ^= np.frombuffer(data[pos : pos + size], dtype=np.uint64).reshape(w.shape)
        opened_words.append(total)
        pos += size
    opened_shares = []
    for s in shares:
        size = s.ring.nbytes(s.shape)
        theirs = [s.ring.from_bytes(data[pos : pos + size], s.shape) for rank, data in enumerate(received)
                  if rank != ctx.rank]
        opened_shares.append(reconstruct([s, *(Share(t, s.ring, s.frac) for t in theirs)]))
        pos += size
    return opened_words, opened_shares


def reveal(ctx: PartyContext, share: Share) -> np.ndarray:
    """Open one share and decode it to float64 with its own scale."""
    (value,) = open_arith(ctx, [share], "reveal")
    fixed = ctx.fixed if share.ring == ctx.fixed.ring else ctx.precise
    return fixed.decode(value, share.frac)


def reveal_int(ctx: PartyContext, share: Share) -> np.ndarray:
    """Open one share holding integers (frac 0) exactly."""
    (value,) = open_arith(ctx, [share], "reveal")
    return share.ring.to_signed(value)
