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


def weighted_logit_hc0(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, tol: float = 1e-10, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Logistic coefficients under inverse-probability weights `w` and their HC0 sandwich standard errors,
    as statsmodels' `GLM(y, x, Binomial(), var_weights=w).fit(cov_type="HC0")` (x includes the intercept
    column): Newton-Raphson on sum w_i l_i, then sqrt(diag(H^-1 M H^-1)) with H = X' diag(w p (1 - p)) X
    and M = X' diag(w^2 (y - p)^2) X."""
    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        mu = 1 / (1 + np.exp(-x @ beta))
        step = np.linalg.solve(x.T @ (x * (w * mu * (1 - mu))[:, None]), x.T @ (w * (y - mu)))
        beta += step
        if np.abs(step).max() < tol:
            break
    mu = 1 / (1 + np.exp(-x @ beta))
    bread = np.linalg.inv(x.T @ (x * (w * mu * (1 - mu))[:, None]))
    meat = x.T @ (x * ((w * (y - mu)) ** 2)[:, None])
    return beta, np.sqrt(np.diag(bread @ meat @ bread))


def _cox_score(time: np.ndarray, event: np.ndarray, x: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradient and the information of Breslow's log partial likelihood at `beta`."""
    risk_score = np.exp(x @ beta)
    grad, info = np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1]))
    for t in np.unique(time[event == 1]):
        at_risk, died = time >= t, (time == t) & (event == 1)
        r, z = risk_score[at_risk], x[at_risk]
        s0, mean = r.sum(), r @ z / r.sum()
        grad += x[died].sum(axis=0) - died.sum() * mean
        info += died.sum() * ((z * r[:, None]).T @ z / s0 - np.outer(mean, mean))
    return grad, info


def cox_breslow_newton(
    time: np.ndarray, event: np.ndarray, x: np.ndarray, tol: float = 1e-10, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Cox proportional hazards coefficients and standard errors with Breslow's ties, as statsmodels'
    `PHReg(time, x, status=event, ties="breslow")` (x without an intercept): Newton-Raphson on the log
    partial likelihood, each event at time t against the risk set {time >= t}; sqrt(diag(I^-1))."""
    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        grad, info = _cox_score(time, event, x, beta)
        step = np.linalg.solve(info, grad)
        beta += step
        if np.abs(step).max() < tol:
            break
    return beta, np.sqrt(np.diag(np.linalg.inv(_cox_score(time, event, x, beta)[1])))
