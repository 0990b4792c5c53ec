"""The logistic function sigma(x) = 1 / (1 + exp(-x)) of shared values, over the whole fixed-point range.

sigma is smooth on every unit interval, so it is a low-degree polynomial there: on
[j, j + 1) it is P_j(t) with t = 2 (x - j) - 1 in [-1, 1) (a Chebyshev interpolant turned
into powers of t). Outside [-T, T) it is 0 or 1 within the ring's resolution (T = 16 in
Z_2^64: sigma(-16) = 1.1e-7; T = 32 in Z_2^128: sigma(-32) = 1.3e-14). The protocol
finds j, the fraction and the range from one masked opening of x + T:

1. Open c = x + T + r; from c and the dealer's bits of r, in the same rounds:
   the low f + b bits of x + T (`protocols.bits.low_bits`; its bits f .. f + b - 1 are the
   piece's index i = j + T, 2^b = 2T pieces), and the signs S = [x + T < 0] and
   S2 = [x + T < 2T] (`protocols.compare.sign_gates`).
2. One opening: the coefficients of P_i and i itself by table lookup (`protocols.lookup`),
   S and S2 to arithmetic by daBits. In range: inr = S2 - S; above it: hi = 1 - S2.
3. t = 2 (x + T - i) - 1; its powers in ceil(log2 d) levels of products and truncations;
   the first level also forms inr c_j for every coefficient (no truncation: inr is 0/1).
4. sigma = sum_j (inr c_j) t^j + hi: one round of products, one truncation.

Error (tests/protocols/test_sigmoid.py; docs/protocols.md): degree 5 in Z_2^64
(interpolation error 2.6e-7, ~2e-6 with the truncations), degree 8 in Z_2^128
(2.5e-11, ~1e-11 in all) — over the whole real line the encoding admits.
Rounds: 16 in Z_2^64 (1 + 6 + 1 + 3 x 2 + 2), 17 in Z_2^128 (1 + 7 + 1 + 3 x 2 + 2);
CrypTen's sigmoid (1 / (1 + exp(-x)) by iterations) has error ~3e-3.

References: piecewise-polynomial activations as in Mohassel & Rindal, "ABY3", CCS 2018,
§5.3 and Damgard et al., "New primitives for actively-secure MPC over rings", S&P 2019;
the pieces here are selected by a table lookup on the integer part instead of one
comparison per piece.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share
from protocols.arith import add_public, fixed_for, rescale_up
from protocols.bits import low_bits, masked, rows_of
from protocols.circuits import run_circuits
from protocols.compare import sign_gates
from protocols.lookup import lookup
from protocols.products import products
from protocols.truncation import truncate_each


def _settings(ring: Ring) -> tuple[int, int]:
    """(b: index bits, so T = 2^(b-1); polynomial degree d)."""
    return (5, 5) if ring.native else (6, 8)


def piece_coefficients(bits: int, degree: int, frac: int) -> list[list[int]]:
    """coeffs[j][i]: coefficient of t^j for piece i (x in [i - T, i - T + 1)), encoded with `frac` bits.

    Public constants of (bits, degree, frac): fitted once per process."""
    return [list(row) for row in _fitted(bits, degree, frac)]


@lru_cache(maxsize=64)
def _fitted(bits: int, degree: int, frac: int) -> tuple[tuple[int, ...], ...]:
    half = 1 << (bits - 1)
    nodes = np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))  # Chebyshev points in t
    rows = []
    for i in range(1 << bits):
        values = 1.0 / (1.0 + np.exp(-(i - half + (nodes + 1.0) / 2.0)))
        rows.append(chebyshev.cheb2poly(chebyshev.chebfit(nodes, values, degree)))
    return tuple(tuple(int(round(row[j] * (1 << frac))) for row in rows) for j in range(degree + 1))


def sigmoid(ctx: PartyContext, x: Share) -> Share:
    """[1 / (1 + exp(-x))] at the ring's frac; see the module docstring for the recipe."""
    ring = x.ring
    f = fixed_for(ctx, x).frac
    fx = x.frac
    k = ring.bits
    bits, degree = _settings(ring)
    half = 1 << (bits - 1)
    n = x.size
    shifted = add_public(ctx, Share(x.data.ravel(), ring, fx), float(half))
    c, mat = masked(ctx, shifted, "sigmoid-open")
    width = fx + bits
    c_top = ring.sub(c, ring.constant(1 << width))  # x + T - 2T masked by the same r
    low, signs = run_circuits(
        ctx,
        [low_bits(ctx, rows_of(ring, c), mat["r_bits"], width), sign_gates(ctx, ring, [c, c_top], mat["r_bits"])],
        "sigmoid-level",
    )
    coeffs = piece_coefficients(bits, degree, f)
    found, flags = lookup(ctx, low[fx:width], n, ring, [list(range(1 << bits)), *coeffs], signs)
    assert flags is not None
    index, cs = found[0], found[1:]
    below, inside_top = Share(flags.data[0], ring, 0), Share(flags.data[1], ring, 0)
    inr = inside_top - below
    hi = Share(ring.neg(inside_top.data), ring, 0)
    if ctx.is_leader:
        hi = Share(ring.add(hi.data, ring.constant(1)), ring, 0)
    phi = shifted - rescale_up(index, fx)  # x + T - i in [0, 1) when in range
    t = add_public(ctx, phi.scale_int(2), -1.0)
    coeff_shares = [Share(cj.data, ring, f) for cj in cs]
    powers = [t]  # powers[j - 1] = t^j
    gated: list[Share] = []
    while len(powers) < degree or not gated:
        have = len(powers)
        pairs = [(powers[i], powers[have - 1]) for i in range(min(have, degree - have))]
        extra = [] if gated else [(inr, cj) for cj in coeff_shares]
        prods = products(ctx, pairs + extra)
        if not gated:
            gated = [p.with_frac(f) for p in prods[len(pairs) :]]
        if pairs:
            powers.extend(truncate_each(ctx, [(p, fx) for p in prods[: len(pairs)]]))
    terms = products(ctx, [(cj, tj) for cj, tj in zip(gated[1:], powers)])
    acc = terms[0]
    for term in terms[1:]:
        acc = acc + term
    (poly,) = truncate_each(ctx, [(acc, fx)])
    out = poly + gated[0] + rescale_up(hi, f)
    assert out.frac == f and k == ring.bits
    return Share(out.data.reshape(x.shape), ring, f)
