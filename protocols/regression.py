"""Regression on shared sufficient statistics: ordinary least squares and logistic IRLS.

Only the final coefficient table leaves MPC. For OLS the parties add their local
X'X, X'y, y'y in shares (secure sum) and the solve runs on the p x p matrix, so the cost
does not grow with the number of rows. Everything here runs in the precise ring.

The opened quantities are exactly those the printed table is a function of: the
coefficients, the diagonal of (X'X)^-1 (with the residual variance this is the standard
errors, and conversely), the residual and total sums of squares (equivalent to the
residual standard error and R^2), and one bit saying the inverse converged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat
from protocols.arith import fixed_for
from protocols.beaver import fixed_matmul, matmul, mul
from protocols.division import divide, reciprocal
from protocols.linalg import iterations_for, newton_schulz, residual_is_small
from protocols.sharing import share_inputs
from protocols.truncation import truncate

RECIPROCAL_SHIFT = 20
"""Bits by which a diagonal entry is relabelled before its reciprocal: 1/m is then held
with 20 extra fractional bits, so tiny reciprocals of large sums of squares keep their
relative precision."""


@dataclass(frozen=True)
class OlsShares:
    """This party's shares of what OLS releases, and the one bit all parties learn.

    The shares go to the analyst, who alone reconstructs them; see the module docstring
    for why exactly these quantities. `converged` is opened to the parties because a
    singular system must be refused before anything else is released.
    """

    coef: Share
    inverse_diag: Share
    rss: Share
    converged: bool
    inverse: Share | None = None  # A^-1 (A = D X'X), kept for a sandwich (`sandwich_diag`); never opened
    jacobi: Share | None = None  # d, with (X'X)^-1 = A^-1 diag(d)


def _diag(m: Share) -> Share:
    p = m.shape[0]
    return Share(np.array([m.data[j, j] for j in range(p)], dtype=m.data.dtype), m.ring, m.frac)


def scaled_system(ctx: PartyContext, m: Share) -> tuple[Share, Share]:
    """[d] with d_j = 1/M_jj (held at frac + RECIPROCAL_SHIFT bits) and [A] = D M.

    The eigenvalues of A lie in (0, p] whatever the units of the covariates, so the
    Newton-Schulz start X0 = I/p is safe.
    """
    d = jacobi_diagonal(ctx, m)
    return d, rescale(ctx, d, m)


def jacobi_diagonal(ctx: PartyContext, m: Share) -> Share:
    """[d] with d_j = 1/M_jj, held at frac + RECIPROCAL_SHIFT bits (one batched secure reciprocal)."""
    shift = RECIPROCAL_SHIFT
    return reciprocal(ctx, _diag(m).with_frac(m.frac + shift)).with_frac(m.frac + shift)


@overload
def rescale(ctx: PartyContext, d: Share, m: Share) -> Share: ...
@overload
def rescale(ctx: PartyContext, d: Share, m: Share, v: Share) -> tuple[Share, Share]: ...
def rescale(ctx: PartyContext, d: Share, m: Share, v: Share | None = None) -> Share | tuple[Share, Share]:
    """[A] = D [M] for a diagonal [d] found earlier (`scaled_system`), and with `v` also
    [D v], in the same two rounds.

    Any positive d keeps A similar to the symmetric D^1/2 M D^1/2; its eigenvalues stay
    below p as long as d_j M_jj <= 1 for every j.
    """
    p = m.shape[0]
    d_rows = Share(np.repeat(d.data[:, None], p, axis=1), d.ring, d.frac)
    if v is None:
        return truncate(ctx, mul(ctx, d_rows, m), d.frac)
    flat = concat([d_rows.reshape(p * p), d])
    both = truncate(ctx, mul(ctx, flat, concat([m.reshape(p * p), v])), d.frac)
    return both[: p * p].reshape(p, p), both[p * p :]


def ols(
    ctx: PartyContext,
    xtx: Share,
    xty: Share,
    yty: Share,
    condition: float = 1e8,
) -> OlsShares:
    """Least squares from shared moments; opens only what the coefficient table needs.

    1. [d], [A] = D [X'X]                     (Jacobi scaling, secure reciprocal)
    2. [A^-1] by Newton-Schulz from I/p        (iterations fixed by the supported condition number)
    3. [beta] = [A^-1] (D [X'y])
    4. [RSS] = [y'y] - [beta]'[X'y]
    5. [v_j] = [A^-1]_jj d_j                    (diagonal of (X'X)^-1, at high precision)
    6. Open the convergence bit to the parties; the rest stays in shares for the analyst.
    """
    fixed = fixed_for(ctx, xtx)
    p = xtx.shape[0]
    d, a = scaled_system(ctx, xtx)
    x0 = Share(fixed.encode(np.eye(p) / p) if ctx.is_leader else xtx.ring.zeros((p, p)), xtx.ring, fixed.frac)
    inv_a = newton_schulz(ctx, a, x0, iterations_for(condition, p, fixed.frac))
    converged = residual_is_small(ctx, a, inv_a, 1e-6)
    scaled_xty = truncate(ctx, mul(ctx, d, xty), d.frac)
    beta = fixed_matmul(ctx, inv_a, scaled_xty)
    fit = truncate(ctx, matmul(ctx, beta.reshape(1, p), xty.reshape(p, 1)), fixed.frac).reshape(1)
    rss = yty.reshape(1) - fit
    inv_diag = truncate(ctx, mul(ctx, _diag(inv_a), d), fixed.frac)  # frac + shift bits
    return OlsShares(beta, inv_diag, rss, converged, inv_a, d)


def pooled_moments(ctx: PartyContext, local: np.ndarray, label: str) -> Share:
    """The sum over the parties of each one's local moments, shared in the precise ring (no round
    with pairwise seeds: `protocols.sharing.share_inputs`)."""
    fp = ctx.precise
    total = None
    for s in share_inputs(ctx, fp.encode(local), fp.ring, fp.frac, label):
        total = s if total is None else total + s
    assert total is not None
    return total


def total_sum_of_squares(ctx: PartyContext, yty: Share, sy: Share, count: Share, centered: bool) -> Share:
    """TSS about the mean, y'y - (sum y)^2 / count, when the design spans a constant; else y'y (statsmodels'
    uncentered R^2 without one). `count`: n, or sum w for weighted moments."""
    if not centered:
        return yty
    mean_y = divide(ctx, sy, count, y_bound=float(2**44))
    return yty - truncate(ctx, mul(ctx, mean_y, sy), ctx.precise.frac)


SANDWICH_FRAC = 48
"""Fractional bits of (X'X)^-1 and of the sandwich's products: 8 more than the precise ring's 40,
with headroom below 2^126 for products of entries up to about 2^15."""


def _pairs(p: int) -> list[tuple[int, int]]:
    """The (j, k) pairs, j <= k, of a symmetric p x p matrix's upper triangle, row by row."""
    return [(j, k) for j in range(p) for k in range(j, p)]


def meat(ctx: PartyContext, beta: Share, a0: Share, a1: Share, a2: Share) -> Share:
    """[M] = sum_i w_i^2 (y_i - x_i'beta)^2 x_i x_i' (upper triangle, `pair_index` order) from shared moments.

    With q = p(p+1)/2 pairs (a, b), a <= b, and z_i the row's products x_a x_b:
    a0 = sum w^2 y^2 z (q), a1[k] = sum w^2 y x_k z (p x q), a2[kl] = sum w^2 x_k x_l z (q x q, pairs k <= l).
    1. [beta_k beta_l] for the pairs, and [beta_k] [a1[k]]          (one batched product, one truncation)
    2. [M] = a0 - 2 sum_k beta_k a1[k] + sum_kl c_kl beta_k beta_l a2[kl], c = 1 on the diagonal, else 2
    """
    p = beta.shape[0]
    pairs = _pairs(p)
    q = len(pairs)
    left = concat([Share(np.array([beta.data[k] for k, _ in pairs], dtype=beta.data.dtype), beta.ring, beta.frac),
                   Share(np.repeat(beta.data, q), beta.ring, beta.frac)])
    right = concat([Share(np.array([beta.data[m] for _, m in pairs], dtype=beta.data.dtype), beta.ring, beta.frac),
                    a1.reshape(p * q)])
    first = truncate(ctx, mul(ctx, left, right), beta.frac)
    bb, b_a1 = first[:q], first[q:].reshape(p, q)
    weights = np.array([1 if k == m else 2 for k, m in pairs], dtype=object)
    doubled = Share(beta.ring.reduce(np.asarray(bb.data, dtype=object) * weights), bb.ring, bb.frac)
    rows = Share(np.repeat(doubled.data, q), bb.ring, bb.frac)
    quad = truncate(ctx, mul(ctx, rows, a2.reshape(q * q)), bb.frac).reshape(q, q)
    lin = Share(beta.ring.sum(b_a1.data, axis=0), beta.ring, b_a1.frac)
    square = Share(beta.ring.sum(quad.data, axis=0), beta.ring, quad.frac)
    return a0 - lin - lin + square


def sandwich_diag(ctx: PartyContext, inv_a: Share, d: Share, m_pairs: Share) -> Share:
    """diag((X'X)^-1 M (X'X)^-1) at SANDWICH_FRAC bits, from A^-1 and d of a Jacobi-scaled solve
    ((X'X)^-1 = A^-1 diag(d): `ols`, `protocols.logistic`) and M's upper triangle (`meat`).

    1. [(X'X)^-1] = [A^-1] diag([d])                 (one product, one truncation)
    2. [C] = [(X'X)^-1] [M]                           (one matrix product, one truncation)
    3. [v_j] = sum_b [C_jb] [(X'X)^-1_bj]             (one product, one truncation)
    """
    p = inv_a.shape[0]
    d_cols = Share(np.repeat(d.data[None, :], p, axis=0), d.ring, d.frac)
    inv = truncate(ctx, mul(ctx, inv_a, d_cols), inv_a.frac + d.frac - SANDWICH_FRAC)
    full = m_pairs.ring.zeros((p, p))
    for i, (j, k) in enumerate(_pairs(p)):
        full[j, k] = full[k, j] = m_pairs.data[i]
    c = truncate(ctx, matmul(ctx, inv, Share(full, m_pairs.ring, m_pairs.frac)), m_pairs.frac)
    inv_t = Share(np.ascontiguousarray(inv.data.T), inv.ring, inv.frac)
    prod = mul(ctx, c, inv_t)
    summed = Share(prod.ring.sum(prod.data, axis=1), prod.ring, prod.frac)
    return truncate(ctx, summed, SANDWICH_FRAC)
