"""POISSON: the fixed-point scales of a count model, its MPC fit, and the rate-ratio table.

`queries.regression` builds the design and runs the refusal checks (counts are whole numbers
>= 0, an offset is defined at every complete case); this module picks the public scales of
the fit, runs `protocols.poisson`, and builds the analyst's table from the released values:
coefficients, standard errors, z, p, 95% CIs and the incidence rate ratios exp(coef) with
theirs, under statsmodels' GLM conventions (z and the normal; scale 1), and the model block's
log-likelihood and Pearson chi2 / df (over 1: overdispersion, the standard errors too small).

Scales. The counts are divided by 2^S: 2^s is the power of two at or above the largest count
(its exponent is opened, as LINEAR's outcome scale is), and S = s + h with h headroom bits
when there are many rows, so that the cap on a row's fitted count (`protocols.poisson`:
2^21 / N rows, times 2^S) stays at least HEADROOM times the largest count. Counts up to
2^MAX_COUNT_BITS and N up to 2^MAX_ROW_BITS padded rows are supported; beyond, the model is
refused with the bound named.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from protocols import poisson
from protocols.logistic import X_FRAC
from protocols.sharing import share_inputs
from queries import ir
from queries.errors import Collinear, ModelRefused, NoEstimate, NotConverged, OutOfRange, refusal_error
from queries.plan import Plan
from queries.result import Result
from queries.wald import wald_table

MAX_COUNT_BITS = 24
"""The largest count a POISSON outcome may hold is 2^24 (16,777,216)."""

MAX_ROW_BITS = 20
"""At most 2^20 rows in all parties' padded tables."""

HEADROOM = 64.0
"""A row's fitted count may reach this many times the largest count's power of two."""


def outcome_scale(count_exponent: int, rows: int) -> int:
    """S: the counts' exponent s (at least 0) plus the headroom bits for `rows` padded rows in all."""
    cap = poisson.ROW_BUDGET / rows
    return max(count_exponent, 0) + max(0, math.ceil(math.log2(HEADROOM / cap)))


def fit(
    ctx: PartyContext, plan: Plan, x: np.ndarray, y: np.ndarray, offset: np.ndarray, n: Share, exps: np.ndarray,
    rows: list[int], w: np.ndarray | None = None,
) -> tuple[list[Share], dict[str, Any]]:
    """This party's shares of [coef, diag H^-1, log-likelihood (, Pearson chi2), n] and the public facts;
    with weights `w` (WEIGHT) also sum(w) and, with ROBUST, the HC0 sandwich's diagonal.

    `exps`: the public exponents of the design columns and (last) of the counts (weighted: w y);
    `rows`: every party's padded row count."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    total = sum(rows)
    public: dict[str, Any] = {"iterations": stmt.maxiter, "scales": [int(e) for e in exps[:-1]], "padded_rows": total}
    refusal: ModelRefused | None = None
    if int(exps[-1]) > MAX_COUNT_BITS:
        refusal = OutOfRange(f"a count above 2^{MAX_COUNT_BITS} ({2**MAX_COUNT_BITS}) is beyond the fixed-point range "
                             "of POISSON; nothing is released")
    elif total > 1 << MAX_ROW_BITS:
        refusal = OutOfRange(f"POISSON fits at most 2^{MAX_ROW_BITS} rows in all (each party's complete cases "
                             f"padded to a power of two: {total} here); nothing is released")
    if refusal is not None:
        return [], {**public, "refused": str(refusal), "refusal": refusal.reason}
    scale = outcome_scale(int(exps[-1]), total)
    grid = 2.0 ** (2 * X_FRAC)  # the covariates are held with 40 fractional bits (two halves)
    scaled = np.round(x / np.exp2(exps[:-1]) * grid) / grid
    data = poisson.setup(ctx, scaled, y, offset, rows, scale, w, keep_counts=stmt.robust)
    result = poisson.fit(ctx, data, stmt.maxiter, stmt.tol)
    bound = data.cap * 2.0**scale
    public.update(outcome_scale=scale, converged=result.converged, fitted_bound=bound)
    if result.collinear:
        refusal = Collinear("the covariates are collinear (X'WX is singular)")
    elif result.over_cap:
        refusal = OutOfRange(f"a fitted count reaches {bound:.6g}, the fixed-point range of this fit (2^21 / {total} "
                             f"padded rows, times the counts' scale 2^{scale}); nothing is released")
    elif result.singular:
        refusal = NoEstimate("no maximum likelihood estimate: the information matrix is singular (a level or "
                             "covariate pattern without events, or collinear covariates)")
    elif not result.converged:
        refusal = NotConverged(f"did not converge in {stmt.maxiter} iterations (POISSON runs exactly MAXITER Newton "
                               "iterations: raise it; or a level or covariate pattern without events); nothing is "
                               "released")
    if refusal is not None:
        return [], {**public, "refused": str(refusal), "refusal": refusal.reason}
    if result.pearson_withheld:
        public["pearson_withheld"] = True
    extra = []
    if w is not None:
        fp = ctx.precise
        total_w = None
        for s in share_inputs(ctx, fp.encode(np.array([w.sum()])), fp.ring, fp.frac, "weights"):
            total_w = s if total_w is None else total_w + s
        assert total_w is not None
        extra = [total_w] + ([result.sandwich] if result.sandwich is not None else [])
    return [result.coef, result.inverse_diag, result.stats, n, *extra], public


def finish(plan: Plan, opened: list[np.ndarray], public: dict[str, Any]) -> Result:
    """The coefficient table with incidence rate ratios, from the released values (at the analyst)."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    if "refused" in public:
        raise refusal_error(str(public.get("refusal", "")), str(public["refused"]))
    names = list(public.get("terms", plan.terms))
    p = len(names)
    scale = np.exp2(np.array(public["scales"], dtype=np.float64))
    coef, idiag, values, n = opened[:4]
    coef = coef / scale
    se = np.sqrt(np.clip(idiag, 0, None) * 2.0 ** -int(public["outcome_scale"])) / scale
    weights: dict[str, Any] = {}
    if stmt.weight:
        weights = {"weights": "inverse-probability" if stmt.robust else "frequency", "sum_weights": float(opened[4][0])}
        if stmt.robust:
            se = np.sqrt(np.clip(opened[5], 0, None)) / scale
            weights["cov_type"] = "HC0"
    n_used = int(round(float(n[0])))
    df = n_used - p if not stmt.weight or stmt.robust else float(opened[4][0]) - p  # frequency: sum(w) - p
    model: dict[str, Any] = {"n": n_used, "df_resid": df, "iterations": public["iterations"],
                             "converged": public["converged"], "log_likelihood": float(values[0])}
    if len(values) > 1:
        model["pearson_chi2"] = float(values[1])
        model["dispersion"] = float(values[1]) / df if df > 0 else math.nan
    else:
        model["pearson_chi2"] = "withheld: a Pearson residual is beyond the fixed-point range"
    model["formula"] = stmt.model_text()
    model.update(weights)
    if public.get("dropped_levels"):
        model["dropped_levels"] = public["dropped_levels"]
    columns, rows = wald_table(names, coef, se, "irr", "irr")
    return Result(columns, rows, [False] * len(rows), {"model": model})
