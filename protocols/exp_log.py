"""Exponential and natural logarithm of shared values.

exp(x) = 2^u with u = x log2(e). The bits of u + O (O a public offset that makes it
positive) split it exactly into an integer n and a fraction phi in [0, 1): 2^phi is a
Chebyshev polynomial, 2^n a product of the factors 1 + b_j (2^(2^j) - 1) over n's bits —
integers, so those products need no truncation. The result 2^phi 2^n stands for
exp(x) 2^O: it is returned with O more fractional bits, which keeps the relative
precision of tiny values such as exp(-20) = 2e-9 (a plain f = 40 encoding would leave
them with 4e-4 relative error). If u + O is negative (x far below the range) the sign
lane zeroes the result.

log(y) = log(m) + e ln 2 after normalisation (y = m 2^e, m in [1/2, 1),
`protocols.normalize`): log(m) is a Chebyshev polynomial in t = 4m - 3, and e ln 2 a
public table of the exponent's digits — a local sum.

Ranges and errors (Z_2^128 / Z_2^64):
* exp: x in (-22, 22) / (-16, 11.8); below the range, down to -2^45 / -2^21 (where
  x log2(e) still fits the ring), the result is 0; relative error ~1e-11 / ~4e-6 plus
  one unit of the output's resolution. Rounds: 21 / 18 (20 / 17 with all extra output bits).
  `exp_capped` returns min(exp(x), cap) and the bits [exp(x) >= cap] in the same rounds,
  for inputs that may lie above the range; `exp2_capped` the same for 2^u, one round fewer.
* log: 0 < y < y_bound (2^40 / 2^20 by default); absolute error below 6 units of the
  resolution (~5e-12 / ~6e-6), which is a relative error below 1e-4 wherever
  |log y| > 1e-7 (Z_2^128). Rounds: 30 / 24 at the default bound.

Reference: Aly & Smart, ACNS 2019 (exp via bit decomposition of the integer part;
log via normalisation); polynomial evaluation as in protocols.polynomial.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share
from protocols.arith import add_public, fixed_for, mul_public
from protocols.bits import low_bits, masked, rows_of, rows_to_arith
from protocols.circuits import run_circuits
from protocols.compare import not_bit, sign_gates
from protocols.division import default_bound, to_frac
from protocols.lookup import lookup
from protocols.normalize import exponent, tables
from protocols.polynomial import chebyshev_power_coefficients, evaluate
from protocols.products import products
from protocols.truncation import truncate, truncate_each

EXP2_ERRORS = {4: 3.6e-6, 5: 1.1e-7, 6: 2.6e-9, 7: 5.6e-11, 8: 1.1e-12, 9: 2e-14}
"""Largest relative error of the Chebyshev 2^phi polynomial on [0, 1] by degree (measured on a
fine grid, `tests/protocols/test_exp2_capped.py`), before fixed-point rounding."""


def _exp_settings(ring: Ring) -> tuple[int, int, int]:
    """(offset O, integer bits of u + O, degree of the 2^phi polynomial)."""
    return (24, 6, 7) if ring.native else (32, 6, 12)


def exp2_parts(ctx: PartyContext, u: Share) -> Share:
    """[2^u * 2^O] at u's frac (O from `_exp_settings`): see the module docstring."""
    return _exp2(ctx, u, None)[0]


