"""Poisson regression (log link, with an offset) in MPC: Newton-Raphson on shared coefficients.

The machinery is logistic regression's (`protocols.logistic`): every party publishes its rows
masked once, the coefficients and everything derived from them stay shared, and the score
X'(y - mu) and information Z'mu (Z: each row's pairwise products x_j x_k) are summed over the
parties' rows on shares. The mean is mu = exp(eta + offset) instead of a sigmoid.

Fixed-point ranges. The caller divides every design column by a public power of two at or
above its pooled maximum |x| (so |x| <= 1) and the counts by 2^S (S public, 2^S at or above
the largest count): the fit works with y' = y / 2^S, mu' = mu / 2^S and o = offset - S ln 2,
which leaves the Newton steps unchanged. A row-level product in Z_2^64 at 40 fractional bits
holds sums below 2^22, so every mu' is capped at C = 2^21 / N (N: all parties' padded rows;
`exp2_capped`, free in rounds): an iterate far from the optimum is damped, never wrapped, and
at the final coefficients a fitted count at the cap refuses the model. Values meet the Z_2^64
owned products as two 20-bit halves (x = x_hi + 2^-20 x_lo; `parts`), so X, Z and mu carry
40 bits where it matters.

Schedule (fixed: nothing is opened before its end, and the cost does not depend on the data):
0. Start as statsmodels' IRLS does, from mu0 = (y + r e^offset) / 2 (r: each party's own crude
   rate): the weighted least squares X'W0X b = X'W0 z0 of the parties' local sums, on shares.
   Opened: [I - A0 A0^-1 small] (X'W0X, weights > 0, is singular only for collinear covariates).
1. `iterations` Newton steps in Z_2^64: u = eta log2(e) = X (beta log2(e)) + o log2(e) (beta
   log2(e) comes with beta's truncation to Z_2^64, the offsets' from their owners: exp's product
   by log2(e) is not needed), mu = min(2^u, C) (relative error ~4e-6, 2^n by tables:
   `exp2_capped`; its halves cut in the round of its last truncation, `split_raw`),
   g = X'y' - X'mu (X'y' is a local sum), H = Z'mu, lifted to Z_2^128; A^-1 (A = D H) by
   Newton-Schulz (from I/p in the first two, D from `power_scaling`; warm afterwards with
   LOGISTIC's LOOP_STEPS), D g riding with D H and A^-1 D g with Newton-Schulz's last round
   (`fused_step`); beta += H^-1 g, truncated with the next Z_2^64 coefficients (`advance`).
   The last one also sums Pearson's terms y'^2 / mu' = 2^(2 log2 y' - u).
2. One step in Z_2^128: u to 40 bits, mu by Z_2^128's exp2 (relative error ~1e-11), g, H;
   delta = H^-1 g (the decrement g.delta rides with delta's truncation, `truncate_times`). The
   information is moved to beta + delta to first order (Z'(mu o X delta)) so that the standard
   errors are those of the released coefficients, and the decrement a further step would find
   is estimated from the second-order remainder of the score, r = X'(mu o (X delta)^2) / 2
   (`moved`).
3. Opened: [some mu' reached C] (refused), [some Pearson term reached its cap] (Pearson
   withheld), [last step's decrement g.delta < 1 and remainder decrement < tol] (converged),
   [I - A A^-1 small] (not singular; these three bits by one comparator circuit and one opening,
   `open_final_bits`). Released, in shares: beta + delta, diag H^-1, the
   log-likelihood and Pearson's chi2.

Weights (`weighted`): counts w y and offsets offset + log w give the weighted score, information
and Pearson sum at no cost; with `keep_counts` the last step also forms the HC0 meat
Z'(y' - mu')^2 (`score` with the squared residuals in place of mu) and the sandwich
diag(H^-1 M H^-1) (`protocols.regression.sandwich_diag`), whose count scale cancels.

Reference: P. McCullagh and J. Nelder, Generalized Linear Models (1989), §2.5 and §6.2 (IRLS
for log-linear models, the starting values, Pearson's X^2); statsmodels GLM(family=Poisson()).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from mpc.context import PartyContext
from mpc.dealer import mark
from mpc.share import Share, concat
from protocols.arith import add_public, rescale_up
from protocols.beaver import fixed_matmul, mul
from protocols.exp_log import exp2_capped
from protocols.linalg import iterations_for, newton_schulz, residual_is_small
from protocols.logistic import COLD_ITERATIONS, LOOP_STEPS, WARM_STEPS, X_FRAC, pairwise_products, symmetric
from protocols.newton_schulz import newton_schulz_times
from protocols.owned import publish_masked
from protocols.poisson_parts import (
    LOG2E,
    SPLIT,
    Layout,
    eta_fast,
    eta_precise,
    halves_precise,
    moved,
    narrow,
    score,
    split_raw,
)
from protocols.poisson_steps import advance, fused_step, identity_start, open_final_bits, open_zero_bits, power_scaling
from protocols.regression import rescale, sandwich_diag, scaled_system
from protocols.sharing import share_inputs
from protocols.trunc_mul import truncate_times
from protocols.truncation import truncate, truncate_each

ROW_BUDGET = 2.0**21
"""Largest sum over rows of |x| mu' a Z_2^64 product at 40 fractional bits holds (2^22, halved)."""

