"""LINEAR and LOGISTIC models: the local design matrix, the MPC fit, and the coefficient table.

Each party builds its own design matrix from its complete cases (an intercept, numeric
covariates, treatment dummies of C(col) with the first sorted level as reference, as in
R and statsmodels). Before any fit, the parties check in MPC that there are at least k
complete cases, no more parameters than a fraction of them, and at least k rows in every
level used as a dummy; only the yes/no is opened, and a refusal releases nothing else.

LINEAR adds the parties' X'X, X'y, y'y in shares and solves (protocols.regression.ols).
LOGISTIC runs Newton-Raphson to convergence on the rows (protocols.logistic). The table is
built by the analyst from the released values (statsmodels' conventions: t and the t
distribution for OLS, z and the normal for Logit).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mpc.context import PartyContext
from mpc.share import Share, concat
from protocols import logistic
from protocols.aggregate import secure_sum
from protocols.arith import add_public
from protocols.compare import ltz
from protocols.division import divide
from protocols.opening import open_arith
from protocols.regression import ols
from protocols.select import maximum
from protocols.sharing import share_inputs
from protocols.truncation import truncate
from queries import ir
from queries.conditions import keep_rows
from queries.plan import Plan
from queries.result import Result
from queries.table import numeric

SCALE_EXPONENTS = tuple(range(-8, 41))
"""Candidate public scales 2^e for a covariate's pooled maximum |x|."""


class ModelRefused(Exception):
    """The consortium declines to fit the model; the message is the only thing released."""


