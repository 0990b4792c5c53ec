"""Polynomials of shared values with public coefficients, in logarithmic depth.

Smooth functions on a fixed interval (2^t on [0, 1), log on [1/2, 1)) are evaluated as a
Chebyshev fit converted to powers of a variable t in [-1, 1]. The powers t^2 .. t^d are
computed level by level — level j multiplies every power up to 2^j by t^(2^j) — so d
powers cost ceil(log2 d) rounds of products (each followed by one truncation round),
and the weighted sum is local plus one truncation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import Chebyshev

from mpc.context import PartyContext
from mpc.share import Share
from protocols.arith import add_public_encoded, fixed_for
from protocols.products import products
from protocols.truncation import truncate, truncate_many


def powers(ctx: PartyContext, t: Share, degree: int) -> list[Share]:
    """[t^1], ..., [t^degree] at t's scale; 2 * ceil(log2 degree) rounds."""
    pw: list[Share] = [t]  # pw[i] = t^(i+1)
    while len(pw) < degree:
        have = len(pw)  # a power of two until the last level
        pairs = [(pw[i], pw[have - 1]) for i in range(min(have, degree - have))]
        pw.extend(truncate_many(ctx, products(ctx, pairs), t.frac))
    return pw[:degree]


@lru_cache(maxsize=64)
def chebyshev_power_coefficients(name: str, lo: float, hi: float, degree: int) -> tuple[float, ...]:
    """Power-basis coefficients in t = (2x - lo - hi) / (hi - lo) of a Chebyshev fit of `name` on [lo, hi]."""
    fn = _FUNCTIONS[name]
    xs = np.cos(np.pi * (np.arange(4 * degree + 1) + 0.5) / (4 * degree + 1))  # Chebyshev nodes in t
    x = (xs * (hi - lo) + hi + lo) / 2
    fit = Chebyshev.fit(xs, fn(x), degree, domain=[-1, 1])
    return tuple(float(c) for c in fit.convert(kind=np.polynomial.Polynomial).coef)


_FUNCTIONS = {
    "exp2": lambda x: np.exp2(x),
    "log": lambda x: np.log(x),
}


def evaluate(ctx: PartyContext, t: Share, coefficients: tuple[float, ...]) -> Share:
    """[sum_j a_j t^j] for public a_j, at t's scale."""
    fixed = fixed_for(ctx, t)
    f = t.frac
    pw = powers(ctx, t, len(coefficients) - 1)
    ring = t.ring
    acc = ring.zeros(t.shape)
    for a_j, p in zip(coefficients[1:], pw):
        acc = ring.add(acc, ring.mul(p.data, ring.constant(int(round(a_j * (1 << f))))))
    total = truncate(ctx, Share(acc, ring, 2 * f), f)
    return add_public_encoded(ctx, total, fixed.encode(np.full(t.shape, coefficients[0]), f))