PAD_OFFSET = -40.0
"""The offset of a padding row: exp of it is exactly 0 in both rings, so the row adds nothing."""

NO_EVENT = -(2.0**19)
"""2 log y' at a row with y = 0: its Pearson term exp(NO_EVENT - eta) is exactly 0."""

PEARSON_CAP = 2.0**16
"""Cap of a Pearson term y'^2 / mu' (Z_2^64's exp holds exp(x) for x < 11.8; their sum, as two
halves, stays in range for N <= 2^20)."""

CONDITION = 1e7
"""Condition number the cold Newton-Schulz inversions are sized for (as LOGISTIC's); twice it with
the power-of-two scaling (`power_scaling`), which may double a Jacobi-scaled condition number."""

GUARD = 1.0
"""The last step's decrement must be below this (unscaled) for the remainder estimate to count."""

RAW = 2 * X_FRAC + 4
"""Fractional bits of 2^u in Z_2^64 as `exp2_capped` holds it (its frac and offset O, 20 + 24): the
halves are cut from there (`split_raw`)."""

PRECISE_RAW = 40 + 32
"""The same in Z_2^128 (frac 40, offset 32)."""

FAST_DEGREE = 5
"""Degree of 2^phi in the Z_2^64 steps: relative error 1.1e-7, below the ring's 2^-20 (`EXP2_ERRORS`)."""

PRECISE_DEGREE = 8
"""Degree of 2^phi in the Z_2^128 step: relative error 1.1e-12, about Z_2^128's 2^-40."""

DECREMENT_FRAC = 60
"""Fractional bits of the decrements compared with tol 2^-S."""


@dataclass(frozen=True)
class PoissonData:
    """The consortium's rows as this party sees them, and the pooled local sums."""

    layout: Layout  # the masked [X_hi | X_lo | Z_hi | Z_lo] of every party
    offsets: np.ndarray  # this party's o log2(e), o = offset - S ln 2 (PAD_OFFSET on padding rows)
    logs: np.ndarray  # this party's 2 log2 y' (NO_EVENT where y = 0 and on padding rows)
    sums: Share  # [X'y' (p) | log-likelihood and Pearson constants (2) | X'W0X (p*p) | X'W0 z0 (p)]
    cap: float  # C: the largest mu' of a row
    scale: int  # S
    counts: np.ndarray | None = None  # this party's y' (0 on padding rows): kept for the HC0 meat


@dataclass(frozen=True)
class PoissonShares:
    """This party's shares of the released values, and the bits the fit opened."""

    coef: Share
    inverse_diag: Share
    stats: Share  # [log-likelihood, Pearson chi2] (Pearson left out when withheld)
    converged: bool
    singular: bool
    over_cap: bool
    pearson_withheld: bool
    collinear: bool = False
    sandwich: Share | None = None  # diag(H^-1 M H^-1), M = sum (y - mu)^2 x x' (HC0), when asked for


