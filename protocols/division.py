"""Reciprocal and division of shared positive values, with full relative precision.

A fixed-point Newton iteration for 1/y only converges on a bounded interval, and its
error is absolute, so tiny reciprocals of large counts would lose their digits. Pooled
therefore normalises first: the bits of y give its leading one at position L, and with
the public table 2^(K - i) selected by L the parties form m = y / 2^(L+1) in [1/2, 1)
exactly (one product, one truncation). Newton's iteration on m needs a fixed, small
number of steps, and the result is rescaled by another public table selected by L —
after multiplying by the numerator, so that x / y keeps its relative precision.

Ranges and guarantees (checked by tests/protocols/test_division.py and in
docs/protocols.md): y must be positive and below `y_bound` (default 2^20 in Z_2^64 and
2^40 in Z_2^128, in real units); the quotient must stay below 2^(k - 4 - 2f) (2^20 in
Z_2^64, 2^44 in Z_2^128). The error of 1/y and of x / y is a few units of the ring's
resolution plus a relative 2^-(f-2): in Z_2^128 a quotient of 1e-4 is within ~1e-8
relative, in Z_2^64 any result is within ~4e-6 relative plus 2e-6 absolute.

Reference: Catrina & Saxena, "Secure Computation with Fixed-Point Numbers", FC 2010
(normalisation + Newton-Raphson reciprocal); Aliasgari et al., NDSS 2013.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share
from protocols.arith import add_public, fixed_for, mul_public
from protocols.beaver import fixed_mul, mul
from protocols.bits import bit_decompose, lanes_to_arith, leading_one
from protocols.truncation import truncate


@dataclass(frozen=True)
class Normalized:
    """y = m * 2^(L + 1 - f_y): [m] in [1/2, 1) at the ring's frac, and L's one-hot [h]."""

    m: Share
    onehot: Share
    y_frac: int
    lanes: int


def lane_list(ring: Ring, count: int) -> list[tuple[int, int]]:
    return [(i // 64, i % 64) for i in range(count)]


def default_bound(ring: Ring) -> float:
    return float(2**20 if ring.native else 2**40)


def normalize(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Normalized:
    """Split positive y into a mantissa in [1/2, 1) and its (one-hot) binary exponent.

    1. Bits of y (bit decomposition), then the one-hot of its leading one.
    2. [h_i] additive for lanes i below log2(y_bound) + f_y.
    3. [s] = sum_i [h_i] 2^(K - i) with K = k - 3: an integer with y s in [2^K, 2^(K+1)).
    4. [m] = truncate(y s) read with K + 1 fractional bits, down to the ring's frac.
    Rounds: 16 in Z_2^64 (7 + 6 + 1 + 1 + 1), 18 in Z_2^128.
    """
    ring = y.ring
    fixed = fixed_for(ctx, y)
    bound = default_bound(ring) if y_bound is None else y_bound
    lanes = int(math.ceil(math.log2(bound))) + y.frac + 1
    k_top = ring.bits - 3
    if lanes > k_top:
        raise ValueError(f"y_bound {bound:g} is too large for Z_2^{ring.bits} with {y.frac} fractional bits")
    flat = Share(y.data.ravel(), ring, y.frac)
    h = lanes_to_arith(ctx, leading_one(ctx, bit_decompose(ctx, flat)), lane_list(ring, lanes), ring)
    s = Share(_table(ring, h.data, [1 << (k_top - i) for i in range(lanes)]), ring, 0)
    scaled = mul(ctx, flat.with_frac(0), s).with_frac(k_top + 1)
    m = truncate(ctx, scaled, k_top + 1 - fixed.frac)
    return Normalized(m, h, y.frac, lanes)


def _table(ring: Ring, onehot: np.ndarray, entries: list[int]) -> np.ndarray:
    """sum_i onehot[:, i] * entries[i] (local: a public table looked up by a shared one-hot)."""
    return ring.matmul(onehot, ring.reduce(np.array(entries, dtype=object)))


def scale_by_exponent(ctx: PartyContext, z: Share, norm: Normalized, power: float) -> Share:
    """[z * 2^(power * e)] with e = L + 1 - f_y the binary exponent found by `normalize`.

    The table 2^(power * e_i) is encoded with f + 1 fractional bits — enough for the
    product to be within one unit of the ring's resolution — then one product and one
    truncation. The result must stay below 2^(k - 4 - 2f) (2^20 in Z_2^64, 2^44 in Z_2^128).
    """
    ring = z.ring
    fixed = fixed_for(ctx, z)
    q = fixed.frac + 1
    entries = [int(round(2.0 ** (power * (i + 1 - norm.y_frac) + q))) for i in range(norm.lanes)]
    t = Share(_table(ring, norm.onehot.data, entries).reshape(z.shape), ring, q)
    return truncate(ctx, mul(ctx, z, t), q)


def newton_reciprocal(ctx: PartyContext, m: Share, lo: float, hi: float, steps: int) -> Share:
    """[1/m] for m in [lo, hi] by Newton-Raphson from the best linear start.

    x0 = (a - b m) minimises the worst relative error on [lo, hi]; each step
    x <- x (2 - m x) squares the relative error (two products, four rounds).
    """
    a, b = _linear_reciprocal_start(lo, hi)
    x = add_public(ctx, truncate(ctx, mul_public(ctx, m, -b), fixed_for(ctx, m).frac), a)
    for _ in range(steps):
        mx = fixed_mul(ctx, m, x)
        x = fixed_mul(ctx, x, add_public(ctx, -mx, 2.0))
    return x


def _linear_reciprocal_start(lo: float, hi: float) -> tuple[float, float]:
    """(a, b) such that a - b m best approximates 1/m on [lo, hi] in relative error.

    The relative error m (a - b m) - 1 equioscillates at lo, hi and the vertex a / 2b,
    which gives a = b (lo + hi) and b = 8 / (4 lo hi + (lo + hi)^2); on [1/2, 1] the
    worst relative error is 1/17 (then 3.5e-3, 1.2e-5, 1.4e-10, 2e-20 after Newton steps).
    """
    b = 8.0 / (4.0 * lo * hi + (lo + hi) ** 2)
    return b * (lo + hi), b


def reciprocal(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Share:
    """[1/y] at the ring's frac for 0 < y < y_bound; see the module docstring for the error.

    1. normalize: y = m 2^e, m in [1/2, 1)                   (16 / 18 rounds)
    2. [1/m] by Newton from a linear start                   (3 / 4 steps, 12 / 16 rounds)
    3. [1/y] = [1/m] 2^-e                                     (2 rounds)
    """
    norm = normalize(ctx, y, y_bound)
    r = newton_reciprocal(ctx, norm.m, 0.5, 1.0, _steps(y.ring))
    return scale_by_exponent(ctx, r, norm, -1.0).reshape(*y.shape)


def divide(ctx: PartyContext, x: Share, y: Share, y_bound: float | None = None) -> Share:
    """[x / y] at the ring's frac for 0 < y < y_bound; relative precision kept for small y.

    As `reciprocal`, but the numerator multiplies 1/m before the rescaling, so a quotient
    of 1e-4 or of 1e6 gets the same relative error. x may be an integer share (a count, a
    sum) or fixed point.
    """
    fixed = fixed_for(ctx, x)
    norm = normalize(ctx, y, y_bound)
    r = newton_reciprocal(ctx, norm.m, 0.5, 1.0, _steps(y.ring))
    xr = truncate(ctx, mul(ctx, Share(x.data.ravel(), x.ring, x.frac), r), x.frac + r.frac - fixed.frac)
    return scale_by_exponent(ctx, xr, norm, -1.0).reshape(*x.shape)


def _steps(ring: Ring) -> int:
    return 3 if ring.native else 4
