"""Reciprocal and division of shared positive values, with full relative precision.

A fixed-point iteration for 1/y only converges on a bounded interval, and its error is
absolute, so tiny reciprocals of large counts would lose their digits. Pooled therefore
normalises first (`protocols.normalize`): the leading one p of y gives public-table
factors 2^(K - p), so that m = y 2^(K - p) / 2^(K + 1) lies in [1/2, 1) and the
numerator n = x 2^(f_y - p - 1) carries the exponent — both by one product and one
truncation. Goldschmidt's iteration then divides n by m directly: from w0 ~ 1/m,
q0 = n w0 and e0 = 1 - m w0, and each step q <- q (1 + e), e <- e^2 squares the relative
error (two independent products: one round of products, one of truncations). The
quotient is fixed point at the ring's frac: its relative error is ~1e-13 plus a few units
of the resolution, so a small quotient keeps fewer significant bits (measured in Z_2^128
with divisors up to 2^30: 1e-4 within 1.6e-8, 1e-6 within 1.7e-6, 1 within 3.4e-12, 1e6
within 5.7e-14; callers that need relative precision for small quotients scale their
numerators, as `queries.scaling` does, or normalise the result, `queries.floats`).

Ranges and guarantees (tests/protocols/test_division.py; measured in docs/protocols.md):
y must be positive and below `y_bound` (default 2^20 in Z_2^64, 2^40 in Z_2^128, real
units); the quotient must satisfy |q| < 2^(k - 3 - 2f) (2^21 in Z_2^64, 2^45 in Z_2^128,
the iteration's products) and |q| y_bound 2^(f_x) < 2^(k - 3 - pad) (the numerator's
scaling by 2^(K - p); pad <= 2 is the radix's padding of the exponent's range). For the
queries' sums and counts in Z_2^128 (f_x = 40, y_bound = 2^44) that is |q| < 2^41.
Error, in Z_2^64 (3 steps): at most a relative 2^-(f-2) = 3.8e-6 (the truncations of m
and of the e's; the iteration's own error is 1.4e-10) plus 6 units of the resolution
(the truncations of n and of the q's). In Z_2^128 (4 steps, error 2e-20, then one
residual step): a relative ~1e-13 plus a few units of the resolution, so a quotient of
1e-4 is within ~1e-8 relative and one of 1e11 within ~1e-13.

Rounds at the default bound: 19 in Z_2^64 (bits 4, leading one 3, digits 1, table 1,
normalised values 2, Goldschmidt 2 + 3 x 2), 27 in Z_2^128 (5, 4, 1, 1, 2, 2 + 4 x 2,
residual 4). Divisors that serve several divisions: `protocols.reciprocal`.

References: Catrina & Saxena, "Secure Computation with Fixed-Point Numbers", FC 2010
(normalisation); R. E. Goldschmidt, "Applications of division by convergence", MIT 1964,
and Markstein, "Software division and square root using Goldschmidt's algorithms", 2004.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share
from protocols.arith import add_public, fixed_for, mul_public, rescale_up
from protocols.normalize import Exponent, exponent, tables
from protocols.products import products
from protocols.truncation import truncate, truncate_each


def default_bound(ring: Ring) -> float:
    return float(2**20 if ring.native else 2**40)


def _steps(ring: Ring) -> int:
    return 3 if ring.native else 4


def _refine(ring: Ring) -> bool:
    """Whether to add the residual step: in Z_2^128, where results must keep ~1e-12 relative."""
    return not ring.native


def linear_reciprocal_start(lo: float, hi: float) -> tuple[float, float]:
    """(a, b) such that a - b m best approximates 1/m on [lo, hi] in relative error.

    The relative error m (a - b m) - 1 equioscillates at lo, hi and the vertex a / 2b,
    which gives a = b (lo + hi) and b = 8 / (4 lo hi + (lo + hi)^2); on [1/2, 1] the
    worst relative error is 1/17 (then 3.5e-3, 1.2e-5, 1.4e-10, 2e-20 after each step).
    """
    b = 8.0 / (4.0 * lo * hi + (lo + hi) ** 2)
    return b * (lo + hi), b


def to_frac(items: Sequence[tuple[Share, int, int]]) -> list[tuple[Share, int]]:
    """(integer share, its scale s, target frac f) -> (share, truncation) for `truncate_each`.

    A value held as raw / 2^s is brought to f fractional bits: truncated by s - f if s > f,
    else shifted up exactly (then the truncation is 0).
    """
    out = []
    for x, s, f in items:
        if s >= f:
            out.append((x.with_frac(s), s - f))
        else:
            out.append((rescale_up(x.with_frac(s), f - s), 0))
    return out


def goldschmidt(ctx: PartyContext, n: Share | None, m: Share, w0: Share, steps: int, refine: bool = False) -> Share:
    """[n / m] (or [1 / m] if n is None) at m's frac, from a start w0 ~ 1/m.

    1. q0 = n w0 (q0 = w0 for a reciprocal) and e0 = 1 - m w0: one round of products, one
       of truncations.
    2. `steps` times: q <- q (1 + e) and e <- e^2 (one round of products, one of
       truncations; the last step needs only q). After s steps q = (n / m)(1 - e0^(2^s)).
    3. If `refine`: q <- q + w0 (n - m q) (two more products and truncations). Goldschmidt
       does not correct its own rounding: each truncated e^2 leaves a relative error of one
       unit, ~4 2^-f in all; the residual step divides what is left by 17 (w0's accuracy).
    """
    f = m.frac
    if n is None:
        (mw,) = products(ctx, [(m, w0)])
        (mw,) = truncate_each(ctx, [(mw, w0.frac)])
        q = truncate(ctx, w0, w0.frac - f) if w0.frac > f else w0
    else:
        qn, mw = products(ctx, [(n, w0), (m, w0)])  # w0 opened once
        q, mw = truncate_each(ctx, [(qn, qn.frac - f), (mw, w0.frac)])
    e = add_public(ctx, -mw, 1.0)
    for step in range(steps):  # q (1 + e) = q + q e; e opened once for q e and e e
        if step == steps - 1:
            (qe,) = products(ctx, [(q, e)])
            (qe,) = truncate_each(ctx, [(qe, f)])
        else:
            qe, ee = products(ctx, [(q, e), (e, e)])
            qe, e = truncate_each(ctx, [(qe, f), (ee, f)])
        q = q + qe
    if refine:
        (mq,) = products(ctx, [(m, q)])
        (mq,) = truncate_each(ctx, [(mq, f)])
        residual = (n - mq) if n is not None else add_public(ctx, -mq, 1.0)
        (fix,) = products(ctx, [(residual, w0)])
        (fix,) = truncate_each(ctx, [(fix, w0.frac)])
        q = q + fix
    return q


def newton_reciprocal(ctx: PartyContext, m: Share, lo: float, hi: float, steps: int) -> Share:
    """[1/m] for m in [lo, hi] from the best linear start, `steps` Goldschmidt steps.

    The error after s steps is (the start's relative error)^(2^s), as for Newton-Raphson,
    whose iteration this is (in Goldschmidt's form: two independent products per step, so
    two rounds instead of four). Rounds: 1 (start) + 2 + 2 s.
    """
    a, b = linear_reciprocal_start(lo, hi)
    w0 = add_public(ctx, truncate(ctx, mul_public(ctx, m, -b), fixed_for(ctx, m).frac), a)
    return goldschmidt(ctx, None, m, w0, steps)


def _start_bits(e: Exponent) -> int:
    """Fractional bits of the start's slope (as many as the ring leaves, up to 16)."""
    g = min(16, e.ring.bits - 4 - e.top)
    if g < 4:
        raise ValueError("y_bound too large for this ring and scale")
    return g


def _normalised(ctx: PartyContext, y: Share, x: Share | None, y_bound: float | None) -> tuple[Share, Share, Share]:
    """(n, m, w0): m = y / 2^E in [1/2, 1) with E = p + 1 - f_y, n = x / 2^E (or 2^-E if x
    is None), w0 = a - b m the linear start for 1/m, all at the ring's frac.

    1. The exponent p of y (`protocols.normalize.exponent`).
    2. The table S(p) = 2^(K - p), K = top - 1 (one round).
    3. y S = m 2^(K+1) and x S = n 2^(K + 1 + f_x - f_y - f) (one round of products); then,
       in one round of truncations, m, b m from round(b 2^g) y S (a local multiple), and n.
       For a reciprocal n = 2^(f_y - p - 1) is S itself shifted (local; at f + h bits, h
       making every entry an integer, truncated with the others).
    """
    ring = y.ring
    f = fixed_for(ctx, y).frac
    e = exponent(ctx, y, default_bound(ring) if y_bound is None else y_bound)
    (s_tab,) = tables(ctx, e, [lambda p: 1 << (e.top - 1 - p)])
    if x is not None:
        m, w0, (n,) = normalised_parts(ctx, y, e, s_tab, [x])
        return n, m, w0
    h = max(0, e.top - f - y.frac)
    extra = (rescale_up(s_tab, f + h + y.frac - e.top).with_frac(0), f + h, f)
    m, w0, (n,) = normalised_parts(ctx, y, e, s_tab, [], [extra])
    return n, m, w0


def normalised_parts(
    ctx: PartyContext, y: Share, e: Exponent, s_tab: Share, nums: Sequence[Share],
    extra: Sequence[tuple[Share, int, int]] = (),
) -> tuple[Share, Share, list[Share]]:
    """(m, w0, [n]) from y's exponent and table S (`_normalised`, step 3): y S and x S for each
    numerator x in one round of products (S opened once), then m, b m and the n's (and `extra`
    items for `to_frac`) in one round of truncations."""
    ring = y.ring
    f = fixed_for(ctx, y).frac
    k_top = e.top - 1
    g = _start_bits(e)
    a, b = linear_reciprocal_start(0.5, 1.0)
    prods = products(ctx, [(Share(v.data.ravel(), ring, 0), s_tab) for v in [y, *nums]])
    ys = prods[0]
    items = [(ys, k_top + 1, f), (ys.scale_int(int(round(b * (1 << g)))), k_top + 1 + g, f)]
    items += [(p, k_top + 1 + x.frac - y.frac, f) for p, x in zip(prods[1:], nums)]
    m, bm, *ns = truncate_each(ctx, to_frac(items + list(extra)))
    return m, add_public(ctx, -bm, a), ns


def reciprocal(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Share:
    """[1/y] at the ring's frac for 0 < y < y_bound; see the module docstring for the error.

    1. Normalise y; the numerator 2^-E is a table (`_normalised`).
    2. Goldschmidt: 2^-E / m = 1 / y.
    """
    n, m, w0 = _normalised(ctx, y, None, y_bound)
    return goldschmidt(ctx, n, m, w0, _steps(y.ring), _refine(y.ring)).reshape(*y.shape)


def divide(ctx: PartyContext, x: Share, y: Share, y_bound: float | None = None) -> Share:
    """[x / y] at the ring's frac for 0 < y < y_bound; relative precision kept for any quotient.

    x may be an integer share (a count, a sum) or fixed point, of y's ring and shape.
    1. Normalise y and scale x by the same exponent (`_normalised`).
    2. Goldschmidt: n / m = x / y.
    """
    if x.ring != y.ring or x.shape != y.shape:
        raise ValueError("divide needs x and y of one ring and shape")
    n, m, w0 = _normalised(ctx, y, x, y_bound)
    return goldschmidt(ctx, n, m, w0, _steps(y.ring), _refine(y.ring)).reshape(*x.shape)
