"""A divisor prepared once, then divisions by it in two rounds each.

`protocols.division.divide` normalises its divisor and runs Goldschmidt's iteration on the
quotient itself, so every division pays the whole iteration. When the same divisors serve
several divisions — a query's means now and its variances later, by counts known from the
start — the iteration can run once, on the normalised divisor alone, and each later division
is a product: `prepare` finds the divisor's exponent, its normalised value m and a reciprocal
w ~ 1/m with its correction c = w (1 - m w), and `divide_by` multiplies.

With y = m 2^E (m in [1/2, 1), `protocols.division._normalised`) and the numerator scaled by
the same public-table factor, n = x 2^-E:
1. w from Goldschmidt's reciprocal of m (`protocols.division.goldschmidt`, 3 steps: relative
   error d ~ 1.4e-10, plus a few units of 2^-f from its truncations).
2. d = 1 - m w exactly (the product m w kept at 2f fractional bits, not truncated), and
   c = w d at f + 32 bits: w + c = (1/m)(1 - d^2), d^2 below 1e-19.
3. x / y = n / m = trunc(n w) + trunc(n c): one round of products (n opened once) and one of
   truncations. The error is a unit of 2^-f from each truncation plus a relative 2^-(f + 30),
   whatever the errors of w.
The quotient's bound is `divide`'s (|n| < 2^41 in Z_2^128 at f = 40): n c then stays below
2^(41 + 40 + 41) < 2^126.

Rounds to prepare an integer divisor below 2^44 in Z_2^128: the exponent (bits 4, leading one
3, digits 1), the table 1, the normalised values 2, the reciprocal 2 + 3 x 2, the correction 3:
22; numerators given to `prepare` are normalised in its rounds. A division then takes 2 rounds,
or 4 for a numerator normalised afterwards (`normalise_numerator`).

References: as `protocols.division` (Catrina & Saxena, FC 2010; Goldschmidt, 1964); the
correction step is one Newton-Raphson step for 1/m with the exact residual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mpc.context import PartyContext
from mpc.share import Share
from protocols.arith import add_public, fixed_for
from protocols.division import default_bound, goldschmidt, normalised_parts, to_frac
from protocols.normalize import Exponent, exponent, tables
from protocols.products import products
from protocols.truncation import truncate_each

STEPS = 3
"""Goldschmidt steps for w: a relative 1.4e-10 from the linear start, squared by the correction."""

CORRECTION_BITS = 32
"""c = w (1 - m w) is kept at f + 32 fractional bits: its relative 2^-(f + 32) costs nothing, and
n c stays in range (|d| ~ 2^-32 after three steps)."""


@dataclass(frozen=True)
class Prepared:
    """A divisor y (flat) ready for `divide_by`: the table S = 2^(K - p) of its exponent, the
    fractional bits `shift` with which x S reads as x 2^-E at x's scale plus y's, the normalised
    m, and w ~ 1/m and its correction c (see the module docstring)."""

    y_frac: int
    s_tab: Share
    shift: int
    m: Share
    w: Share
    c: Share

    def part(self, start: int, stop: int) -> Prepared:
        """The elements start..stop-1 of every array."""
        return Prepared(self.y_frac, self.s_tab[start:stop], self.shift, self.m[start:stop], self.w[start:stop],
                        self.c[start:stop])


def prepare(ctx: PartyContext, y: Share, y_bound: float | None = None, numerators: Sequence[Share] = (),
            e: Exponent | None = None, s_tab: Share | None = None) -> tuple[Prepared, list[Share]]:
    """The prepared divisor y (positive, below `y_bound`), and each numerator (of y's shape)
    normalised as `normalise_numerator` would, in the same rounds. An element of y at 0, or at -1
    with a numerator within a few units of 0, gives a meaningless but bounded quotient (for callers
    that discard it). `e`: y's exponent when already found (`protocols.normalize.ExponentJob`), and
    `s_tab` its table S when already multiplied (`table_spec`, `protocols.normalize.table_pairs`).

    1. Exponent and table S, the products y S and x S, their truncations (`protocols.division`).
    2. w by Goldschmidt's reciprocal of m; m w, d = 1 - m w, w d and its truncation to c.
    """
    flat = y.reshape(y.size)
    if e is None:
        e = exponent(ctx, flat, default_bound(y.ring) if y_bound is None else y_bound)
    if s_tab is None:
        (s_tab,) = tables(ctx, e, [table_spec(e)])
    nums = [x.reshape(x.size) for x in numerators]
    m, w0, scaled = normalised_parts(ctx, flat, e, s_tab, nums)
    f = fixed_for(ctx, y).frac
    w = goldschmidt(ctx, None, m, w0, STEPS)
    (mw,) = products(ctx, [(m, w)])  # at 2f: exact
    d = add_public(ctx, -mw, 1.0)
    (dw,) = products(ctx, [(d, w)])  # at 3f
    (c,) = truncate_each(ctx, [(dw, 2 * f - CORRECTION_BITS)])
    shift = e.top  # K + 1
    return Prepared(y.frac, s_tab, shift, m, w, c), [n.reshape(*x.shape) for n, x in zip(scaled, numerators)]


def table_spec(e: Exponent) -> Callable[[int], int]:
    """The table S(p) = 2^(K - p), K = top - 1, that normalises y."""
    return lambda p: 1 << (e.top - 1 - p)


def normalise_numerator(ctx: PartyContext, x: Share, prep: Prepared) -> Share:
    """n = x 2^-E at the ring's frac for a numerator x of the prepared divisor's size: one round of
    products (x S), one of truncations."""
    f = fixed_for(ctx, x).frac
    (xs,) = products(ctx, [(Share(x.data.ravel(), x.ring, 0), prep.s_tab)])
    (n,) = truncate_each(ctx, to_frac([(xs, prep.shift + x.frac - prep.y_frac, f)]))
    return n.reshape(*x.shape)


def divide_by(ctx: PartyContext, n: Share, prep: Prepared) -> Share:
    """x / y from n = x 2^-E (`prepare`'s numerators or `normalise_numerator`): trunc(n w) + trunc(n c),
    one round of products and one of truncations."""
    f = fixed_for(ctx, n).frac
    flat = n.reshape(n.size)
    nw, nc = products(ctx, [(flat, prep.w), (flat, prep.c)])  # n opened once
    q, fix = truncate_each(ctx, [(nw, f), (nc, f + CORRECTION_BITS)])
    return (q + fix).reshape(*n.shape)

