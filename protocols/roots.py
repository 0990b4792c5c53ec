"""Square root and inverse square root of shared positive values.

After normalisation (y = m 2^e with m in [1/2, 1), see `protocols.division`), Newton's
iteration for 1/sqrt(m) starts from the best linear approximation 1.787 - 0.809 m
(worst relative error 0.0224) and roughly squares the error each step:
7.5e-4, 8.5e-7, 1.1e-12, 2e-24. The exponent is applied through a public table of
2^(-e/2) (2^(e/2) for sqrt), which absorbs odd exponents exactly.

Ranges: 0 < y < y_bound (default 2^20 in Z_2^64, 2^40 in Z_2^128). Error: a few units of
the ring's resolution plus a relative 2^-(f-2) (in Z_2^128: sqrt over [1e-4, 1e8] within
1e-9 relative; in Z_2^64: ~4e-6 relative plus 2e-6 absolute).

Reference: Catrina & Saxena, FC 2010; Aly & Smart, "Benchmarking Privacy Preserving
Scientific Operations", ACNS 2019 (normalised Newton for square roots).
"""

from __future__ import annotations

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share
from protocols.arith import add_public, mul_public
from protocols.beaver import mul, mul_many
from protocols.division import Normalized, normalize, scale_by_exponent
from protocols.truncation import truncate, truncate_each

_START_A, _START_B = 1.787, 0.809


def _rsqrt_mantissa(ctx: PartyContext, m: Share, steps: int) -> Share:
    """[1/sqrt(m)] for m in [1/2, 1); four rounds per Newton step.

    y <- (3 y - (m y)(y y)) / 2, with (m y)/2 and y y formed in one round of products and
    one round of truncations (the halving is folded into the truncation), then their
    product and truncation, so y_new = 1.5 y - that.
    """
    f = m.frac
    y = add_public(ctx, truncate(ctx, mul_public(ctx, m, -_START_B), f), _START_A)
    for _ in range(steps):
        my, yy = mul_many(ctx, [(m, y), (y, y)])
        half_my, yy = truncate_each(ctx, [(my, f + 1), (yy, f)])
        half_my = half_my.with_frac(f)
        correction = truncate(ctx, mul(ctx, half_my, yy), f)
        three_y = y.scale_int(3)
        y = truncate(ctx, (three_y - correction.scale_int(2)).with_frac(f + 1), 1)
    return y


def _steps(ring: Ring) -> int:
    return 3 if ring.native else 4


def _mantissa(ctx: PartyContext, y: Share, y_bound: float | None) -> tuple[Normalized, Share]:
    norm = normalize(ctx, y, y_bound)
    return norm, _rsqrt_mantissa(ctx, norm.m, _steps(y.ring))


def rsqrt(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Share:
    """[1/sqrt(y)] at the ring's frac for 0 < y < y_bound."""
    norm, r = _mantissa(ctx, y, y_bound)
    return scale_by_exponent(ctx, r, norm, -0.5).reshape(*y.shape)


def sqrt(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Share:
    """[sqrt(y)] at the ring's frac for 0 < y < y_bound (sqrt(m) = m / sqrt(m))."""
    norm, r = _mantissa(ctx, y, y_bound)
    s = truncate(ctx, mul(ctx, norm.m, r), r.frac)
    return scale_by_exponent(ctx, s, norm, 0.5).reshape(*y.shape)
