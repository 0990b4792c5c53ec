"""Boolean gates on XOR-shared, bit-packed words, and conversion of a shared bit to arithmetic.

Comparisons run a small binary circuit on the bits of a masked value. Bits are packed 64
to a uint64 word and XOR-shared, so one AND of two words evaluates 64 gates at once and a
whole level of a circuit costs one round whatever the number of elements.

* `and_many`: several word-wise ANDs in one round with boolean Beaver triples
  (Beaver 1991, over GF(2)^64).
* `bit_to_arith`: an XOR-shared bit (bit 0 of a word) to an additive share in a ring, with
  a dealer "daBit" — a random bit given in both forms (Rotaru & Wood, "MArBled Circuits",
  INDOCRYPT 2019).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.ring import Ring
from mpc.share import Share
from protocols.opening import open_xor

ONE = np.uint64(1)


def and_many(ctx: PartyContext, pairs: Sequence[tuple[np.ndarray, np.ndarray]], label: str = "and") -> list[np.ndarray]:
    """Word-wise [x AND y] for several pairs of XOR-shared word arrays, in one round.

    With a boolean triple ([a], [b], [c = a AND b]) per word:
    1. Open d = x XOR a and e = y XOR b (all pairs batched in one message per peer).
    2. [z] = [c] XOR (d AND [b]) XOR (e AND [a]) XOR (d AND e, party 0 only).
    """
    if not pairs:
        return []
    sizes = [int(x.size) for x, _ in pairs]
    x = np.concatenate([p[0].ravel() for p in pairs])
    y = np.concatenate([p[1].ravel() for p in pairs])
    t = ctx.dealer(MaterialRequest("bool_triple", {"shape": [int(x.size)]}))
    a, b, c = t["a"], t["b"], t["c"]
    d, e = open_xor(ctx, [x ^ a, y ^ b], label)
    z = c ^ (d & b) ^ (e & a)
    if ctx.is_leader:
        z ^= d & e
    out, pos = [], 0
    for (px, _), size in zip(pairs, sizes):
        out.append(z[pos : pos + size].reshape(px.shape))
        pos += size
    return out


def xor_public(ctx: PartyContext, x: np.ndarray, public: np.ndarray) -> np.ndarray:
    """[x XOR c] for public words c (party 0 applies it)."""
    return x ^ public if ctx.is_leader else x


def bit_to_arith(ctx: PartyContext, bits: np.ndarray, ring: Ring, dabit_s: np.ndarray, dabit_a: np.ndarray) -> Share:
    """Bit 0 of XOR-shared words to additive shares of 0/1 in `ring`. One round.

    With a daBit (s as an XOR-shared bit and [s] additive):
    1. Open e = b XOR s.
    2. [b] = e + [s] - 2 e [s].
    """
    (e,) = open_xor(ctx, [(bits ^ dabit_s) & ONE], "b2a")
    return Share(from_opened_bit(ctx, e, ring, dabit_a), ring, 0)


def from_opened_bit(ctx: PartyContext, e: np.ndarray, ring: Ring, s_arith: np.ndarray) -> np.ndarray:
    """[b] = e + [s] - 2 e [s] for public bits e (0/1 words) and additive [s]."""
    e_ring = ring.reduce(e.astype(np.uint64)) if ring.native else ring.reduce(e.astype(object))
    one_minus_2e = ring.sub(ring.constant(1), ring.lshift(e_ring, 1))
    out = ring.mul(s_arith, one_minus_2e)
    if ctx.is_leader:
        out = ring.add(out, e_ring)
    return out