def _exp2(
    ctx: PartyContext, u: Share, cap: np.ndarray | None, degree: int | None = None, lean: bool = False
) -> tuple[Share, Share | None]:
    """[2^u * 2^O] at u's frac, and with a cap (exponents, one per element) [min(2^u, 2^cap) * 2^O]
    and the bits [u >= cap].

    1. Open u + O + r; from it, in the same circuit rounds, the bits of u + O below f + b
       (`protocols.bits.low_bits`: n = bits f .. f + b - 1, phi = the rest) and its sign
       (`protocols.compare.sign_gates`): 4 rounds in Z_2^64, 5 in Z_2^128.
    2. [n_j] and [sign] to arithmetic (one round of daBits).
    3. Side by side, level by level: the powers of t = 2 phi - 1 (products, truncations) and
       the integer product of the factors 1 + n_j (2^(2^j) - 1) and 1 - sign (no truncation).
    4. 2^phi = sum_j a_j t^j (Chebyshev; one truncation), times that product (one round).
    With a cap, step 1 also gives [u < cap] (the sign of the same c less the public cap + O,
    in the same circuit); it joins the factors of step 3 (eight factors still take three
    levels), and (1 - [u < cap]) 2^cap is added locally: no extra round.
    `lean`: step 2 looks 2^n up in two tables of three bits of n each instead (`_table_factors`),
    in the same round; four factors take two levels, and four products an element are saved. And
    the last level of powers is left untruncated: its terms are summed at 3f bits with the others
    (a_j t^j at 2f, raised) and truncated with the polynomial, one round and truncation fewer.
    """
    ring = u.ring
    f = u.frac
    offset, nbits, default_degree = _exp_settings(ring)
    degree = default_degree if degree is None else degree
    shifted = add_public(ctx, u, float(offset))
    flat = Share(shifted.data.ravel(), ring, f)
    n = flat.size
    c, mat = masked(ctx, flat, "exp-open")
    tops = [c]
    if cap is not None:
        cap = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n,))
        if not (np.all(cap + offset < 1 << nbits) and np.all(cap + offset + f < ring.bits - 2)):
            raise ValueError(f"exp's cap must be below 2^{min((1 << nbits) - offset, ring.bits - 2 - offset - f)}")
        tops.append(ring.sub(c, _encoded(ring, cap + offset, lambda v: int(round(v * (1 << f))))))
    low, sign = run_circuits(
        ctx,
        [low_bits(ctx, rows_of(ring, c), mat["r_bits"], f + nbits), sign_gates(ctx, ring, tops, mat["r_bits"])],
        "exp-level",
    )
    if lean:
        n_int, factors, signs = _table_factors(ctx, low[f : f + nbits], sign, n, ring)
    else:
        digits = rows_to_arith(ctx, np.concatenate([low[f : f + nbits], sign]), n, ring)
        b = [Share(digits.data[j], ring, 0) for j in range(nbits)]
        n_int = Share(ring.zeros((n,)), ring, 0)
        for j, bj in enumerate(b):
            n_int = n_int + bj.scale_int(1 << j)
        factors = [_factor(ctx, bj, j) for j, bj in enumerate(b)]
        signs = [Share(row, ring, 0) for row in digits.data[nbits:]]
    phi = flat - Share(ring.lshift(n_int.data, f), ring, f)  # exact: u + O - n in [0, 1)
    t = add_public(ctx, phi.scale_int(2), -1.0)  # t = 2 phi - 1 in [-1, 1)
    factors.append(not_bit(ctx, signs[0]))  # 0 below the range
    under = signs[1] if cap is not None else None
    if under is not None:
        factors.append(under)  # 0 at or above the cap
    powers = [t]  # powers[j - 1] = t^j
    raw: list[Share] = []  # lean: the last level's powers, untruncated (2f bits)
    while len(powers) + len(raw) < degree or len(factors) > 1:
        have = len(powers)
        pairs = [(powers[i], powers[have - 1]) for i in range(min(have, degree - have))] if not raw else []
        merges = [(factors[i], factors[i + 1]) for i in range(0, len(factors) - 1, 2)]
        prods = products(ctx, pairs + merges)
        if merges:
            factors = prods[len(pairs) :] + ([factors[-1]] if len(factors) % 2 else [])
        if pairs and lean and have + len(pairs) == degree and have > 1:
            raw = prods[: len(pairs)]
        elif pairs:
            powers.extend(truncate_each(ctx, [(p, f) for p in prods[: len(pairs)]]))
    coeffs = chebyshev_power_coefficients("exp2", 0.0, 1.0, degree)
    acc = ring.zeros((n,))
    for a_j, p in zip(coeffs[1:], powers):
        acc = ring.add(acc, ring.mul(p.data, ring.constant(int(round(a_j * (1 << f))))))
    if raw:  # the sum at 3f bits: |a_j t^j| < 1 for j >= 1 keeps it below 2^(3f + 1), inside the ring
        acc = ring.lshift(acc, f)
        for a_j, p in zip(coeffs[1 + len(powers) :], raw):
            acc = ring.add(acc, ring.mul(p.data, ring.constant(int(round(a_j * (1 << f))))))
    (poly,) = truncate_each(ctx, [(Share(acc, ring, (3 if raw else 2) * f), (2 if raw else 1) * f)])
    poly = add_public(ctx, poly, coeffs[0])
    (value,) = products(ctx, [(poly, factors[0])])
    if under is None:
        return Share(value.data.reshape(u.shape), ring, f), None
    assert cap is not None
    above = not_bit(ctx, under)
    ceiling = _encoded(ring, cap, lambda v: int(round(2.0 ** (v + offset) * (1 << f))))
    value = value + Share(ring.mul(above.data, ceiling), ring, f)
    return Share(value.data.reshape(u.shape), ring, f), Share(above.data.reshape(u.shape), ring, 0)


