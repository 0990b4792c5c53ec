"""Square root and inverse square root of shared positive values.

Normalisation (`protocols.normalize`) with an *even* exponent: with E = p + 1 - f_y the
binary exponent of y and pi = E mod 2, y = m' 2^(E - pi) with m' = y 2^(pi - E) in
[1/2, 2), so sqrt(y) = sqrt(m') 2^((E - pi)/2) — a power of two with an integer exponent,
applied exactly by a public table. The start y0 ~ 1/sqrt(m') is the best linear
approximation for m''s octave (1.7877 - 0.8100 m' on [1/2, 1), its sqrt(2)-scaled twin on
[1, 2); worst relative error 0.0223), its coefficients selected by the parity digit —
the slope through a table, so y0 costs no extra round. Goldschmidt's square-root
iteration then refines g ~ sqrt(m') and h ~ 1/(2 sqrt(m')) together:
r = 1/2 - g h, g <- g + g r, h <- h + h r, the relative error going 0.0223 -> 7.5e-4 ->
8.5e-7 -> 1.1e-12. The last step applies the exponent table in the same rounds.

Ranges: 0 < y < y_bound (default 2^20 in Z_2^64, 2^40 in Z_2^128, real units). Error:
in Z_2^128 (3 steps) a relative 2^-(f-2) plus 6 units of the resolution — about 1e-11
relative over [1e-4, 1e8]; in Z_2^64 (2 steps, whose own error 8.5e-7 is of the order of
the resolution) a relative 2^-(f-3) = 7.6e-6 plus 6 units of the resolution.

Rounds at the default bound: 27 in Z_2^64 (bits 7, leading one 6, digits 1, tables 1,
m' 2, g0 2, 2 steps x 4), 33 in Z_2^128 (8, 7, 1, 1, 2, 2, 3 x 4).

References: Catrina & Saxena, FC 2010, and Aly & Smart, ACNS 2019 (normalised square
roots); Markstein, "Software division and square root using Goldschmidt's algorithms",
2004 (the coupled iteration).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share
from protocols.arith import add_public, fixed_for
from protocols.division import default_bound, to_frac
from protocols.normalize import Blur, Exponent, exponent, offsets, tables
from protocols.products import products
from protocols.truncation import truncate_each

_START = {0: (1.7877275, 0.8099869), 1: (1.2641142, 0.2863736)}
"""Parity of the exponent -> (a, b): 1/sqrt(m') ~ a - b m' on [1/2, 1) and on [1, 2)."""


def _steps(ring: Ring) -> int:
    return 2 if ring.native else 3


def _parity(e: Exponent, p: int) -> int:
    return (p + 1 - e.y_frac) % 2


def _half_exponent(e: Exponent, p: int) -> int:
    """(E - pi) / 2: sqrt(y) = sqrt(m') 2^(this)."""
    return (p + 1 - e.y_frac - _parity(e, p)) // 2


def _root(
    ctx: PartyContext, y: Share, y_bound: float | None, inverse: bool, normalised: bool = False,
    blur: Blur | None = None,
) -> tuple[Share, Share, Exponent]:
    """([sqrt(y)] or [1/sqrt(y)], y S, the exponent); see the module docstring.

    `normalised` (sqrt only): the first value is sqrt(m') instead, in [1/sqrt(2), sqrt(2)),
    the table T is not applied (`sqrt_normalised`); the rounds are the same. With `blur`
    (normalised only), the second value is y S with F = blur.bits more bits, uniform below y's
    last place (`protocols.normalize.Blur`: its table and products in the same rounds).

    1. Exponent of y; tables (one round): S(p) = 2^(K - p + pi), S_b(p) = round(b_pi 2^g) S(p),
       and the result's scale T(p) = 2^(k(p) - k_min) (sqrt) or 2^(k_max - k(p) + 1) (1/sqrt,
       the 2 turning h into 1/sqrt), k(p) = (E - pi) / 2.
    2. m' = y S / 2^(K+1) and b m' = y S_b / 2^(K+1+g) (products, truncations); y0 = a_pi - b m'
       with a_pi = sum_a [a] a_pi(a) (local).
    3. g = m' y0 and h = y0 / 2 (products, truncations).
    4. Steps: r = 1/2 - g h; g, h <- g + g r, h + h r. In the last step the product g h
       goes with z = g T (or h T), and the result is z + z r.
    """
    ring = y.ring
    f = fixed_for(ctx, y).frac
    e = exponent(ctx, y, default_bound(ring) if y_bound is None else y_bound, even_radix=True)
    k_top = e.top - 1
    g_bits = min(16, ring.bits - 5 - e.top)
    if g_bits < 4:
        raise ValueError("y_bound too large for this ring and scale")
    slopes = {par: int(round(b * (1 << g_bits))) for par, (_, b) in _START.items()}
    halves = [_half_exponent(e, p) for p in range(e.top)]
    k_min, k_max = min(halves), max(halves)
    if inverse:
        scale_spec, scale_shift = (lambda p: 1 << (k_max - _half_exponent(e, p) + 1)), k_max
    else:
        scale_spec, scale_shift = (lambda p: 1 << (_half_exponent(e, p) - k_min)), -k_min
    specs = [
        lambda p: 1 << (k_top - p + _parity(e, p)),
        lambda p: slopes[_parity(e, p)] << (k_top - p + _parity(e, p)),
    ]
    if blur is not None:
        blur.check(e, spare=1)
        specs.append(blur.gate(e))
    s_tab, sb_tab, *rest = tables(ctx, e, specs if normalised else [*specs, scale_spec])
    flat_y = Share(y.data.ravel(), ring, 0)
    if blur is None:
        ys, ysb = products(ctx, [(flat_y, s_tab), (flat_y, sb_tab)])
        released = ys
    else:
        ysb, *blurred = products(ctx, [(flat_y, sb_tab), *blur.pairs(ctx, e, flat_y, s_tab, rest[0])])
        ys, released = blurred[0], blur.mantissa(blurred)
    m, bm = truncate_each(ctx, to_frac([(ys, k_top + 1, f), (ysb, k_top + 1 + g_bits, f)]))
    fixed = fixed_for(ctx, y)
    starts = {par: int(fixed.encode(a)) for par, (a, _) in _START.items()}
    y0 = e.linear(ctx, lambda p: starts[_parity(e, p)]).with_frac(f) - bm
    (my0,) = products(ctx, [(m, y0)])
    g, h = truncate_each(ctx, [(my0, f), (y0.with_frac(f + 1), 1)])
    steps = _steps(ring)
    for step in range(steps):
        last = step == steps - 1
        if last and normalised:
            (gh,) = products(ctx, [(g, h)])
            (r,) = truncate_each(ctx, [(gh, f)])
            z = g
        elif last:
            gh, z = products(ctx, [(g, h), (h if inverse else g, rest[0])])
            r, z = truncate_each(ctx, [(gh, f)] + to_frac([(z.with_frac(0), f + scale_shift, f)]))
        if last:
            r = add_public(ctx, -r, 0.5)
            (zr,) = products(ctx, [(z, r)])
            (zr,) = truncate_each(ctx, [(zr, f)])
            return (z + zr).reshape(*y.shape), released, e
        (gh,) = products(ctx, [(g, h)])
        (gh,) = truncate_each(ctx, [(gh, f)])
        r = add_public(ctx, -gh, 0.5)
        gr, hr = products(ctx, [(g, r), (h, r)])
        gr, hr = truncate_each(ctx, [(gr, f), (hr, f)])
        g, h = g + gr, h + hr
    raise AssertionError("unreachable: at least one step")


def sqrt(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Share:
    """[sqrt(y)] at the ring's frac for 0 < y < y_bound."""
    return _root(ctx, y, y_bound, inverse=False)[0]


def rsqrt(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Share:
    """[1/sqrt(y)] at the ring's frac for 0 < y < y_bound."""
    return _root(ctx, y, y_bound, inverse=True)[0]


def sqrt_normalised(
    ctx: PartyContext, y: Share, y_bound: float | None = None, scales: Sequence[int] | None = None
) -> tuple[tuple[Share, Share], tuple[Share, Share]]:
    """y 4^s and sqrt(y) 2^s as (mantissa, integer exponent) shares, in the rounds of `sqrt`;
    nothing opened. `scales`: public integers s per element (default 0).

    With E = p + 1 - f_y and pi = E mod 2 (the module docstring): y = m' 2^(E - pi) with
    m' = y S / 2^(K + 1) in [1/2, 2), returned unrounded (y S read with K + 1 fractional
    bits), and sqrt(y) = sqrt(m') 2^((E - pi) / 2), sqrt(m') at the ring's frac, where its
    relative precision is that of the ring's resolution. Both exponents are affine in p's
    digits (even radix), so local. A zero y gives zero mantissas and exponents (whatever s).
    """
    value, root, _ = sqrt_normalised_nonzero(ctx, y, y_bound, scales)
    return value, root


def sqrt_normalised_nonzero(
    ctx: PartyContext, y: Share, y_bound: float | None = None, scales: Sequence[int] | None = None,
    blur: Blur | None = None,
) -> tuple[tuple[Share, Share], tuple[Share, Share], Share]:
    """`sqrt_normalised`, and [y != 0] as an integer share (local: the sum of p's one-hot digits),
    for callers that add secret terms to the exponents of nonzero values only.

    `blur`: y's mantissa gets blur.bits more fractional bits, uniform below y's last place
    (`protocols.normalize.Blur`), in the same rounds; the root is that of y."""
    root, ys, e = _root(ctx, y, y_bound, inverse=False, normalised=True, blur=blur)
    k_top = e.top - 1 + (blur.bits if blur is not None else 0)
    s = list(scales) if scales is not None else [0] * int(np.prod(y.shape))
    y_exp = offsets(ctx, e, lambda p: p + 1 - e.y_frac - _parity(e, p), [2 * k for k in s]).reshape(*y.shape)
    root_exp = offsets(ctx, e, lambda p: _half_exponent(e, p), s).reshape(*y.shape)
    nonzero = e.linear(ctx, lambda p: 1).reshape(*y.shape)
    return (ys.with_frac(k_top + 1).reshape(*y.shape), y_exp), (root, root_exp), nonzero
