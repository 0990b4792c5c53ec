"""Boolean gates on XOR-shared bits, and conversion of a shared bit to arithmetic.

Comparisons run a small binary circuit on the bits of a masked value. Bits are packed
64 to a uint64 word and XOR-shared, so one AND of two words evaluates 64 gates at once
and a whole level of a circuit costs one round whatever the number of elements. The
circuits use the *bit-sliced* layout: row i of an array holds bit i of every element,
64 elements to a word (`to_slices` / `from_slices` convert by 64x64 bit transposes), so
a circuit that halves its width halves its words too, and no bit on the wire is idle.

* `and_many`: several word-wise ANDs in one round with boolean Beaver triples
  (Beaver 1991, over GF(2)^64).
* `row_to_arith`: a row of XOR-shared bits to additive shares in a ring, with dealer
  "daBits" — random bits given in both forms (Rotaru & Wood, "MArBled Circuits",
  INDOCRYPT 2019).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.ring import Ring
from mpc.share import Share
from protocols.opening import open_xor


def and_many(ctx: PartyContext, pairs: Sequence[tuple[np.ndarray, np.ndarray]], label: str = "and") -> list[np.ndarray]:
    """Word-wise [x AND y] for several pairs of XOR-shared word arrays, in one round.

    With a boolean triple ([a], [b], [c = a AND b]) per word:
    1. Open d = x XOR a and e = y XOR b (all pairs batched in one message per peer).
    2. [z] = [c] XOR (d AND [b]) XOR (e AND [a]) XOR (d AND e, party 0 only).
    """
    if not pairs:
        return []
    pending = PendingAnd.begin(ctx, pairs)
    return pending.finish(ctx, open_xor(ctx, pending.words(), label))


class PendingAnd:
    """`and_many` in two halves, for protocols that open other values in the same round:
    `begin` takes the triple, `words` are what to open, `finish` takes their openings."""

    def __init__(self, triple: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray, shapes: list[tuple]) -> None:
        self._t, self._x, self._y, self._shapes = triple, x, y, shapes

    @staticmethod
    def begin(ctx: PartyContext, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> PendingAnd:
        x = np.concatenate([p[0] for p in pairs], axis=None) if pairs else np.zeros(0, np.uint64)
        y = np.concatenate([p[1] for p in pairs], axis=None) if pairs else np.zeros(0, np.uint64)
        t = ctx.dealer(MaterialRequest("bool_triple", {"shape": [int(x.size)]})) if pairs else {}
        return PendingAnd(t, x, y, [p[0].shape for p in pairs])

    def words(self) -> list[np.ndarray]:
        """The masked words to open: x XOR a, y XOR b."""
        if not self._shapes:
            return []
        return [self._x ^ self._t["a"], self._y ^ self._t["b"]]

    def finish(self, ctx: PartyContext, opened: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The products, shaped like the pairs' first factors, from the opened d and e."""
        if not self._shapes:
            return []
        d, e = opened
        a, b = self._t["a"], self._t["b"]
        z = self._t["c"] ^ (d & b) ^ (e & a)  # c (the dealer's part) read after the opening
        if ctx.is_leader:
            z ^= d & e
        out, pos = [], 0
        for shape in self._shapes:
            size = int(np.prod(shape, dtype=np.int64))
            out.append(z[pos : pos + size].reshape(shape))
            pos += size
        return out


