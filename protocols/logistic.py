"""Logistic regression to convergence in MPC: Newton-Raphson (IRLS) with shared coefficients.

Each party holds its own rows (X_i, y_i) in the clear; the coefficients, fitted
probabilities, gradient and Hessian stay shared throughout, and no intermediate
coefficient is ever opened (unlike DataSHIELD's ds.glm, which reveals them every
iteration). The parties learn one bit per iteration (converged or not), so the iteration
count — which statsmodels reports too — is the only thing the loop reveals.

Covariates arrive scaled by public powers of two so that |x| <= 1 (see
`queries`/regression compilation: the exponent is the bit length of the pooled maximum,
the one fact this scaling reveals); that keeps the row-level sums of the fast ring far
from overflow and their precision uniform. The caller unscales the coefficients.

One iteration:
1. [eta_i] = X_i [beta] for every party's rows      (owned matrix products, 1 round + truncation)
2. [mu] = sigmoid([eta]);  [w] = [mu](1 - [mu]);  [r] = [y] - [mu]
   (the first iteration skips 1-2: at beta = 0, mu = 1/2 and w = 1/4 on every row, public)
3. [g] = sum_i X_i' [r_i];  [H] = sum_i Z_i' [w_i]   (one batched round; Z_i holds the pairwise
   products x_j x_k of each row, so H needs no product of shared values)
4. Lift g and H into the precise ring; Jacobi-scale H: A = D H with d_j = 1/H_jj found once,
   in the first iteration (a secure reciprocal), and kept: no later weight exceeds the first
   iteration's 1/4, so A's eigenvalues stay below p; invert A by Newton-Schulz, from I/p in
   the first iteration and warm from the previous inverse after (`protocols.newton_schulz`:
   two rounds a step), [delta] = A^-1 D [g] riding in its last round;  [beta] += [delta]
5. Open one bit: the Newton decrement g' H^-1 g = g . delta (twice the log-likelihood a
   further step would gain) is below tol (`protocols.open_sign`). Unlike a bound on the change
   of the coefficients, it does not depend on their units; the row-level fixed point leaves it
   a noise floor of about 1e-9, so tol defaults to 1e-8. delta's truncation rides in the
   product's opening (`protocols.trunc_mul`), and the decrement's truncation shares a round
   with the next iteration's fast-ring coefficients.

Weights (`setup(..., w_local=)`, each party's own w_i, scaled by the caller to w <= 1): the rows'
masked matrix is [X | WX | w] (eta reads its first p columns, the score its next p) and Z holds
w x_j x_k, so the score is X'W(y - mu) and the information Z'(mu(1 - mu)) at no extra round;
the final pass adds w' t (t: each row's log-likelihood term) to the information's product.
With `robust`, the parties also publish W^2 Z, and the final pass forms mu (from its
1 / (1 + exp(-|eta|)) and the sign of eta), the meat M = (W^2 Z)'(y - mu)^2 and the HC0
sandwich diag(H^-1 M H^-1) (`protocols.regression.sandwich_diag`).

Reference: P. McCullagh and J. Nelder, Generalized Linear Models (1989), §4.4 (IRLS);
the same Newton iteration as statsmodels' Logit.fit(method="newton").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mpc.context import PartyContext
from mpc.dealer import mark
from mpc.share import Share, concat, split_like
from protocols.arith import add_public, rescale_up
from protocols.beaver import fixed_mul, mul
from protocols.compare import ltz
from protocols.convert import extend_ring
from protocols.division import newton_reciprocal
from protocols.exp_log import exp, log
from protocols.linalg import iterations_for, newton_schulz, residual_is_small
from protocols.newton_schulz import newton_schulz_times
from protocols.open_sign import open_less_than_public
from protocols.owned import OwnedMatrix, owned_matvec_many, publish_masked
from protocols.regression import jacobi_diagonal, rescale, sandwich_diag
from protocols.select import absolute
from protocols.sharing import share_from
from protocols.sigmoid import sigmoid
from protocols.trunc_mul import truncate_times
from protocols.truncation import truncate, truncate_each, truncate_many

X_FRAC = 20
"""Fractional bits of the scaled covariates (|x| <= 1) in the fast ring."""

COLD_ITERATIONS = 2
"""POISSON's Newton iterations whose Hessian is inverted from scratch (its weights move a lot
early; a logistic weight never exceeds its first value, 1/4, see `fit`)."""

EXTRA_BITS = 24
"""Fractional bits beyond the fast ring's 20 kept for the final weights (exp's own margin)."""

WARM_STEPS = 7
"""Newton-Schulz steps from a previous inverse at full precision; quadratic convergence makes
a residual of 1/2 into 2^-128 in seven steps, and the final residual is checked anyway."""

LOOP_STEPS = 5
"""Newton-Schulz steps from the previous iteration's inverse inside the Newton loop. Those
inverses only steer the steps: a residual r leaves the inverse off by r^32 (1e-4 from
r = 3/4, the largest between iterations on breast_cancer), and Newton with an inverse off
by e converges as fast as exact Newton once e is small; the final pass refines the last
inverse with WARM_STEPS steps and checks its residual."""


@dataclass(frozen=True)
class LogisticData:
    """The consortium's rows as this party sees them: masked matrices and shared outcomes."""

    x: list[OwnedMatrix]
    z: list[OwnedMatrix]
    y: list[Share]
    p: int
    weighted: bool = False  # x holds [X | WX | w] and z holds W Z
    z2: list[OwnedMatrix] | None = None  # W^2 Z (high and low parts, `split_products`), for the HC0 meat