def _table_factors(
    ctx: PartyContext, digits: np.ndarray, signs: np.ndarray, n: int, ring: Ring
) -> tuple[Share, list[Share], list[Share]]:
    """From n's six XOR-shared bits (rows) and the sign rows: [n], the factors [2^(n mod 8)] and
    [2^(8 (n div 8))], and the sign rows as 0/1 shares, in one round (`protocols.lookup`).

    The two three-bit digits are looked up side by side as one index over 2 * 64 * lanes(n)
    elements (the high digit from word lanes(n) on); the tables give the digits' values too.
    The sign rows are converted in the same opening. Cost per element: 16 ring elements of one-hots
    from the dealer rather than six daBits, and two factors where there were six.
    """
    if digits.shape[0] != 6:
        raise ValueError("exp's table lookup needs six bits of n")
    words = digits.shape[1]
    index = np.concatenate([digits[:3], digits[3:]], axis=1)
    pad = np.zeros((signs.shape[0], words), dtype=signs.dtype)
    size = 64 * words + n
    (low, high, low_n, high_n), converted = lookup(
        ctx, index, size, ring,
        [[1 << k for k in range(8)], [1 << (8 * k) for k in range(8)], list(range(8)), [8 * k for k in range(8)]],
        convert=np.concatenate([signs, pad], axis=1),
    )
    assert converted is not None
    second = slice(64 * words, 64 * words + n)
    n_int = Share(ring.add(low_n.data[:n], high_n.data[second]), ring, 0)
    return n_int, [low[:n], high[second]], [Share(row[:n], ring, 0) for row in converted.data]


def _encoded(ring: Ring, values: np.ndarray, encode: Callable[[float], int]) -> np.ndarray:
    """`encode` of each value as a ring element, computed once per distinct value (a cap is often one)."""
    distinct, where = np.unique(values, return_inverse=True)
    return ring.reduce(np.array([encode(float(v)) for v in distinct], dtype=object))[where.reshape(-1)]


def _factor(ctx: PartyContext, bj: Share, j: int) -> Share:
    """1 + b_j (2^(2^j) - 1): an integer share."""
    ring = bj.ring
    out = ring.mul(bj.data, ring.constant((1 << (1 << j)) - 1))
    if ctx.is_leader:
        out = ring.add(out, ring.constant(1))
    return Share(out, ring, 0)


def exp(ctx: PartyContext, x: Share, out_frac: int | None = None) -> Share:
    """[exp(x)] with `out_frac` fractional bits (default: the ring's frac).

    Internally exp(x) is held with f + O fractional bits; asking for more than the
    ring's frac (up to f + O) keeps tiny results precise.
    """
    return _exp(ctx, x, out_frac, None)[0]


def exp_capped(
    ctx: PartyContext, x: Share, cap: float | np.ndarray, out_frac: int | None = None
) -> tuple[Share, Share]:
    """[min(exp(x), cap)] and the bits [exp(x) >= cap], in the rounds of `exp`.

    `cap` (public, one value or one per element) lets a caller whose inputs may run above
    exp's range (a Newton iterate far from the optimum) keep every result bounded, and learn
    — by opening what it chooses of the bits — whether any value reached it. ln(cap) must be
    below 11.8 in Z_2^64 and 22 in Z_2^128 (the ranges of the module docstring).
    """
    value, above = _exp(ctx, x, out_frac, np.log2(np.asarray(cap, dtype=np.float64)))
    assert above is not None
    return value, above


