"""The leading one of a masked value from interval tests, in ceil(log4 W) + 1 circuit levels.

`protocols.normalize.exponent` finds the leading one p of y by its bits (a borrow prefix,
ceil(log4 W) levels) and then a suffix OR over them (ceil(log4 W) more). But the suffix OR
m_i = OR_{j >= i} y_j is [y >= 2^i], and every such test is an interval test on the one opened
value, so all of them run at once:

1. z = y + 2^L (party 0 adds the constant), so that 0 <= z < 2^W, W = L + 1, for |y| < 2^L.
   Open c = z + r, r a dealer mask with XOR-shared bits (one round, or the round of other
   openings: `protocols.compare.signs_zeros_and_jobs`).
2. For each wanted i and element, a public interval [a, b) with m_i = NOT [z in [a, b)]:
   [2^L, 2^L + 2^i) for the leading one of y >= 0; [2^L - 2^i, 2^L + 2^i) for that of |y|
   (|y| - 1 for y < 0, as `exponent(signed=True)`); and for a *floored* element (a negative y
   has no leading one) [2^L, 2^L + 2^i), with the guard row m_L = NOT [z in [2^L, 2^W)].
3. z in [a, b) exactly when r's low W bits lie in the cyclic interval (c' - d, c'], c' = c - a
   and d = b - a (mod 2^W), all public: [r >= lo] and [r <= hi] by comparator trees of r's bits
   against public constants (`protocols.circuits.borrow_out_gates`, all tests of all rows side
   by side), then their AND (or, where the interval wraps, their OR = A XOR B XOR AB): one more
   level of two-input gates.
The one-hot of p is m_i XOR m_(i+1) (local). Nothing is opened but c. The gates cost about
2 W words per row and element (two comparators), against the bits and the prefix's ~W: more
bytes, three fewer rounds for W ~ 80.

References: Damgard et al., TCC 2006 (comparison of a bitwise-shared mask with public values);
Catrina & Saxena, FC 2010 (normalisation by the leading one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpc.context import PartyContext
from mpc.ring import Ring
from protocols.bits import rows_of
from protocols.boolean import from_slices, lanes, not_public, pack_lanes, to_slices
from protocols.circuits import Circuit, borrow_out_gates, generate_propagate
from protocols.gates import Family

RING128 = Ring(128)


def bounds(lanes_: int, signed: bool, floor: Sequence[bool]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row i = 0..L (the last the guard), the intervals [a, b) of step 2 per element (Python
    ints, object arrays); an unfloored element's guard is the whole range [0, 2^W): m_L = 0."""
    top = 1 << lanes_
    full = 1 << (lanes_ + 1)
    out = []
    for i in range(lanes_):
        half = 1 << i
        lo = np.array([top if (mark or not signed) else top - half for mark in floor], dtype=object)
        hi = np.array([top + half for _ in floor], dtype=object)
        out.append((lo, hi))
    out.append((np.array([top if mark else 0 for mark in floor], dtype=object),
                np.array([full for _ in floor], dtype=object)))
    return out


def suffix_or_gates(ctx: PartyContext, c: np.ndarray, r_rows: np.ndarray, width: int,
                    rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> Circuit:
    """XOR-shared m_i = NOT [(c - r) mod 2^width in [a_i, b_i)] for every row i (step 3): rows of
    lanes(n) words, ceil(log4 width) + 1 levels. c: the opened ring elements (n of them). Every
    (row, element) test is one lane of one flat batch, so small batches fill their words."""
    n = int(np.size(c))
    mod = 1 << width
    opened = [int(v) % mod for v in np.ravel(c)]
    lows, highs, a_always, b_always, wraps = [], [], [], [], []
    for a, b in rows:
        for x, lo, hi in zip(opened, a, b):
            shifted, d = (x - int(lo)) % mod, int(hi) - int(lo)
            low = (shifted - d + 1) % mod
            lows.append((low - 1) % mod)
            highs.append(shifted)
            a_always.append(d >= mod or low == 0)
            b_always.append(d >= mod)
            wraps.append(low > shifted)
    count = len(lows)
    thresholds = np.array(lows + highs, dtype=object)  # the A tests, then the B tests
    c_rows = rows_of(RING128, thresholds)[:width]
    r_elems = from_slices(r_rows[:width], n)  # this party's XOR shares of r's low bits, per element
    r_all = to_slices(np.tile(r_elems, (2 * len(rows), 1)))[:width]
    g, p = generate_propagate(ctx, c_rows, r_all)
    below = yield from borrow_out_gates(g, p)  # [t < r], one lane per test
    tests = unpack_words(below, 2 * count)
    ones = np.full(lanes(count), np.uint64(2**64 - 1)) if ctx.is_leader else np.zeros(lanes(count), np.uint64)

    def forced(row: np.ndarray, mask: list[bool]) -> np.ndarray:
        packed = pack_lanes(np.array(mask, dtype=bool))
        return (row & ~packed) ^ (ones & packed)  # 1 where the test is always true (public)

    a_row = forced(pack_bits(tests[:count]), a_always)
    b_row = forced(not_public(ctx, pack_bits(tests[count:])), b_always)
    out = yield [Family.gate(a_row, b_row)]
    inside = out[0][0] ^ ((a_row ^ b_row) & pack_lanes(np.array(wraps, dtype=bool)))
    flat = unpack_words(not_public(ctx, inside), count).reshape(len(rows), n)
    return np.stack([pack_bits(row) for row in flat])


def unpack_words(row: np.ndarray, count: int) -> np.ndarray:
    """One bit-sliced row of XOR shares to `count` share bits (0/1 uint64; local)."""
    return np.unpackbits(np.ascontiguousarray(row, dtype=np.uint64).view(np.uint8), bitorder="little")[:count].astype(
        np.uint64)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Share bits (0/1) back to one bit-sliced row (local)."""
    return pack_lanes(np.asarray(bits, dtype=bool))