@dataclass(frozen=True)
class LogisticShares:
    """This party's shares of the released quantities, and what the loop revealed."""

    coef: Share
    inverse_diag: Share
    loglik: Share
    iterations: int
    converged: bool
    singular: bool
    sandwich: Share | None = None  # diag(H^-1 M H^-1) (weights with robust errors)


def pair_index(p: int) -> list[tuple[int, int]]:
    """The (j, k) pairs, j <= k, that a row's Z holds."""
    return [(j, k) for j in range(p) for k in range(j, p)]


def pairwise_products(x: np.ndarray) -> np.ndarray:
    """Each row's products x_j x_k for j <= k (the row's contribution to X'WX, without w)."""
    idx = pair_index(x.shape[1])
    return np.stack([x[:, j] * x[:, k] for j, k in idx], axis=1) if len(x) else np.zeros((0, len(idx)))


def split_products(z: np.ndarray) -> np.ndarray:
    """[Z_hi | Z_lo]: Z rounded to X_FRAC bits, and its rounding error scaled up by 2^EXTRA_BITS.

    With a condition number near 2e4 (collinear covariates) the standard errors need the
    information matrix to about 4e-8 relative, beyond X_FRAC bits per row; the low part
    carries EXTRA_BITS more, and the final pass uses it.
    """
    hi = np.round(z * 2.0**X_FRAC) / 2.0**X_FRAC
    return np.hstack([hi, (z - hi) * 2.0**EXTRA_BITS])


def setup(
    ctx: PartyContext, x_local: np.ndarray, y_local: np.ndarray, rows: Sequence[int], session_name: str = "logit",
    w_local: np.ndarray | None = None, robust: bool = False,
) -> LogisticData:
    """Publish every party's masked X and Z and share every party's y. Two rounds (three with `robust`).

    `x_local` is this party's scaled design matrix (|x| <= 1, rows[rank] rows); `rows` gives
    every party's row count, which the parties agree on beforehand (padded by the caller
    so that it reveals only a bucket size; zero rows contribute nothing). `w_local`: this
    party's weights (0 <= w <= 1, 0 on padding rows); see the module docstring.
    """
    fixed = ctx.fixed
    p = x_local.shape[1]
    owners = [r for r in range(ctx.n) if rows[r] > 0]
    width = p if w_local is None else 2 * p + 1
    shapes_x = {r: (rows[r], width) for r in owners}
    shapes_z = {r: (rows[r], p * (p + 1)) for r in owners}
    z_local = pairwise_products(x_local)
    if w_local is None:
        mine_x = {ctx.rank: fixed.encode(x_local, X_FRAC)}
    else:
        mine_x = {ctx.rank: fixed.encode(np.hstack([x_local, x_local * w_local[:, None], w_local[:, None]]), X_FRAC)}
        z_local = z_local * w_local[:, None]
    mine_z = {ctx.rank: fixed.encode(split_products(z_local), X_FRAC)}
    x = publish_masked(ctx, owners, mine_x, shapes_x, f"{session_name}-X", fixed.ring, X_FRAC)
    z = publish_masked(ctx, owners, mine_z, shapes_z, f"{session_name}-Z", fixed.ring, X_FRAC)
    z2 = None
    if robust and w_local is not None:
        mine_z2 = {ctx.rank: fixed.encode(split_products(z_local * w_local[:, None]), X_FRAC)}
        shapes_z2 = {r: (rows[r], p * (p + 1)) for r in owners}
        z2 = publish_masked(ctx, owners, mine_z2, shapes_z2, f"{session_name}-Z2", fixed.ring, X_FRAC)
    y = [
        share_from(ctx, r, fixed.encode(y_local) if r == ctx.rank else None, (rows[r],), fixed.ring, fixed.frac)
        for r in owners
    ]
    return LogisticData(x, z, y, p, w_local is not None, z2)


