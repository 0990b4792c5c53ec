"""Inverting a shared symmetric positive definite matrix, for regression.

Regression needs (X'X)^-1 (linear) and the inverse Fisher information (logistic), both
small p x p matrices that must stay secret until the final table. Pooled inverts them with
the Newton-Schulz iteration X <- X (2I - A X), which uses only matrix products (no
division per pivot, unlike Gaussian elimination), converges quadratically once
||I - A X|| < 1, and corrects its own rounding errors — which is what fixed point needs.

The caller Jacobi-scales the matrix first (A = D M with D = diag(1 / M_jj), see
`protocols.regression`), so that A's eigenvalues lie in (0, p] whatever the units of the
data; then X0 = I / p is a safe start. A warm start (the previous Newton step's inverse)
cuts the iterations to a handful.

Reference: G. Schulz, "Iterative Berechnung der reziproken Matrix", ZAMM 13 (1933);
V. Pan and R. Schreiber, "An improved Newton iteration for the generalized inverse of a
matrix", SIAM J. Sci. Stat. Comput. 12 (1991).
"""

from __future__ import annotations

import math

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from protocols.arith import add_public, fixed_for
from protocols.beaver import fixed_matmul
from protocols.newton_schulz import newton_schulz_fused
from protocols.open_sign import all_within


def iterations_for(condition: float, p: int, frac: int) -> int:
    """Newton-Schulz steps from X0 = I/p that reach 2^-frac for condition numbers up to `condition`.

    With e0 = 1 - 1/(p * condition) the residual after k steps is e0^(2^k).
    """
    lam = 1.0 / (p * condition)
    needed = frac * math.log(2) / -math.log1p(-lam) if lam < 1 else 1.0
    return max(1, math.ceil(math.log2(max(needed, 1.0)))) + 2


def newton_schulz(ctx: PartyContext, a: Share, x0: Share, iterations: int) -> Share:
    """Iterate X <- X (2I - A X) `iterations` times from X0. Two rounds per step, plus one.

    1. [AX] = [A] @ [X]             (matrix product; X's truncation rides in its opening)
    2. [T]  = 2I - [AX]             (AX's truncation rides in the next opening)
    3. [X]  = [X] @ [T]             (local, from the dealer's products; see `protocols.newton_schulz`)
    """
    fixed = fixed_for(ctx, a)
    x = newton_schulz_fused(ctx, a, x0, iterations)
    assert x.frac == fixed.frac
    return x


def residual_is_small(ctx: PartyContext, a: Share, inv_a: Share, tolerance: float) -> bool:
    """Open one bit: is every entry of I - A A^-1 below `tolerance` in magnitude?

    A singular or nearly singular matrix (perfect separation, collinear covariates) leaves
    Newton-Schulz far from converged; only this single yes/no bit is revealed
    (`protocols.open_sign.all_within`).
    """
    p = a.shape[0]
    residual = add_public(ctx, -fixed_matmul(ctx, a, inv_a), np.eye(p))
    return all_within(ctx, residual, tolerance)
