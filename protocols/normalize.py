"""Normalisation of positive shared values: the binary exponent as shared digits, and public tables of it.

Reciprocals, square roots and logarithms converge fast only on a fixed interval, and a
fixed-point result keeps its relative precision only if the exponent is applied exactly.
So the parties find the leading one p of y's raw integer (2^p <= y_raw < 2^(p+1)):
bits of y (`protocols.bits`), a suffix OR, and a one-hot marking p. Converting all L
candidate positions to arithmetic would cost L daBits per element; instead p is split in
radix R (p = R b + a): the one-hots of a and of b are XORs of the one-hot's rows (local),
and only R + L / R rows are converted. A public table T(p) that factorises as
T_lo(a) T_hi(b) — every power 2^(e(p)) with e affine in p, or in p's parity and p — is
then one product of two local sums: sum_a [a] T_lo(a) times sum_b [b] T_hi(b).

Rounds: bits (4 in Z_2^64, 5 in Z_2^128), suffix OR (ceil(log4 L)), one conversion (or the
opening, ceil(log4 (L + 1)) + 1 levels of interval tests and one conversion: `protocols.leading`); the
tables take one more round, all tables of a call together.

References: Catrina & Saxena, "Secure Computation with Fixed-Point Numbers", FC 2010 (the
normalisation step); Aly & Smart, ACNS 2019 (normalisation for sqrt and log).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mpc.context import PartyContext
from mpc.prg import random_ring_elements
from mpc.ring import Ring
from mpc.share import Share
from protocols import leading
from protocols.beaver import mul_many
from protocols.bits import decompose_rows, leading_one_rows, masked, rows_to_arith
from protocols.boolean import pack_lanes
from protocols.circuits import Circuit, run_circuits


@dataclass(frozen=True)
class Exponent:
    """The leading one p of each y_raw, as additive one-hots of a = p mod R and b = p div R.

    `lo` has shape (R, n) and `hi` shape (ceil(L / R), n); y_raw < 2^L is assumed.
    The binary exponent of the real y is p + 1 - y_frac: y = m 2^(p + 1 - y_frac), m in [1/2, 1).
    """

    lo: Share
    hi: Share
    radix: int
    lanes: int
    y_frac: int

    @property
    def ring(self) -> Ring:
        return self.lo.ring

    @property
    def top(self) -> int:
        """R times the number of b digits: every p is below it (and y_raw < 2^top)."""
        return self.radix * int(self.hi.shape[0])

    def linear(self, ctx: PartyContext, fn: Callable[[int], int]) -> Share:
        """[fn(p)] as an integer share for fn affine in b (local): sum_a [a] fn(a) + sum_b [b] (fn(R b) - fn(0))."""
        r = self.radix
        ring = self.ring
        out = _weighted(ring, self.lo.data, [fn(a) for a in range(r)])
        out = ring.add(out, _weighted(ring, self.hi.data, [fn(r * b) - fn(0) for b in range(self.hi.shape[0])]))
        return Share(out, ring, 0)


def offsets(ctx: PartyContext, e: Exponent, fn: Callable[[int], int], extra: Sequence[int]) -> Share:
    """[fn(p) + extra_j] for each element j with y_j != 0, and [0] where y_j = 0 (local).

    fn affine in b, as for `Exponent.linear`; extra are public integers per element. A zero
    y has no leading one, so its exponent stays 0 whatever extra_j is: a released exponent of
    a zero reveals no public scale."""
    nonzero = e.linear(ctx, lambda p: 1)
    return e.linear(ctx, fn) + nonzero.scale_int(np.array([int(k) for k in extra], dtype=object))


def lanes_for(ring: Ring, y_frac: int, y_bound: float) -> int:
    """Bit positions of y_raw to consider for 0 < y < y_bound."""
    lanes = int(math.ceil(math.log2(y_bound))) + y_frac + 1
    if lanes > ring.bits - 4:
        raise ValueError(f"y_bound {y_bound:g} is too large for Z_2^{ring.bits} with {y_frac} fractional bits")
    return max(lanes, 2)


def exponent(
    ctx: PartyContext, y: Share, y_bound: float, even_radix: bool = False, signed: bool = False,
    floor: Sequence[bool] | None = None, by_intervals: bool = False, single_block: bool = False,
) -> Exponent:
    """The leading one of each positive y < y_bound, as radix digits. ceil(log4 L) + 1 rounds after the bits.

    1. Bits of y (XOR-shared, bit-sliced), then the one-hot of its highest set bit among the
       L = log2(y_bound) + f_y + 1 lowest. `signed` (|y| < y_bound): one more bit, the sign
       (bit L of y's two's complement), is XORed into the others (local), so the leading one
       is that of |y| (of |y| - 1 for negative y: y 2^-(p+1) then lies in [-1, -1/2]).
       `floor` (|y| < y_bound), per element: a marked element that is negative has no leading
       one, as if it were 0 (its tables, `linear` and `offsets` are 0): its sign bit is not
       XORed in but stands above the others in the suffix OR, so that every row below it
       reads 1 and the one-hot is empty (local; no round).
       `by_intervals`: the same one-hot from interval tests on y + 2^L (`protocols.leading`):
       ceil(log4 (L + 1)) + 1 circuit levels instead of the bits' and the suffix OR's, for more bytes.
       `single_block`: the radix is L, so a = p and the one-hot itself is converted (L + 1 daBits
       per element rather than R + L / R): every table is then local (`tables`: no round).
    2. One-hots of a = p mod R and b = p div R: row a is the XOR of rows a, R + a, 2R + a, ...;
       row b the XOR of rows R b .. R b + R - 1 (local).
    3. Both to additive shares with daBits (one round).
    """
    ring = y.ring
    lanes = lanes_for(ring, y.frac, y_bound)
    radix = lanes + (lanes % 2 if even_radix else 0) if single_block else _radix(lanes, even_radix)
    flat = Share(y.data.ravel(), ring, y.frac)
    if by_intervals:
        marks = list(floor) if floor is not None else [False] * flat.size
        c, mat = masked(ctx, _offset(ctx, flat, lanes), "lead-open")
        circuit = leading.suffix_or_gates(ctx, c, mat["r_bits"], lanes + 1, leading.bounds(lanes, signed, marks))
        (m,) = run_circuits(ctx, [circuit], "lead-level")
        onehot = (m[:-1] ^ m[1:])[:lanes]
    elif floor is not None and any(floor):
        rows = decompose_rows(ctx, flat, lanes + 1)
        floored = pack_lanes(np.asarray(floor, dtype=bool))
        sign = rows[lanes]
        low = rows[:lanes] ^ (sign & ~floored) if signed else rows[:lanes]
        onehot = leading_one_rows(ctx, np.concatenate([low, (sign & floored)[None]]))[:lanes]
    elif signed:
        rows = decompose_rows(ctx, flat, lanes + 1)
        onehot = leading_one_rows(ctx, rows[:lanes] ^ rows[lanes])
    else:
        onehot = leading_one_rows(ctx, decompose_rows(ctx, flat, lanes))
    both = rows_to_arith(ctx, _digits(onehot, lanes, radix), flat.size, ring)
    return _from_digits(both, radix, lanes, y.frac)


def _offset(ctx: PartyContext, flat: Share, lanes: int) -> Share:
    """z = y + 2^L (party 0 adds it; raw units), so that 0 <= z < 2^(L + 1) for |y| < 2^L."""
    ring = flat.ring
    data = ring.add(flat.data, ring.constant(1 << lanes)) if ctx.is_leader else flat.data
    return Share(data, ring, flat.frac)


def _digits(onehot: np.ndarray, lanes: int, radix: int) -> np.ndarray:
    """Step 2 of `exponent`: the one-hot rows of a = p mod R, then of b = p div R (local XORs)."""
    blocks = -(-lanes // radix)
    padded = np.zeros((blocks * radix, onehot.shape[1]), dtype=np.uint64)
    padded[:lanes] = onehot
    grid = padded.reshape(blocks, radix, -1)
    return np.concatenate([np.bitwise_xor.reduce(grid, axis=0), np.bitwise_xor.reduce(grid, axis=1)])


def _from_digits(both: Share, radix: int, lanes: int, y_frac: int) -> Exponent:
    ring = both.ring
    return Exponent(Share(both.data[:radix], ring, 0), Share(both.data[radix:], ring, 0), radix, lanes, y_frac)


@dataclass(frozen=True)
class ExponentJob:
    """`exponent` of y >= 0 (|y| < 2^L) in the shape of `protocols.compare.MaskedJob`, so that its
    rounds ride beside comparisons (`protocols.compare.signs_zeros_and_jobs`): the opening of
    y + 2^L + r, the interval tests of `protocols.leading` (ceil(log4 (L + 1)) + 1 levels), the
    digits' conversion in the comparisons' conversion round. `finish` makes the `Exponent`.
    Build it with `of` (party 0's value carries the offset 2^L)."""

    value: Share
    lanes: int
    radix: int
    y_frac: int

    @staticmethod
    def of(ctx: PartyContext, y: Share, y_bound: float) -> ExponentJob:
        lanes = lanes_for(y.ring, y.frac, y_bound)
        flat = Share(y.data.ravel(), y.ring, y.frac)
        return ExponentJob(_offset(ctx, flat, lanes), lanes, _radix(lanes, False), y.frac)

    def gates(self, ctx: PartyContext, opened: np.ndarray, r_bits: np.ndarray) -> Circuit:
        marks = [False] * self.value.size
        bounds = leading.bounds(self.lanes, False, marks)
        m = yield from leading.suffix_or_gates(ctx, opened, r_bits, self.lanes + 1, bounds)
        return _digits((m[:-1] ^ m[1:])[: self.lanes], self.lanes, self.radix)

    def finish(self, converted: Share) -> Exponent:
        """The exponent from the converted digit rows."""
        return _from_digits(converted, self.radix, self.lanes, self.y_frac)


def _radix(lanes: int, even: bool) -> int:
    """The radix R: few digits to convert (R + L / R) and little padding above L (R ceil(L / R) - L).

    Padding costs range (a table's entries grow with R ceil(L / R)), so it counts twice. An
    even radix makes p's parity a's parity (square roots need that).
    """

    def cost(r: int) -> tuple[int, int]:
        blocks = -(-lanes // r)
        return r + blocks + 2 * (r * blocks - lanes), r

    candidates = [r for r in range(2, lanes + 1) if r % 2 == 0 or not even]
    return min(candidates, key=cost)


def _weighted(ring: Ring, onehot: np.ndarray, weights: Sequence[int]) -> np.ndarray:
    """sum_i onehot[i] * weights[i] over the rows (local; weights are public integers)."""
    out = ring.zeros(onehot.shape[1:])
    for row, w in zip(onehot, weights):
        if w:
            out = ring.add(out, ring.mul(row, ring.constant(int(w))))
    return out


def tables(ctx: PartyContext, e: Exponent, specs: Sequence[Callable[[int], int]]) -> list[Share]:
    """[T(p)] for public integer tables T that factorise over p's digits. One round for all: the
    products of `table_pairs`; none for an exponent of one block (`exponent(single_block=True)`),
    whose one-hot of a = p gives any table as a local sum (its one b digit is [y != 0], which
    the one-hot already implies)."""
    if e.hi.shape[0] == 1:
        for spec in specs:
            if max(abs(spec(p)) for p in range(e.lanes)) >= 1 << (e.ring.bits - 2):
                raise ValueError("table entries too large for the ring")
        return [Share(_weighted(e.ring, e.lo.data, [spec(a) for a in range(e.radix)]), e.ring, 0) for spec in specs]
    return mul_many(ctx, table_pairs(e, specs))


def table_pairs(e: Exponent, specs: Sequence[Callable[[int], int]]) -> list[tuple[Share, Share]]:
    """The factors whose products are the tables [T(p)] (local), for callers that multiply them in a
    round of their own products.

    Each table must satisfy T(R b + a) T(0) = T(a) T(R b) for every p < L with T(0) != 0
    (checked): then T = T_lo(a) T_hi(b) with T_lo(a) = T(a) / g and T_hi(b) = g T(R b) / T(0),
    g = gcd of the T(a), and one product of [sum_a [a] T_lo(a)] by [sum_b [b] T_hi(b)] gives it.
    """
    r, ring = e.radix, e.ring
    pairs = []
    for spec in specs:
        lo_vals = [spec(a) for a in range(r)]
        g = math.gcd(*lo_vals)
        base = spec(0)
        hi_vals = []
        for b in range(e.hi.shape[0]):
            num = g * spec(r * b)
            if base == 0 or num % base:
                raise ValueError("table does not factorise over the exponent's digits")
            hi_vals.append(num // base)
        for p in range(e.lanes):
            if spec(p) != (lo_vals[p % r] // g) * hi_vals[p // r]:
                raise ValueError(f"table does not factorise over the exponent's digits (p = {p})")
        if max(abs(spec(p)) for p in range(e.lanes)) >= 1 << (ring.bits - 2):
            raise ValueError("table entries too large for the ring")
        lo = Share(_weighted(ring, e.lo.data, [v // g for v in lo_vals]), ring, 0)
        hi = Share(_weighted(ring, e.hi.data, hi_vals), ring, 0)
        pairs.append((lo, hi))
    return pairs


@dataclass(frozen=True)
class Blur:
    """Uniform bits below a normalised value's last place, so that the mantissa y S (y's bits
    shifted up, `tables`) does not show by its trailing zeros how many bits y has.

    With F = `bits`, K = top - 1 and P the largest multiple of the radix at most F + 1 (so that
    [p < P] is a table; F + 1 for an exponent of one block, where every table is), each party
    draws, per element, u below 2^F, w below 2^K and v below 2^(K - P), and the mantissa becomes
        M = (y 2^F + u) S + w [p < P] + v [y != 0],   read with F more fractional bits.
    1. Below y's last place (bit K - p + F of M) lie u's F bits, then for p < P w's K bits
       (K - p + F >= K: w stays below y), for p >= P v's K - P >= K - p bits. The parties'
       sums of u, w and v are uniform modulo 2^F, 2^K and 2^(K - P), so are those bits,
       whichever party drew them; which of w or v fills them does not show.
    2. S, [p < P] and [y != 0] are 0 where y is: a zero stays exactly zero.
    3. y moves by less than n_sites units of its last place (u), and by a relative
       n_sites 2^-(F + P + 1) at most (v).
    Cost: the table [p < P] in the tables' round; u, w, v, [p < P] and [y != 0] opened in the
    round of y S (`protocols.products`, S opened once).
    """

    bits: int

    def cut(self, e: Exponent) -> int:
        """P: [p < P] gates w (F + 1 for an exponent of one block, where every table is local)."""
        if e.hi.shape[0] == 1:
            return self.bits + 1
        return e.radix * ((self.bits + 1) // e.radix)

    def gate(self, e: Exponent) -> Callable[[int], int]:
        """The table [p < P] (T_lo = 1, T_hi(b) = [R b < P]: it factorises over p's digits)."""
        cut = self.cut(e)
        if cut < 1:
            raise ValueError(f"{self.bits} bits of blur are fewer than the exponent's radix {e.radix}")
        return lambda p: 1 if p < cut else 0

    def check(self, e: Exponent, spare: int = 0) -> None:
        """|M| < (2^(p + 1) + 16) 2^(F + K - p + spare) <= 9 2^(top + F + spare) with up to 16 parties'
        draws must stay below 2^(k - 1) (`spare`: 1 where S carries a parity bit, as for roots)."""
        if e.top + self.bits + spare + 5 > e.ring.bits:
            raise ValueError(f"a {e.top}-bit mantissa leaves no room for {self.bits} bits of blur")

    def pairs(
        self, ctx: PartyContext, e: Exponent, y_raw: Share, s_tab: Share, gate: Share
    ) -> list[tuple[Share, Share]]:
        """The products of the round of y S: (y, S), (u, S), (w, [p < P]), (v, [y != 0]), with
        this party's draws u, w, v (local, no message)."""
        ring, n, k_top = y_raw.ring, y_raw.size, e.top - 1

        def draw(width: int) -> Share:
            return Share(ring.rshift_logical(random_ring_elements(ring, (n,)), ring.bits - width), ring, 0)

        nonzero = e.linear(ctx, lambda p: 1)
        return [(y_raw, s_tab), (draw(self.bits), s_tab), (draw(k_top), gate),
                (draw(k_top - self.cut(e)), nonzero)]

    def mantissa(self, products: Sequence[Share]) -> Share:
        """M from the four products of `pairs` (raw; read it with K + 1 + F fractional bits)."""
        ys, us, wg, vn = products
        ring = ys.ring
        out = ring.add(ring.lshift(ys.data, self.bits), us.data)
        return Share(ring.add(ring.add(out, wg.data), vn.data), ring, 0)