def design(plan: Plan, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """This party's complete-case design matrix and outcome (float64)."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    kept = frame[keep_rows(frame, stmt.where)]
    cols = [stmt.outcome] + [t.column for t in stmt.terms]
    kept = kept[kept[cols].notna().all(axis=1)]
    parts = [np.ones((len(kept), 1))] if stmt.intercept else []
    for t in stmt.terms:
        if t.categorical:
            levels = [n.split("[T.", 1)[1][:-1] for n in plan.terms if n.startswith(f"C({t.column})[T.")]
            values = kept[t.column].astype(str).to_numpy()
            parts.append(np.stack([(values == lv).astype(np.float64) for lv in levels], axis=1))
        else:
            parts.append(numeric(kept, t.column)[:, None])
    x = np.hstack(parts) if parts else np.zeros((len(kept), 0))
    return x, numeric(kept, stmt.outcome)


def _dummy_columns(plan: Plan) -> list[int]:
    return [i for i, name in enumerate(plan.terms) if name.startswith("C(")]


def check_refusals(ctx: PartyContext, plan: Plan, x: np.ndarray) -> Share:
    """Open, to the parties, whether the model must be refused; raise ModelRefused with the reason.

    Returns [n] (pooled complete cases, precise ring) for later use.
    """
    fp = ctx.precise
    dummies = _dummy_columns(plan)
    local = np.concatenate([[len(x)], x[:, dummies].sum(axis=0) if dummies else []])
    totals = secure_sum(ctx, fp.encode(local), fp.ring, fp.frac)
    n = totals[:1]
    p = len(plan.terms)
    checks = [add_public(ctx, n, -float(plan.min_cell)), add_public(ctx, n, -p / plan.param_fraction)]
    if dummies:
        checks.append(add_public(ctx, totals[1:], -float(plan.min_cell)))
    bits = open_arith(ctx, [ltz(ctx, concat(checks))], "model-refusal")[0]
    flags = [int(v) for v in np.ravel(bits)]
    if flags[0]:
        raise ModelRefused(f"fewer than {plan.min_cell} complete cases")
    if flags[1]:
        raise ModelRefused(f"{p} parameters is more than {plan.param_fraction:g} of the complete cases")
    if any(flags[2:]):
        raise ModelRefused(f"a level used as a dummy has fewer than {plan.min_cell} rows")
    return n


def execute(ctx: PartyContext, plan: Plan, frame: pd.DataFrame) -> tuple[list[Share], dict[str, Any]]:
    """This party's shares of the released values and the public facts of the fit."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    x, y = design(plan, frame)
    try:
        n = check_refusals(ctx, plan, x)
    except ModelRefused as refusal:
        return [], {"refused": str(refusal)}
    if stmt.kind == "LINEAR":
        return _linear(ctx, plan, x, y, n)
    return _logistic(ctx, plan, x, y, n)


def _linear(
    ctx: PartyContext, plan: Plan, x: np.ndarray, y: np.ndarray, n: Share
) -> tuple[list[Share], dict[str, Any]]:
    fp = ctx.precise
    p = x.shape[1]
    local = np.concatenate([(x.T @ x).ravel(), x.T @ y, [y @ y, y.sum()]])
    total = None
    for s in share_inputs(ctx, fp.encode(local), fp.ring, fp.frac, "moments"):
        total = s if total is None else total + s
    assert total is not None
    xtx, xty, yty, sy = total[: p * p].reshape(p, p), total[p * p : p * p + p], total[-2:-1], total[-1:]
    fit = ols(ctx, xtx, xty, yty)
    if not fit.converged:
        return [], {"refused": "the covariates are collinear (X'X is singular)"}
    mean_y = divide(ctx, sy, n, y_bound=float(2**44))
    tss = yty - truncate(ctx, _mul(ctx, mean_y, sy), fp.frac)
    return [fit.coef, fit.inverse_diag, fit.rss, tss, n], {}


def _mul(ctx: PartyContext, a: Share, b: Share) -> Share:
    from protocols.beaver import mul

    return mul(ctx, a, b)


def _scales(ctx: PartyContext, x: np.ndarray) -> np.ndarray:
    """Public exponents e_j with pooled max |x_j| <= 2^e_j (only the exponent is opened)."""
    fp = ctx.precise
    p = x.shape[1]
    local_max = np.abs(x).max(axis=0) if len(x) else np.zeros(p)
    inputs = share_inputs(ctx, fp.encode(local_max), fp.ring, fp.frac, "scale-max")
    while len(inputs) > 1:
        half = len(inputs) // 2
        merged = [maximum(ctx, inputs[i], inputs[half + i]) for i in range(half)]
        inputs = merged + inputs[2 * half :]
    pooled = inputs[0]
    tiles = Share(np.repeat(pooled.data, len(SCALE_EXPONENTS)), pooled.ring, pooled.frac)
    powers = np.tile([2.0**e for e in SCALE_EXPONENTS], p)
    above = ltz(ctx, add_public(ctx, tiles, -powers))  # [max < 2^e]
    counts = open_arith(ctx, [Share(above.data.reshape(p, -1).sum(axis=1) % (1 << 128), above.ring, 0)], "scales")
    below = len(SCALE_EXPONENTS) - np.array([int(v) for v in counts[0]])
    return np.array([SCALE_EXPONENTS[min(int(b), len(SCALE_EXPONENTS) - 1)] for b in below])


def _padded(rows: int) -> int:
    return max(64, 1 << max(0, math.ceil(math.log2(max(rows, 1)))))


def _logistic(
    ctx: PartyContext, plan: Plan, x: np.ndarray, y: np.ndarray, n: Share
) -> tuple[list[Share], dict[str, Any]]:
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    exps = _scales(ctx, x)
    scaled = x / np.exp2(exps)
    rows = _padded(len(x))
    xs = np.zeros((rows, x.shape[1]))
    xs[: len(x)] = scaled
    ys = np.zeros(rows)
    ys[: len(y)] = y
    everyone = [int(b.decode()) for b in ctx.all_to_all(str(rows).encode(), "row-buckets")]
    data = logistic.setup(ctx, xs, ys, everyone)
    fit = logistic.fit(ctx, data, maxiter=stmt.maxiter, tol=stmt.tol)
    public = {"iterations": fit.iterations, "converged": fit.converged, "scales": [int(e) for e in exps],
              "padded_rows": sum(everyone)}
    if fit.singular:
        return [], {**public, "refused": "no maximum likelihood estimate: the information matrix is singular "
                    "(perfect separation or collinear covariates)"}
    if not fit.converged:
        return [], {**public, "refused": f"did not converge in {fit.iterations} iterations "
                    "(possible quasi-separation); nothing is released"}
    return [fit.coef, fit.inverse_diag, fit.loglik, n], public


def finish(plan: Plan, opened: list[np.ndarray], public: dict[str, Any]) -> Result:
    """The coefficient table, as statsmodels prints it, from the released values."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    if "refused" in public:
        return Result(["refused"], [[public["refused"]]], [True], {"model": {"refused": public["refused"]}})
    names = list(plan.terms)
    p = len(names)
    if stmt.kind == "LINEAR":
        coef, idiag, rss, tss, n = opened
        n_used = int(round(float(n[0])))
        df = n_used - p
        sigma2 = float(rss[0]) / df
        se = np.sqrt(sigma2 * np.clip(idiag, 0, None))
        stat = coef / se
        pvals = 2 * stats.t.sf(np.abs(stat), df)
        crit = stats.t.ppf(0.975, df)
        model = {"n": n_used, "df_resid": df, "r_squared": 1 - float(rss[0]) / float(tss[0]),
                 "residual_std_error": math.sqrt(sigma2)}
        columns = ["term", "coef", "std_err", "t", "p_value", "ci_low", "ci_high"]
        rows = [[names[j], coef[j], se[j], stat[j], pvals[j], coef[j] - crit * se[j], coef[j] + crit * se[j]]
                for j in range(p)]
    else:
        coef, idiag, ll, n = opened
        scale = np.exp2(np.array(public["scales"], dtype=np.float64))
        coef = coef / scale
        se = np.sqrt(np.clip(idiag, 0, None)) / scale
        stat = coef / se
        pvals = 2 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.ppf(0.975)
        n_used = int(round(float(n[0])))
        # Each zero padding row (x = 0, y = 0) added -log 2 to the sum; the count of them is public once n is.
        loglik = float(ll[0]) + math.log(2.0) * (int(public["padded_rows"]) - n_used)
        model = {"n": n_used, "iterations": public["iterations"], "converged": public["converged"],
                 "log_likelihood": loglik}
        columns = ["term", "coef", "std_err", "z", "p_value", "ci_low", "ci_high", "odds_ratio", "or_ci_low",
                   "or_ci_high"]
        rows = []
        for j in range(p):
            lo, hi = coef[j] - crit * se[j], coef[j] + crit * se[j]
            rows.append([names[j], coef[j], se[j], stat[j], pvals[j], lo, hi, math.exp(coef[j]), math.exp(lo),
                         math.exp(hi)])
    rows = [[r[0]] + [float(v) for v in r[1:]] for r in rows]
    return Result(columns, rows, [False] * len(rows), {"model": model})
