"""Plaintext references: what a query would give on the pooled rows, computed in float64 in the clear.

Used by `pooled demo` (to show each answer beside its plaintext value) and by the
benchmarks; never by the MPC path. statsmodels would do, but it is a test-only dependency.
"""

from __future__ import annotations

import numpy as np


def logit_newton(
    x: np.ndarray, y: np.ndarray, tol: float = 1e-10, max_iter: int = 50, strict: bool = False
) -> np.ndarray:
    """Maximum-likelihood logistic coefficients by Newton-Raphson (x includes the intercept column).

    With `strict`, a fit whose step is still above `tol` after `max_iter` iterations raises
    ArithmeticError instead of returning the last iterate; a singular Hessian raises
    numpy.linalg.LinAlgError either way.
    """
    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        mu = 1 / (1 + np.exp(-x @ beta))
        step = np.linalg.solve(x.T @ (x * (mu * (1 - mu))[:, None]), x.T @ (y - mu))
        beta += step
        if np.abs(step).max() < tol:
            return beta
    if strict:
        raise ArithmeticError(f"Newton's method did not converge in {max_iter} iterations")
    return beta


def logit_standard_errors(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Standard errors of logistic coefficients `beta`: sqrt(diag(H^-1)), H = X' diag(p (1 - p)) X."""
    mu = 1 / (1 + np.exp(-x @ beta))
    return np.sqrt(np.diag(np.linalg.inv(x.T @ (x * (mu * (1 - mu))[:, None]))))


def poisson_newton(
    x: np.ndarray, y: np.ndarray, offset: np.ndarray, tol: float = 1e-10, max_iter: int = 50
) -> np.ndarray:
    """Maximum-likelihood Poisson coefficients (log link, `offset` added to the linear predictor)
    by Newton-Raphson from statsmodels' IRLS start, mu0 = (y + mean(y)) / 2 (x includes the
    intercept column); a singular information matrix raises numpy.linalg.LinAlgError."""
    mu = (y + y.mean()) / 2
    eta = np.log(mu) - offset
    beta = np.linalg.solve(x.T @ (x * mu[:, None]), x.T @ (mu * eta))  # weighted least squares start
    for _ in range(max_iter):
        mu = np.exp(x @ beta + offset)
        step = np.linalg.solve(x.T @ (x * mu[:, None]), x.T @ (y - mu))
        beta += step
        if np.abs(step).max() < tol:
            break
    return beta
