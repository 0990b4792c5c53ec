"""LINEAR, LOGISTIC and POISSON models: the local design matrix, the MPC fit, and the coefficient table.

Each party builds the model's design matrix from its own complete cases with formulaic
(`queries.design`: statsmodels' formula language, terms and names, with the levels all
parties agreed on). Before any fit the parties run the checks of `queries.model_checks`
in MPC (only their bits are opened); a refusal releases its message and nothing else, and
the analyst receives it as a `queries.errors.ModelRefused` subclass.

Both models divide every design column (and LINEAR its outcome) by a public power of two
at or above its pooled maximum |x| (`_scales`: only the exponent is opened), so that values
of any magnitude (an income of 1e7, a fraction of 1e-3) sit in the same fixed-point range;
the analyst multiplies the released coefficients and standard errors back, exactly.

LINEAR adds the parties' X'X, X'y, y'y in shares and solves (protocols.regression.ols).
LOGISTIC runs Newton-Raphson to convergence on the rows (protocols.logistic); POISSON a fixed
schedule of Newton steps with an offset (`queries.poisson`, protocols.poisson). The table is
built by the analyst from the released values (statsmodels' conventions: t and the t
distribution for OLS, z and the normal for Logit and the Poisson GLM).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mpc.context import PartyContext
from mpc.share import Share
from protocols import logistic
from protocols.arith import add_public
from protocols.compare import ltz
from protocols.opening import open_arith
from protocols.regression import ols, pooled_moments, total_sum_of_squares
from protocols.select import maximum
from protocols.sharing import share_inputs
from queries import ir, poisson, weighted_linear
from queries.design import Design, build, complete
from queries.errors import (
    Collinear,
    ModelRefused,
    NoEstimate,
    NotConverged,
    OutcomeNotBinary,
    refusal_error,
)
from queries.model_checks import agreed_design, check_model
from queries.offset import defined, offset_values
from queries.plan import Plan, outcome_coding, outcome_levels
from queries.result import Result
from queries.table import numeric
from queries.wald import wald_table
from queries.weights import bad_count, weight_values

SCALE_EXPONENTS = tuple(range(-8, 41))
"""Candidate public scales 2^e for a column's pooled maximum |x|."""


def _outcome(plan: Plan, rows: pd.DataFrame) -> np.ndarray:
    """The outcome as float64; a LOGISTIC categorical outcome is 1 for its second level, 0 for its first."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    levels = outcome_levels(plan)
    if levels is None:
        return numeric(rows, stmt.outcome)
    return (rows[stmt.outcome].astype(str).to_numpy() == str(levels[1])).astype(np.float64)


def _design(
    ctx: PartyContext, plan: Plan, kept: pd.DataFrame
) -> tuple[Design, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Share]:
    """The design after the level checks, this party's X, y, offsets (zeros without one) and weights
    (ones without WEIGHT), and [n], from the rows the WHERE kept (`kept`); raises ModelRefused."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    levels = outcome_levels(plan)
    if levels is not None and len(levels) != 2:
        raise OutcomeNotBinary(f"LOGISTIC needs a 0/1 outcome or a categorical with two levels; "
                               f"{stmt.outcome!r} has {len(levels)} levels")
    covariate_levels = {c: v for c, v in plan.levels if c != stmt.outcome}
    design = build(stmt, covariate_levels)
    rows = complete(stmt, kept, design.columns + ((stmt.weight,) if stmt.weight else ()))
    if stmt.weight:  # a weight of 0 contributes nothing: the row is not a contributor (`queries.weights`)
        rows = rows[weight_values(rows, stmt.weight) != 0]
    design, x, keep = agreed_design(ctx, plan, stmt, design, rows, covariate_levels)
    y = _outcome(plan, rows)[keep]
    offset = offset_values(design.offset, rows)[keep] if design.offset is not None else np.zeros(len(y))
    usable = defined(offset)
    w = weight_values(rows, stmt.weight)[keep] if stmt.weight else np.ones(len(y))
    bad_weights = bad_count(w) if stmt.weight else None
    n = check_model(ctx, plan, design, x, y, int(np.count_nonzero(~usable)), bad_weights)
    return design, x, y, offset, w, n


