"""Comparisons of shared values: sign, less-than, equality — exact, in a constant number of rounds.

Both tests open the value masked by a dealer-made random r whose bits the parties also
hold (XOR-shared), then run a log-depth binary circuit on the public masked value and the
shared bits of r. Nothing is probabilistic: the sign test is exact for every x in
(-2^(k-1), 2^(k-1)), so a < b is exact whenever |a - b| < 2^(k-1) (for fixed point
in Z_2^64 with f = 20, |a - b| < 2^43 ~ 8.8e12).

Rounds: 8 in Z_2^64 (open, 6 circuit levels, bit conversion); 9 in Z_2^128.

References: Damgard, Fitzi, Kiltz, Nielsen, Toft, "Unconditionally Secure Constant-Rounds
Multi-Party Computation for Equality, Comparison, Bits and Exponentiation", TCC 2006
(comparison from the bits of a mask); Escudero et al., CRYPTO 2020 (edaBits: a mask in
both domains); Kogge & Stone (1973) for the parallel-prefix comparator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.share import Share
from protocols.arith import add_public
from protocols.boolean import and_many, bit_to_arith
from protocols.masks import to_words, words_per_element
from protocols.opening import open_arith

_TOP = np.uint64(1 << 63)
_ALL = np.uint64((1 << 64) - 1)
_LEVELS = (1, 2, 4, 8, 16, 32)


def _mask(ctx: PartyContext, x: Share) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Open c = x + r (one round); return c's bit-words and the rest of the mask."""
    ring = x.ring
    flat = x.data.ravel()
    mat = ctx.dealer(MaterialRequest("cmp_mask", {"shape": [int(flat.size)], "ring": ring.bits}))
    (c,) = open_arith(ctx, [Share(ring.add(flat, mat["r"]), ring)], "cmp-open")
    return to_words(ring, c), mat


def ltz(ctx: PartyContext, x: Share) -> Share:
    """[x < 0] as a 0/1 integer share in x's ring (the sign bit of x).

    With c = x + r opened and c', r' the low k-1 bits:
    1. msb(x) = msb(c) XOR msb(r) XOR [c' < r']   (borrow out of the low bits).
    2. [c' < r'] by a parallel-prefix circuit over the words: per bit, g = r AND NOT c
       ("r wins here") and p = NOT (r XOR c) ("tie"); each level combines a span with the
       span above it, G <- G_hi XOR (P_hi AND G), P <- P_hi AND P (two ANDs, one round);
       bit k-1 is made neutral (g = 0, p = 1). Six levels per word, one more across words.
    3. Convert the XOR-shared result bit to an additive share with a daBit (one round).
    """
    ring = x.ring
    cw, mat = _mask(ctx, x)
    rb = mat["r_bits"]
    words = words_per_element(ring)
    not_c = ~cw
    g = rb & not_c
    p = rb ^ not_c if ctx.is_leader else rb.copy()
    g[:, -1] &= ~_TOP  # the top bit takes no part in the low-bit comparison
    p[:, -1] &= ~_TOP
    if ctx.is_leader:
        p[:, -1] |= _TOP  # ... it is a tie there
    for level, s in enumerate(_LEVELS):
        sh = np.uint64(s)
        g_hi, p_hi = g >> sh, p >> sh
        last = level == len(_LEVELS) - 1 and words == 1
        if last:
            (pg,) = and_many(ctx, [(p_hi, g)], "cmp-level")
            g = g_hi ^ pg
        else:
            pg, pp = and_many(ctx, [(p_hi, g), (p_hi, p)], "cmp-level")
            g, p = g_hi ^ pg, pp
    lt = g[:, 0] & np.uint64(1)
    if words == 2:  # combine the low word's result with the high word's
        (pg,) = and_many(ctx, [(p[:, 1] & np.uint64(1), lt)], "cmp-words")
        lt = (g[:, 1] & np.uint64(1)) ^ pg
    msb = lt ^ (rb[:, -1] >> np.uint64(63))
    if ctx.is_leader:
        msb ^= cw[:, -1] >> np.uint64(63)
    bit = bit_to_arith(ctx, msb, ring, mat["s"], mat["s_arith"])
    return Share(bit.data.reshape(x.shape), ring, 0)


def is_zero(ctx: PartyContext, x: Share) -> Share:
    """[x == 0] as a 0/1 integer share. Exact for every ring element.

    1. Open c = x + r; x == 0 exactly when every bit of c XOR r is 0.
    2. AND-tree over the bits of NOT (c XOR r): six levels per word (one AND each),
       one more across words in Z_2^128.
    3. Convert the result bit with a daBit.
    """
    ring = x.ring
    cw, mat = _mask(ctx, x)
    e = mat["r_bits"] ^ ~cw if ctx.is_leader else mat["r_bits"].copy()
    for s in _LEVELS:
        (e,) = and_many(ctx, [(e, e >> np.uint64(s))], "eqz-level")
    eq = e[:, 0] & np.uint64(1)
    if words_per_element(ring) == 2:
        (eq,) = and_many(ctx, [(eq, e[:, 1] & np.uint64(1))], "eqz-words")
    bit = bit_to_arith(ctx, eq, ring, mat["s"], mat["s_arith"])
    return Share(bit.data.reshape(x.shape), ring, 0)


def less_than(ctx: PartyContext, x: Share, y: Share) -> Share:
    """[x < y], exact while |x - y| < 2^(k-1) in encoded units."""
    return ltz(ctx, x - y)


def greater_equal(ctx: PartyContext, x: Share, y: Share) -> Share:
    """[x >= y] = 1 - [x < y]."""
    return not_bit(ctx, less_than(ctx, x, y))


def less_than_public(ctx: PartyContext, x: Share, c: Any) -> Share:
    """[x < c] for a public real (or array) c, read at x's scale."""
    return ltz(ctx, add_public(ctx, x, -np.asarray(c, dtype=np.float64)))


def greater_equal_public(ctx: PartyContext, x: Share, c: Any) -> Share:
    """[x >= c] for a public c."""
    return not_bit(ctx, less_than_public(ctx, x, c))


def equal_public(ctx: PartyContext, x: Share, c: Any) -> Share:
    """[x == c] for a public c (exact equality of the encodings)."""
    return is_zero(ctx, add_public(ctx, x, -np.asarray(c, dtype=np.float64)))


def not_bit(ctx: PartyContext, b: Share) -> Share:
    """[1 - b] for a shared bit (local)."""
    ring = b.ring
    out = ring.neg(b.data)
    if ctx.is_leader:
        out = ring.add(out, ring.constant(1))
    return Share(out, ring, 0)