def lanes(n: int) -> int:
    """Words in one bit-sliced row of n elements (64 elements to a word)."""
    return -(-n // 64)


_MASKS = tuple((j, np.uint64(sum(1 << b for b in range(64) if not b & j))) for j in (32, 16, 8, 4, 2, 1))
"""Per transposition step: the half-width j and the mask of the bits whose index has bit j clear."""


def _transpose64(a: np.ndarray) -> np.ndarray:
    """Transpose 64x64 bit blocks: a has shape (64, ...); bit j of row i of the result is bit i of row j.

    Swap the off-diagonal halves, then recurse on quarters (Hacker's Delight 7-3), all blocks
    at once: six steps of shifts and masks. At step j the rows with bit j clear and their partners
    j further on are two strided views of one reshaped copy, so no step gathers rows.
    """
    a = a.copy()  # C-contiguous, so the reshapes below are views of it
    rest = a.shape[1:]
    for j, low in _MASKS:
        pairs = a.reshape(64 // (2 * j), 2, j, *rest)
        top, bottom = pairs[:, 0], pairs[:, 1]
        sj = np.uint64(j)
        t = ((top >> sj) ^ bottom) & low
        bottom ^= t
        top ^= t << sj
    return a


def to_slices(words: np.ndarray) -> np.ndarray:
    """Per-element words, shape (n, w), to bit-sliced rows, shape (64 w, lanes(n)).

    Row i holds bit i of every element, element e in lane e mod 64 of word e // 64, so
    one word-wise gate on a row evaluates the same gate for 64 elements.
    """
    n, w = words.shape
    m = lanes(n)
    padded = np.zeros((m * 64, w), dtype=np.uint64)
    padded[:n] = words
    blocks = padded.reshape(m, 64, w).transpose(1, 2, 0)  # (64 elements, w words, m blocks)
    return _transpose64(blocks).transpose(1, 0, 2).reshape(w * 64, m)


def from_slices(rows: np.ndarray, n: int) -> np.ndarray:
    """Bit-sliced rows, shape (b, lanes(n)), back to per-element words, shape (n, ceil(b / 64))."""
    b, m = rows.shape
    w = -(-b // 64)
    padded = np.zeros((64 * w, m), dtype=np.uint64)
    padded[:b] = rows
    parts = _transpose64(padded.reshape(w, 64, m).transpose(1, 0, 2))  # (64 elements, w words, m blocks)
    return np.ascontiguousarray(parts.transpose(2, 0, 1).reshape(m * 64, w)[:n])


def pack_lanes(bits: np.ndarray) -> np.ndarray:
    """0/1 integers of n elements to one bit-sliced row of lanes(n) words."""
    flat = np.asarray(bits).astype(np.uint8).ravel()
    out = np.zeros(lanes(flat.size), dtype=np.uint64)
    packed = np.packbits(flat, bitorder="little")
    out.view(np.uint8)[: packed.size] = packed
    return out


def unpack_lanes(row: np.ndarray, n: int) -> np.ndarray:
    """One bit-sliced row back to n 0/1 integers (uint64)."""
    return np.unpackbits(np.ascontiguousarray(row, dtype=np.uint64).view(np.uint8), bitorder="little")[:n].astype(
        np.uint64
    )


def not_public(ctx: PartyContext, x: np.ndarray) -> np.ndarray:
    """[NOT x] for XOR-shared words (party 0 flips its share)."""
    return ~x if ctx.is_leader else x


def row_to_arith(
    ctx: PartyContext, row: np.ndarray, n: int, ring: Ring, dabit_row: np.ndarray, dabit_arith: np.ndarray
) -> Share:
    """A bit-sliced row of n XOR-shared bits to additive 0/1 shares in `ring`, shape (n,). One round.

    With daBits laid out as a row (`dabit_row`) and additively (`dabit_arith`): open
    e = b XOR s (n bits on the wire), then [b] = e + [s] - 2 e [s].
    """
    (e,) = open_xor(ctx, [row ^ dabit_row], "b2a")
    return Share(from_opened_bit(ctx, unpack_lanes(e, n), ring, dabit_arith), ring, 0)


def from_opened_bit(ctx: PartyContext, e: np.ndarray, ring: Ring, s_arith: np.ndarray) -> np.ndarray:
    """[b] = e + [s] - 2 e [s] for public bits e (0/1 words) and additive [s]."""
    e_ring = ring.reduce(e.astype(np.uint64)) if ring.native else ring.reduce(e.astype(object))
    one_minus_2e = ring.sub(ring.constant(1), ring.lshift(e_ring, 1))
    out = ring.mul(s_arith, one_minus_2e)
    if ctx.is_leader:
        out = ring.add(out, e_ring)
    return out