def execute(ctx: PartyContext, plan: Plan, kept: pd.DataFrame) -> tuple[list[Share], dict[str, Any]]:
    """This party's shares of the released values and the public facts of the fit, from the rows
    its WHERE kept (`queries.sources.Source.rows`)."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    if stmt.kind == "COX":
        from queries import cox

        return cox.execute(ctx, plan, kept)
    try:
        design, x, y, offset, w, n = _design(ctx, plan, kept)
    except ModelRefused as refusal:
        return [], {"refused": str(refusal), "refusal": refusal.reason}
    facts: dict[str, Any] = {"terms": list(design.names)}
    dropped = {c: [v for v in levels if v not in design.levels.get(c, ())] for c, levels in plan.levels
               if c != stmt.outcome}
    if any(dropped.values()):
        facts["dropped_levels"] = {c: v for c, v in dropped.items() if v}
    if stmt.kind == "LINEAR" and stmt.weight:
        exps = _scales(ctx, np.hstack([x, y[:, None], w[:, None]]))
        shares, public = weighted_linear.fit(ctx, x, y, w, n, design.constant, stmt.robust, exps)
    elif stmt.kind == "LINEAR":
        shares, public = _linear(ctx, x, y, n, design.constant)
    elif stmt.kind == "POISSON":  # weighted: the counts' scale is that of w y (`protocols.poisson.weighted`)
        exps = _scales(ctx, np.hstack([x, (y * w)[:, None]]))
        shares, public = poisson.fit(ctx, plan, x, y, offset, n, exps, _buckets(ctx, len(x)),
                                     w if stmt.weight else None)
    else:
        shares, public = _logistic(ctx, plan, x, y, n, w if stmt.weight else None)
    return shares, {**facts, **public}


def _linear(
    ctx: PartyContext, x: np.ndarray, y: np.ndarray, n: Share, centered: bool
) -> tuple[list[Share], dict[str, Any]]:
    """Shares of [coef, diag (X'X)^-1, RSS, TSS, n] on the scaled columns. TSS is about the mean
    when the design spans a constant, else y'y (statsmodels' uncentered R^2 without one)."""
    p = x.shape[1]
    exps = _scales(ctx, np.hstack([x, y[:, None]]))
    xs, ys = x / np.exp2(exps[:-1]), y / np.exp2(exps[-1])
    public = {"scales": [int(e) for e in exps[:-1]], "outcome_scale": int(exps[-1])}
    local = np.concatenate([(xs.T @ xs).ravel(), xs.T @ ys, [ys @ ys, ys.sum()]])
    total = pooled_moments(ctx, local, "moments")
    xtx, xty, yty, sy = total[: p * p].reshape(p, p), total[p * p : p * p + p], total[-2:-1], total[-1:]
    fit = ols(ctx, xtx, xty, yty)
    if not fit.converged:
        refusal = Collinear("the covariates are collinear (X'X is singular)")
        return [], {**public, "refused": str(refusal), "refusal": refusal.reason}
    return [fit.coef, fit.inverse_diag, fit.rss, total_sum_of_squares(ctx, yty, sy, n, centered), n], public


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


def _buckets(ctx: PartyContext, rows: int) -> list[int]:
    """Every party's row count padded to a power of two (at least 64): all that the parties learn of it."""
    return [int(b.decode()) for b in ctx.all_to_all(str(_padded(rows)).encode(), "row-buckets")]


def _logistic(
    ctx: PartyContext, plan: Plan, x: np.ndarray, y: np.ndarray, n: Share, w: np.ndarray | None = None
) -> tuple[list[Share], dict[str, Any]]:
    """LOGISTIC's fit; with weights `w` (WEIGHT), scaled by a public power of two to w <= 1, which divides
    the score, the information and the Newton decrement alike (the tolerance follows)."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    p = x.shape[1]
    exps = _scales(ctx, x if w is None else np.hstack([x, w[:, None]]))
    scaled = x / np.exp2(exps[:p])
    rows = _padded(len(x))
    xs = np.zeros((rows, p))
    xs[: len(x)] = scaled
    ys = np.zeros(rows)
    ys[: len(y)] = y
    ws = None
    if w is not None:
        ws = np.zeros(rows)  # padding rows weigh 0
        ws[: len(w)] = w / np.exp2(exps[p])
    everyone = _buckets(ctx, len(x))
    data = logistic.setup(ctx, xs, ys, everyone, w_local=ws, robust=stmt.robust)
    tol = stmt.tol if w is None else stmt.tol * 2.0 ** -int(exps[p])
    fit = logistic.fit(ctx, data, maxiter=stmt.maxiter, tol=tol)
    public = {"iterations": fit.iterations, "converged": fit.converged, "scales": [int(e) for e in exps[:p]],
              "padded_rows": sum(everyone)}
    if w is not None:
        public["weight_scale"] = int(exps[p])
    refusal: ModelRefused | None = None
    if fit.singular:
        refusal = NoEstimate("no maximum likelihood estimate: the information matrix is singular "
                             "(perfect separation or collinear covariates)")
    elif not fit.converged:
        refusal = NotConverged(f"did not converge in {fit.iterations} iterations (possible quasi-separation); "
                               "nothing is released")
    if refusal is not None:
        return [], {**public, "refused": str(refusal), "refusal": refusal.reason}
    extra = [fit.sandwich] if fit.sandwich is not None else []
    return [fit.coef, fit.inverse_diag, fit.loglik, n, *extra], public


def finish(plan: Plan, opened: list[np.ndarray], public: dict[str, Any]) -> Result:
    """The coefficient table, as statsmodels prints it, from the released values (at the analyst)."""
    from scipy import stats  # p-values: only where a model's table is made

    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    if stmt.kind == "POISSON":
        return poisson.finish(plan, opened, public)
    if stmt.kind == "COX":
        from queries import cox

        return cox.finish(plan, opened, public)
    if "refused" in public:
        raise refusal_error(str(public.get("refusal", "")), str(public["refused"]))
    names = list(public.get("terms", plan.terms))
    p = len(names)
    scale = np.exp2(np.array(public["scales"], dtype=np.float64))
    about: dict[str, Any] = {"formula": f"{stmt.outcome} ~ {stmt.formula}"}
    if public.get("dropped_levels"):
        about["dropped_levels"] = public["dropped_levels"]  # no complete cases: absent from the design
    if stmt.kind == "LINEAR" and stmt.weight:
        columns, rows, model = weighted_linear.finish(names, opened, public, stmt.robust, about)
    elif stmt.kind == "LINEAR":
        coef, idiag, rss, tss, n = opened
        out = 2.0 ** int(public["outcome_scale"])  # undo the public powers of two, exactly
        coef, idiag = coef * out / scale, idiag / scale**2
        rss, tss = rss * out**2, tss * out**2
        n_used = int(round(float(n[0])))
        df = n_used - p
        sigma2 = float(rss[0]) / df
        se = np.sqrt(sigma2 * np.clip(idiag, 0, None))
        stat = coef / se
        pvals = 2 * stats.t.sf(np.abs(stat), df)
        crit = stats.t.ppf(0.975, df)
        model = {"n": n_used, "df_resid": df, "r_squared": 1 - float(rss[0]) / float(tss[0]),
                 "residual_std_error": math.sqrt(sigma2), **about}
        columns = ["term", "coef", "std_err", "t", "p_value", "ci_low", "ci_high"]
        rows = [[names[j], coef[j], se[j], stat[j], pvals[j], coef[j] - crit * se[j], coef[j] + crit * se[j]]
                for j in range(p)]
    else:
        coef, idiag, ll, n = opened[:4]
        coef = coef / scale
        se = np.sqrt(np.clip(idiag, 0, None)) / scale
        n_used = int(round(float(n[0])))
        # Each zero padding row (x = 0, y = 0) added -log 2 to the sum; the count of them is public once n is.
        loglik = float(ll[0]) + math.log(2.0) * (int(public["padded_rows"]) - n_used)
        if stmt.weight:  # padding rows weigh 0; undo the weights' public power of two
            wscale = 2.0 ** int(public["weight_scale"])
            se, loglik = se / math.sqrt(wscale), float(ll[0]) * wscale
            about["weights"] = "inverse-probability" if stmt.robust else "frequency"
            if stmt.robust:
                se = np.sqrt(np.clip(opened[4], 0, None)) / scale
                about["cov_type"] = "HC0"
        model = {"n": n_used, "iterations": public["iterations"], "converged": public["converged"],
                 "log_likelihood": loglik, "outcome_coding": outcome_coding(plan), **about}
        columns, rows = wald_table(names, coef, se, "odds_ratio", "or")
    rows = [[r[0]] + [float(v) for v in r[1:]] for r in rows]
    return Result(columns, rows, [False] * len(rows), {"model": model})