def _eta_vector(data: LogisticData, beta: Share) -> Share:
    """beta, padded with zeros to the width of a weighted [X | WX | w] (eta reads X alone)."""
    if not data.weighted:
        return beta
    pad = Share(beta.ring.zeros((data.p + 1,)), beta.ring, beta.frac)
    return concat([beta, pad])


def _fitted(ctx: PartyContext, data: LogisticData, beta: Share) -> tuple[list[Share], Share]:
    """[eta_i] per party and [mu] for all rows (FAST, context frac)."""
    etas = owned_matvec_many(ctx, [(om, _eta_vector(data, beta), False) for om in data.x], "logit-eta")
    etas = truncate_many(ctx, etas, X_FRAC)
    return etas, sigmoid(ctx, concat(etas))


def _at_zero(ctx: PartyContext, data: LogisticData, value: float) -> Share:
    """A public value for every row, as shares (party 0 holds it): mu and w at beta = 0."""
    fixed = ctx.fixed
    rows = sum(y.size for y in data.y)
    const = fixed.encode(np.full(rows, value)) if ctx.is_leader else fixed.ring.zeros((rows,))
    return Share(const, fixed.ring, fixed.frac)


def _gradient_and_hessian(
    ctx: PartyContext, data: LogisticData, mu: Share, etas: list[Share], w: Share | None = None
) -> tuple[Share, Share]:
    """[g] = X'(y - mu) and the upper triangle of [H] = X'WX, w = mu (1 - mu) unless given."""
    fixed = ctx.fixed
    if w is None:
        w = fixed_mul(ctx, mu, add_public(ctx, -mu, 1.0))
    mus = split_like(mu, etas)
    ws = split_like(w, etas)
    resid = [y - m for y, m in zip(data.y, mus)]
    parts = owned_matvec_many(
        ctx,
        [(om, r, True) for om, r in zip(data.x, resid)] + [(om, wi, True) for om, wi in zip(data.z, ws)],
        "logit-grad-hess",
    )
    k = len(data.x)
    g = parts[0]
    for extra in parts[1:k]:
        g = g + extra
    h = parts[k]
    for extra in parts[k + 1 :]:
        h = h + extra
    assert g.frac == h.frac == fixed.frac + X_FRAC
    if data.weighted:
        g = g[data.p : 2 * data.p]  # X'W r, from [X | WX | w]' r
    return g, h[: h.size // 2]  # the high part of Z is precise enough to steer Newton


def lift(ctx: PartyContext, x: Share) -> Share:
    """A fast-ring share into the precise ring at the precise frac."""
    big = extend_ring(ctx, x)
    target = ctx.precise.frac
    if big.frac < target:
        return rescale_up(big, target - big.frac)
    return truncate(ctx, big, big.frac - target) if big.frac > target else big


def symmetric(h_flat: Share, p: int) -> Share:
    ring = h_flat.ring
    out = ring.zeros((p, p))
    for i, (j, k) in enumerate(pair_index(p)):
        out[j, k] = h_flat.data[i]
        out[k, j] = h_flat.data[i]
    return Share(out, ring, h_flat.frac)


def to_fast(ctx: PartyContext, beta: Share) -> Share:
    """Precise-ring coefficients to fast-ring shares at the fast frac (shares reduce mod 2^64)."""
    down = truncate(ctx, beta, beta.frac - ctx.fixed.frac)
    return Share(ctx.fixed.ring.reduce(down.data), ctx.fixed.ring, ctx.fixed.frac)


def fit(
    ctx: PartyContext,
    data: LogisticData,
    maxiter: int = 35,
    tol: float = 1e-8,
    condition: float = 1e7,
) -> LogisticShares:
    """Newton-Raphson to convergence; returns shares of coefficients, diag(H^-1), log-likelihood."""
    precise = ctx.precise
    p = data.p
    beta = Share(precise.ring.zeros((p,)), precise.ring, precise.frac)
    ns_steps = iterations_for(condition, p, precise.frac)
    converged = False
    iterations = 0
    inv_a = a = d = None
    beta_fast = Share(ctx.fixed.ring.zeros((p,)), ctx.fixed.ring, ctx.fixed.frac)
    same_pass = f"logistic-pass/{ctx.n}/{p}/{ns_steps}/{ctx.fixed}/{ctx.precise}/" + "/".join(
        f"{om.owner}:{om.name}:{om.shape}" for om in [*data.x, *data.z])  # what a pass's dealer material depends on
    while iterations < maxiter:
        iterations += 1
        mark(ctx.material, f"{same_pass}/{min(iterations, 2)}")  # passes 2, 3, ... ask alike: sent ahead
        if iterations == 1:  # beta = 0: mu = 1/2 and w = 1/4 on every row, public
            g, h = _gradient_and_hessian(ctx, data, _at_zero(ctx, data, 0.5), data.y, _at_zero(ctx, data, 0.25))
        else:
            etas, mu = _fitted(ctx, data, beta_fast)
            g, h = _gradient_and_hessian(ctx, data, mu, etas)
        lifted = lift(ctx, concat([g, h]))
        g_big, h_big = lifted[:p], lifted[p:]
        hmat = symmetric(h_big, p)
        if d is None or inv_a is None:
            d = jacobi_diagonal(ctx, hmat)  # at beta = 0 every weight is 1/4, the largest it can be
            a, scaled_g = rescale(ctx, d, hmat, g_big)
            start = precise.encode(np.eye(p) / p) if ctx.is_leader else precise.ring.zeros((p, p))
            inv_a, delta_raw = newton_schulz_times(ctx, a, Share(start, precise.ring, precise.frac), ns_steps, scaled_g)
        else:  # the first iteration's scaling, and a warm start from the previous inverse
            a, scaled_g = rescale(ctx, d, hmat, g_big)
            inv_a, delta_raw = newton_schulz_times(ctx, a, inv_a, LOOP_STEPS, scaled_g)
        # Newton decrement g' H^-1 g = g . delta: twice the log-likelihood still to gain. The step's
        # truncation rides with the product's opening; the decrement's truncation and the next
        # iteration's fast-ring coefficients share one round.
        delta, products = truncate_times(ctx, delta_raw, delta_raw.frac - precise.frac, g_big)
        beta = beta + delta
        raw_total = Share(precise.ring.sum(products.data).reshape(1), precise.ring, products.frac)
        total, down = truncate_each(ctx, [(raw_total, precise.frac), (beta, beta.frac - ctx.fixed.frac)])
        beta_fast = Share(ctx.fixed.ring.reduce(down.data), ctx.fixed.ring, ctx.fixed.frac)
        if bool(open_less_than_public(ctx, total, tol)[0]):
            converged = True
            break
    mark(ctx.material, None)
    assert inv_a is not None and d is not None
    return _final_pass(ctx, data, beta, beta_fast, d, inv_a, iterations, converged)


def _final_pass(
    ctx: PartyContext, data: LogisticData, beta: Share, beta_fast: Share, d: Share, inv_a: Share, iterations: int,
    converged: bool,
) -> LogisticShares:
    """At the final coefficients: the log-likelihood and a high-precision information matrix.

    The weights w = mu (1 - mu) = e / (1 + e)^2 with e = exp(-|eta|) are formed with 44
    fractional bits (e keeps its relative precision however small) and split into a high
    and a low part of 20 bits each, so that Z' w is accumulated in two fast-ring products
    without overflow and lifted to the precise ring as one 44-bit-accurate Hessian; its
    inverse (warm-started from the last iteration's) gives the standard errors.
    log L = sum_i y_i eta_i - softplus(eta_i), softplus(t) = max(t, 0) + log(1 + exp(-|t|)).
    """
    fast, precise = ctx.fixed, ctx.precise
    f = fast.frac
    p = data.p
    etas = owned_matvec_many(ctx, [(om, _eta_vector(data, beta_fast), False) for om in data.x], "logit-final-eta")
    etas = truncate_many(ctx, etas, X_FRAC)
    eta = concat(etas)
    if data.z2 is None:
        abs_eta, neg = absolute(ctx, eta), None
    else:  # `absolute`, keeping [eta < 0] for the residuals of the HC0 meat
        neg = ltz(ctx, eta)
        abs_eta = eta - mul(ctx, neg, eta).with_frac(eta.frac).scale_int(2)
    e_fine = exp(ctx, -abs_eta, out_frac=f + EXTRA_BITS)
    e = truncate(ctx, e_fine, EXTRA_BITS)
    one_plus = add_public(ctx, e, 1.0)
    relu = truncate(ctx, (eta + abs_eta).with_frac(eta.frac + 1), 1)  # (t + |t|) / 2
    softplus = relu + log(ctx, one_plus)
    fit_part = truncate(ctx, mul(ctx, concat(data.y), eta), eta.frac)
    terms = fit_part - softplus
    loglik = Share(terms.ring.sum(terms.data).reshape(1), terms.ring, terms.frac)
    weighted_terms = [(om, t, True) for om, t in zip(data.x, split_like(terms, etas))] if data.weighted else []

    r = newton_reciprocal(ctx, one_plus, 1.0, 2.0, 3)
    r2 = fixed_mul(ctx, r, r)
    w_fine = truncate(ctx, mul(ctx, e_fine, r2), f)  # f + EXTRA_BITS fractional bits
    w_hi = truncate(ctx, w_fine, EXTRA_BITS)
    w_lo = (w_fine - rescale_up(w_hi, EXTRA_BITS)).with_frac(f)  # the low bits, scaled up by 2^EXTRA_BITS
    his, los = split_like(w_hi, etas), split_like(w_lo, etas)
    parts = owned_matvec_many(
        ctx, [(om, w, True) for om, w in zip(data.z, his)] + [(om, w, True) for om, w in zip(data.z, los)]
        + weighted_terms, "logit-final-hess",
    )
    k = len(data.z)
    if data.weighted:  # w't, the last entry of [X | WX | w]' t
        total = parts[2 * k][2 * p :]
        for extra in parts[2 * k + 1 :]:
            total = total + extra[2 * p :]
        loglik = truncate(ctx, total, X_FRAC)
    by_hi, by_lo = parts[0], parts[k]  # Z' w_hi and Z' w_lo, each [Z_hi' . | Z_lo' .]
    for extra in parts[1:k]:
        by_hi = by_hi + extra
    for extra in parts[k + 1 : 2 * k]:
        by_lo = by_lo + extra
    q = by_hi.size // 2
    # H = Z_hi' w_hi + 2^-EXTRA (Z_hi' w_lo + Z_lo' w_hi), the last product being negligible.
    lifted = lift(ctx, concat([by_hi[:q], by_lo[:q] + by_hi[q:]]))
    low = truncate(ctx, lifted[q:].with_frac(precise.frac + EXTRA_BITS), EXTRA_BITS)
    hmat = symmetric(lifted[:q] + low, p)
    a = rescale(ctx, d, hmat)
    inv_a = newton_schulz(ctx, a, inv_a, WARM_STEPS)
    singular = not residual_is_small(ctx, a, inv_a, 1e-6)
    diag = Share(np.array([inv_a.data[j, j] for j in range(p)], dtype=object), precise.ring, inv_a.frac)
    inv_diag = truncate(ctx, mul(ctx, diag, d), precise.frac)
    sandwich = _sandwich(ctx, data, r, neg, etas, inv_a, d) if neg is not None else None
    return LogisticShares(beta, inv_diag, loglik, iterations, converged, singular, sandwich)


def _sandwich(
    ctx: PartyContext, data: LogisticData, recip: Share, neg: Share, etas: list[Share], inv_a: Share, d: Share
) -> Share:
    """diag(H^-1 M H^-1) with M = sum_i w_i^2 (y_i - mu_i)^2 x_i x_i' (HC0), at the final coefficients.

    1. [mu] = [recip] + [eta < 0](1 - 2 [recip]), recip = 1 / (1 + exp(-|eta|)) from the final pass
       (mu = recip for eta >= 0, 1 - recip below);  [r^2] = ([y] - [mu])^2
    2. [M] = (W^2 Z)' [r^2]   (one owned product; Z's high part plus 2^-EXTRA_BITS its low part, as the
       information's: a small weight squared leaves few of a row's 20 bits), lifted to the precise ring
    3. `protocols.regression.sandwich_diag` with H^-1 = A^-1 diag(d)
    """
    assert data.z2 is not None
    flip = mul(ctx, neg, add_public(ctx, -recip.scale_int(2), 1.0)).with_frac(recip.frac)
    resid = concat(data.y) - (recip + flip)
    r2 = split_like(fixed_mul(ctx, resid, resid), etas)
    parts = owned_matvec_many(ctx, [(om, r, True) for om, r in zip(data.z2, r2)], "logit-meat")
    m = parts[0]
    for extra in parts[1:]:
        m = m + extra
    lifted = lift(ctx, m)
    q = lifted.size // 2
    low = truncate(ctx, lifted[q:].with_frac(ctx.precise.frac + EXTRA_BITS), EXTRA_BITS)
    return sandwich_diag(ctx, inv_a, d, lifted[:q] + low)