def split_bits(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v = hi + 2^-SPLIT lo with hi and lo on the X_FRAC grid (|lo| <= 1/2), for v on the 2X_FRAC grid."""
    hi = np.round(v * 2.0**X_FRAC) / 2.0**X_FRAC
    return hi, np.round((v - hi) * 2.0 ** (X_FRAC + SPLIT)) / 2.0**X_FRAC


def weighted(y: np.ndarray, offset: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Weights w > 0 as a Poisson fit without them: counts w y and offsets offset + log w. Then
    w mu = exp(eta + offset + log w), so the score X'(w y - w mu), the information Z'(w mu) and
    Pearson's sum of (w y - w mu)^2 / (w mu) = w (y - mu)^2 / mu are the weighted ones."""
    return (y, offset) if w is None else (y * w, offset + np.log(w))


def local_sums(
    x: np.ndarray, y: np.ndarray, offset: np.ndarray, scale: int, w: np.ndarray | None = None
) -> np.ndarray:
    """This party's X'y', its constants of the log-likelihood and Pearson's chi2, and its part of
    the starting system: mu0 = (y' + r e^o) / 2 with r this party's crude rate sum y' / sum e^o
    (statsmodels' (y + mean y) / 2 when there is no offset), z0 = log mu0 - o + (y' - mu0) / mu0.
    With weights `w`, on the counts and offsets of `weighted`; the constants are sum w (y offset -
    log y!) and -2 sum w y."""
    p = x.shape[1]
    if not len(x):
        return np.zeros(p + 2 + p * p + p)
    ones = np.ones(len(y)) if w is None else w
    constants = [float(np.sum(ones * (y * offset - gammaln(y + 1.0)))), -2.0 * float(np.sum(ones * y))]
    y, offset = weighted(y, offset, w)
    ys = y / 2.0**scale
    o = offset - scale * math.log(2.0)
    exposure = np.exp(o)
    rate = max(float(ys.sum()), 2.0**-scale / 2) / float(exposure.sum())
    mu0 = np.maximum((ys + rate * exposure) / 2.0, 1e-300)
    weighted_z0 = mu0 * (np.log(mu0) - o) + (ys - mu0)  # mu0 z0, without dividing by a tiny mu0
    return np.concatenate([x.T @ ys, constants, ((x * mu0[:, None]).T @ x).ravel(), x.T @ weighted_z0])


def setup(
    ctx: PartyContext, x: np.ndarray, y: np.ndarray, offset: np.ndarray, rows: Sequence[int], scale: int,
    w: np.ndarray | None = None, keep_counts: bool = False,
) -> PoissonData:
    """Publish every party's masked [X_hi | X_lo | Z_hi | Z_lo] (one round) and add the local sums.

    `x`: this party's scaled design (|x| <= 1, on the grid of 2 X_FRAC bits), `y` its counts and
    `offset` its offsets (zeros without one), `rows` every party's row count after padding (zero
    rows at the end), `scale` S; `w` the weights (> 0) if any (`weighted`); `keep_counts`: keep y' for
    the HC0 meat.
    """
    fixed, precise = ctx.fixed, ctx.precise
    p = x.shape[1]
    n_real = len(x)
    padded = np.zeros((rows[ctx.rank], p))
    padded[:n_real] = x
    x_hi, x_lo = split_bits(padded)
    z_hi, z_lo = split_bits(np.round(pairwise_products(padded) * 2.0 ** (2 * X_FRAC)) / 2.0 ** (2 * X_FRAC))
    layout = Layout(p, list(rows))
    mine = {ctx.rank: fixed.encode(np.hstack([x_hi, x_lo, z_hi, z_lo]), X_FRAC)}
    shapes = {r: (rows[r], layout.width) for r in range(ctx.n)}
    layout = layout.with_matrices(publish_masked(ctx, list(range(ctx.n)), mine, shapes, "poisson-M", fixed.ring,
                                                 X_FRAC))
    sums = local_sums(x, y, offset, scale, w)
    y, offset = weighted(y, offset, w)
    offsets = np.full(rows[ctx.rank], PAD_OFFSET)
    offsets[:n_real] = offset * LOG2E - scale
    logs = np.full(rows[ctx.rank], NO_EVENT)
    logs[:n_real] = np.where(y > 0, 2.0 * (np.log2(np.maximum(y, 1.0)) - scale), NO_EVENT)
    total = None
    for s in share_inputs(ctx, precise.encode(sums), precise.ring, precise.frac, "sums"):
        total = s if total is None else total + s
    assert total is not None
    counts = None
    if keep_counts:
        counts = np.zeros(rows[ctx.rank])
        counts[:n_real] = y / 2.0**scale
    return PoissonData(layout, offsets, logs, total, ROW_BUDGET / sum(rows), scale, counts)


def fit(ctx: PartyContext, data: PoissonData, iterations: int, tol: float) -> PoissonShares:
    """The fixed schedule of the module docstring: start, `iterations` steps in Z_2^64, one in Z_2^128."""
    p = data.layout.p
    ns_steps = iterations_for(2 * CONDITION, p, ctx.precise.frac)
    beta, beta_fast, inv_a, a = _start(ctx, data, ns_steps)
    if not residual_is_small(ctx, a, inv_a, 1e-6):  # X'W0X singular: the covariates are collinear
        zero = Share(ctx.precise.ring.zeros((p,)), ctx.precise.ring, ctx.precise.frac)
        return PoissonShares(zero, zero, zero[:1], False, True, False, True, collinear=True)
    d = None
    pearson: list[Share] = []
    same_pass = f"poisson-pass/{ctx.n}/{p}/{ns_steps}/{ctx.fixed}/{ctx.precise}/" + "/".join(
        f"{om.owner}:{om.name}:{om.shape}" for om in data.layout.matrices)  # what a pass's dealer material depends on
    for i in range(iterations):
        phase = "last" if i == iterations - 1 else min(i, COLD_ITERATIONS)  # the warm passes ask alike: sent ahead
        mark(ctx.material, f"{same_pass}/{phase}")
        u = eta_fast(ctx, data.layout, beta_fast, data.offsets)  # eta log2(e)
        extra: list[tuple[Share, int]] = []
        if i < iterations - 1:
            power, _ = exp2_capped(ctx, u, data.cap, out_frac=RAW, degree=FAST_DEGREE, lean=True)
            _, *halves = split_raw(ctx, power)
        else:  # the last also sums Pearson's terms y'^2 / mu' + mu', as two halves
            n = u.size
            logs = data.layout.own(ctx, data.logs, u) - u
            power, above = exp2_capped(ctx, concat([u, logs]), np.repeat([data.cap, PEARSON_CAP], n),
                                       out_frac=RAW, degree=FAST_DEGREE, lean=True)
            _, hi, lo = split_raw(ctx, power)
            halves = [hi[:n], lo[:n]]
            hi, lo = hi[n:] + hi[:n], lo[n:] + lo[:n]  # the halves of y'^2 / mu' + mu'
            ring = hi.ring
            extra = [(Share(ring.sum(hi.data).reshape(1), ring, hi.frac), 0),
                     (Share(ring.sum(lo.data).reshape(1), ring, hi.frac + SPLIT), 0),
                     (Share(ring.sum(above.data[n:]).reshape(1), ring, 0), 0)]
        g, h, pearson = score(ctx, data.layout, (halves[0], halves[1]), data.sums[:p], extra)
        if i < COLD_ITERATIONS:
            raw, inv_a, d, _ = fused_step(ctx, g, h, p, None, ns_steps)
        else:
            raw, inv_a, d, _ = fused_step(ctx, g, h, p, inv_a, LOOP_STEPS, d)
        beta, beta_fast = advance(ctx, beta, raw)
    mark(ctx.material, None)
    return _final(ctx, data, beta, inv_a, d, pearson, tol)


def _start(ctx: PartyContext, data: PoissonData, ns_steps: int) -> tuple[Share, Share, Share, Share]:
    """Coefficients of the weighted least squares X'W0X b = X'W0 z0 (power-of-two scaling, Newton-Schulz
    with the product riding in its last round), in both rings (`advance`); the inverse and the scaled
    matrix (for the collinearity bit)."""
    p = data.layout.p
    m0 = data.sums[p + 2 : p + 2 + p * p].reshape(p, p)
    d = power_scaling(ctx, m0)
    a, scaled = rescale(ctx, d, m0, data.sums[-p:])
    inv_a, raw = newton_schulz_times(ctx, a, identity_start(ctx, p), ns_steps, scaled)
    zero = Share(ctx.precise.ring.zeros((p,)), ctx.precise.ring, ctx.precise.frac)
    beta, beta_fast = advance(ctx, zero, raw)
    return beta, beta_fast, inv_a, a


def _total(x: Share) -> Share:
    """[sum of x's entries], a 1-vector."""
    return Share(x.ring.sum(x.data).reshape(1), x.ring, x.frac)


def newton_step(
    ctx: PartyContext, g: Share, h: Share, p: int, inv_a: Share | None, steps: int, d: Share | None = None
) -> tuple[Share, Share, Share, Share]:
    """The step delta = H^-1 g, with H from its pairs `h`: Jacobi scaling A = D H (d_j = 1 / H_jj, or the
    given `d`), A^-1 by `steps` of Newton-Schulz from `inv_a` (None: from I/p). Returns delta, A^-1, d, A.

    A warm start keeps the previous d: I - D H' (D H)^-1 = D (I - H' H^-1) D^-1 has the spectrum of
    I - H' H^-1 whatever D is, so the start is as good, and no reciprocal is needed."""
    hmat = symmetric(h, p)
    if d is None:
        d, a = scaled_system(ctx, hmat)
    else:
        a = truncate(ctx, mul(ctx, Share(np.repeat(d.data[:, None], p, axis=1), d.ring, d.frac), hmat), d.frac)
    inv_a = newton_schulz(ctx, a, identity_start(ctx, p) if inv_a is None else inv_a, steps)
    delta = fixed_matmul(ctx, inv_a, truncate(ctx, mul(ctx, d, g), d.frac))
    return delta, inv_a, d, a


def _dot(ctx: PartyContext, a: Share, b: Share, frac: int) -> Share:
    """[a . b] at `frac` fractional bits."""
    prod = truncate(ctx, mul(ctx, a, b), a.frac + b.frac - frac)
    return Share(prod.ring.sum(prod.data).reshape(1), prod.ring, frac)


def _final(ctx: PartyContext, data: PoissonData, beta: Share, inv_a: Share, d: Share | None,
           pearson: list[Share], tol: float) -> PoissonShares:
    """Steps 2 and 3 of the module docstring; `pearson`: [sum of Pearson's terms, their count at the cap]."""
    precise = ctx.precise
    ring = precise.ring
    p = data.layout.p
    u = eta_precise(ctx, data.layout, beta, data.offsets)
    power, above = exp2_capped(ctx, u, data.cap, out_frac=PRECISE_RAW, degree=PRECISE_DEGREE, lean=True)
    mu, *halves = split_raw(ctx, power)
    counts = Share(np.array([ring.sum(above.data), pearson[2].data[0]], dtype=object), ring, 0)
    over_cap, over_pearson = (not v for v in open_zero_bits(ctx, counts))
    if over_cap:
        zero = Share(ring.zeros((p,)), ring, precise.frac)
        return PoissonShares(zero, zero, zero[:1], False, False, True, True)
    mus = (narrow(ctx, halves[0]), narrow(ctx, halves[1]))
    g, h, _ = score(ctx, data.layout, mus, data.sums[:p], [])
    raw, inv_a, d, _ = fused_step(ctx, g, h, p, inv_a, WARM_STEPS + 3, d)
    delta, by_g = truncate_times(ctx, raw, raw.frac - precise.frac, g)  # delta and g o delta in one round
    change, remainder = moved(ctx, data.layout, delta, mus[0])
    raw, inv_a, d, a = fused_step(ctx, remainder, h + change, p, inv_a, WARM_STEPS, d)
    _, by_r = truncate_times(ctx, raw, raw.frac - precise.frac, remainder)
    decrements = concat(truncate_each(ctx, [(_total(by_g), by_g.frac - DECREMENT_FRAC),
                                            (_total(by_r), by_r.frac - DECREMENT_FRAC)]))
    limits = np.array([GUARD, tol]) * 2.0**-data.scale
    residual = add_public(ctx, -fixed_matmul(ctx, a, inv_a), np.eye(p))
    below, within = open_final_bits(ctx, add_public(ctx, decrements, -limits), residual, 1e-6)
    converged, singular = bool(below[0] and below[1]), not within
    diag = Share(np.array([inv_a.data[j, j] for j in range(p)], dtype=object), ring, inv_a.frac)
    inv_diag = truncate(ctx, mul(ctx, diag, d), precise.frac)
    sandwich = None
    if data.counts is not None:  # HC0: M = Z'(y' - mu')^2 at beta (delta is below the fit's tolerance)
        resid = data.layout.own(ctx, data.counts, mu) - mu
        _, meat, _ = score(ctx, data.layout, halves_precise(ctx, truncate(ctx, mul(ctx, resid, resid), mu.frac)),
                           data.sums[:p], [])
        sandwich = sandwich_diag(ctx, inv_a, d, meat)

    # log L at beta + delta = log L at beta + (g . delta) / 2 (to second order), all at DECREMENT_FRAC + 1 bits
    shift = DECREMENT_FRAC + 1 - precise.frac
    sum_mu = Share(ring.sum(mu.data).reshape(1), ring, precise.frac)
    loglik = rescale_up(_dot(ctx, data.sums[:p], beta, precise.frac) - sum_mu, shift) + decrements[:1].with_frac(
        DECREMENT_FRAC + 1)
    stats = [loglik.scale_int(1 << data.scale) + rescale_up(data.sums[p : p + 1], shift)]
    if not over_pearson:
        chi2 = rescale_up(rescale_up(pearson[0], SPLIT) + pearson[1], shift).scale_int(1 << data.scale)
        stats.append(chi2 + rescale_up(data.sums[p + 1 : p + 2], shift))
    return PoissonShares(beta + delta, inv_diag, concat(stats), converged, singular, False, bool(over_pearson),
                         sandwich=sandwich)