def exp2_capped(
    ctx: PartyContext, u: Share, cap: float | np.ndarray, out_frac: int | None = None, degree: int | None = None,
    lean: bool = False,
) -> tuple[Share, Share]:
    """[min(2^u, cap)] and the bits [2^u >= cap]: `exp_capped` of x = u ln 2, one round fewer
    (no product by log2(e) to truncate), for a caller that can form u = x log2(e) for free (a
    linear form whose coefficients it scales). `u` at the ring's frac; u's range is exp's times
    log2(e) (below 17 in Z_2^64, 31.7 in Z_2^128); `out_frac` up to frac + O, as in `exp`.

    `degree` of the 2^phi polynomial (default 7 in Z_2^64, 12 in Z_2^128): its relative error is
    1e-7 at 5 and 1e-12 at 8 (`EXP2_ERRORS`), below one unit of 2^-20 and 2^-40, for fewer
    products (and one level fewer at 8 or below, where the factors of 2^n need three anyway).
    `lean`: 2^n from two table lookups and the last level of powers untruncated (`_exp2`): one round
    and four products an element fewer, for 16 ring elements of one-hots from the dealer."""
    fixed = fixed_for(ctx, u)
    if u.frac != fixed.frac:
        raise ValueError(f"exp2_capped needs u at {fixed.frac} fractional bits")
    if degree is not None and degree < 2:
        raise ValueError("exp2_capped's polynomial needs degree 2 or more")
    value, above = _exp2_out(ctx, u, out_frac, np.log2(np.asarray(cap, dtype=np.float64)), degree, lean)
    assert above is not None
    return value, above


def _exp(ctx: PartyContext, x: Share, out_frac: int | None, cap: np.ndarray | None) -> tuple[Share, Share | None]:
    fixed = fixed_for(ctx, x)
    u = truncate(ctx, mul_public(ctx, x, math.log2(math.e)), fixed.frac)
    return _exp2_out(ctx, u, out_frac, cap)


def _exp2_out(
    ctx: PartyContext, u: Share, out_frac: int | None, cap: np.ndarray | None, degree: int | None = None,
    lean: bool = False,
) -> tuple[Share, Share | None]:
    """`_exp2` of u at `out_frac` fractional bits (default: the ring's frac)."""
    fixed = fixed_for(ctx, u)
    offset, _, _ = _exp_settings(u.ring)
    parts, above = _exp2(ctx, u, None if cap is None else np.broadcast_to(cap, (u.size,)), degree, lean)
    raw = parts.with_frac(u.frac + offset)
    target = fixed.frac if out_frac is None else out_frac
    if not fixed.frac <= target <= raw.frac:
        raise ValueError(f"exp can return between {fixed.frac} and {raw.frac} fractional bits")
    return (truncate(ctx, raw, raw.frac - target) if raw.frac > target else raw), above


def log(ctx: PartyContext, y: Share, y_bound: float | None = None) -> Share:
    """[ln y] at the ring's frac for 0 < y < y_bound.

    1. Exponent p of y (`protocols.normalize.exponent`); table S(p) = 2^(K - p) (one round);
       m = y S / 2^(K+1) in [1/2, 1) (one product, one truncation).
    2. log(m) by a Chebyshev polynomial in t = 4m - 3 (`protocols.polynomial`).
    3. (p + 1 - f_y) ln 2 from the exponent's digits (local), added.
    """
    fixed = fixed_for(ctx, y)
    f = fixed.frac
    ring = y.ring
    e = exponent(ctx, y, default_bound(ring) if y_bound is None else y_bound)
    k_top = e.top - 1
    (s_tab,) = tables(ctx, e, [lambda p: 1 << (k_top - p)])
    (ys,) = products(ctx, [(Share(y.data.ravel(), ring, 0), s_tab)])
    (m,) = truncate_each(ctx, to_frac([(ys, k_top + 1, f)]))
    t = add_public(ctx, m.scale_int(4), -3.0)  # t in [-1, 1)
    degree = 8 if ring.native else 18
    log_m = evaluate(ctx, t, chebyshev_power_coefficients("log", 0.5, 1.0, degree))
    e_ln2 = e.linear(ctx, lambda p: int(round((p + 1 - e.y_frac) * math.log(2) * (1 << f)))).with_frac(f)
    return (log_m + e_ln2).reshape(*y.shape)
