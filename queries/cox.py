"""COX: the design on each party's rows, the checks in MPC, the fit, and the hazard-ratio table.

`COX time, event ~ formula [EVERY w]` fits Cox's proportional hazards model with Breslow's
handling of ties on a public time grid: a time t counts at the grid point j = ceil(t / w), as
SURVIVAL's (`queries.survival.grid_points`), so the fit is lifelines' CoxPHFitter on the times
ceil(t / w) w (exactly lifelines' on times already on the grid, e.g. whole months with w = 1).

1. Each party builds the design of its complete cases (rows with a NULL time, event or
   covariate are dropped) with formulaic, as the models do (`queries.design`); the level and
   model checks of `queries.model_checks` run in MPC. Cox's model has no intercept (the
   baseline hazard absorbs it): the formula's intercept column is left out of the fit.
2. Checks, in one batched sign and zero test on the pooled counts (only the yes/no bits are
   opened), as SURVIVAL's: no negative (or infinite) time, every event 0 or 1, the grid size
   G = the least 2^b holding every time (only that power of two is opened), at least k events.
   All parties' padded rows times G is capped (`MAX_CELLS`): beyond it, the query is refused
   with a message naming EVERY.
3. Public column scales (the power of two above each column's pooled maximum |x|), then
   `protocols.cox` on the scaled columns: a fixed schedule of MAXITER Newton steps; only the
   bits [a hazard ratio beyond range], [converged] and [singular] are opened.
4. Released to the analyst: the coefficients, the diagonal of the inverse information, the
   pooled events and complete cases; the analyst builds the table (z and the normal, as
   lifelines: coef, se, z, p, 95% CI, exp(coef) and its CI).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mpc.context import PartyContext
from mpc.share import Share, concat
from protocols import cox
from protocols.arith import add_public
from protocols.compare import signs_and_zeros
from protocols.opening import open_arith
from protocols.sharing import share_inputs
from queries import ir
from queries.design import build, complete
from queries.errors import (
    ModelRefused,
    NoEstimate,
    NotConverged,
    OutOfRange,
    TooFewEvents,
    refusal_error,
)
from queries.model_checks import agreed_design, check_model
from queries.plan import Plan
from queries.result import Result
from queries.survival import GRID_EXPONENTS, grid_points, grid_refusal
from queries.table import numeric
from queries.wald import wald_table

MAX_CELLS = 1 << 24
"""Largest all parties' padded rows times grid points: each party publishes its rows x G at-risk matrix."""

METHOD = "Cox proportional hazards (Breslow ties, partial likelihood, Newton-Raphson)"


def _cases(ctx: PartyContext, plan: Plan, kept: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray,
                                                                        np.ndarray, Share]:
    """The design's names (no intercept), this party's X, times and events, and [n]; raises ModelRefused."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression) and stmt.time is not None
    levels = {c: v for c, v in plan.levels if c != stmt.outcome}
    design = build(stmt, levels)
    rows = complete(stmt, kept, design.columns)
    rows = rows[rows[stmt.time].notna()]
    design, x, keep = agreed_design(ctx, plan, stmt, design, rows, levels)
    event = numeric(rows, stmt.outcome)[keep]
    time = numeric(rows, stmt.time)[keep]
    n = check_model(ctx, plan, design, x, event)
    names = list(design.names)
    if "Intercept" in names:
        at = names.index("Intercept")
        x = np.delete(x, at, axis=1)
        names.pop(at)
    return names, x, time, event, n


def _check_counts(stmt: ir.Regression, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """[bad times, bad events, rows beyond 2^b for each b, events] at this party."""
    bad_time = ~np.isfinite(time) | (time < 0)
    bad_event = ~np.isin(event, (0.0, 1.0))
    points = grid_points(np.where(bad_time, 0.0, time), stmt.every)
    beyond = [int(np.count_nonzero(~bad_time & (points >= (1 << b)))) for b in GRID_EXPONENTS]
    return np.array([bad_time.sum(), bad_event.sum(), *beyond, int((event == 1).sum())], dtype=np.int64)


def _grid(ctx: PartyContext, plan: Plan, mine: np.ndarray) -> int:
    """The public grid size from the pooled checks (step 2); raises the refusal."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    ring = ctx.precise.ring
    total = share_inputs(ctx, mine, ring, 0, "cox-checks")
    pooled = total[0]
    for s in total[1:]:
        pooled = pooled + s
    below, zero = signs_and_zeros(ctx, add_public(ctx, pooled[-1:], -plan.min_cell), pooled[:-1])
    bits = [int(v) for v in open_arith(ctx, [concat([zero, below])], "cox-checks")[0]]
    ok_time, ok_event, fits, few = bits[0], bits[1], bits[2:-1], bits[-1]
    assert stmt.time is not None
    refused = grid_refusal("COX", stmt.time, stmt.outcome, stmt.every, bool(ok_time), bool(ok_event), fits)
    if refused is not None:
        raise refused
    if few:
        raise TooFewEvents(f"fewer than {plan.min_cell} events in all; nothing is released")
    return 1 << GRID_EXPONENTS[fits.index(1)]


def execute(ctx: PartyContext, plan: Plan, kept: pd.DataFrame) -> tuple[list[Share], dict[str, Any]]:
    """This party's shares of [coef, diag H^-1, events, n] and the public facts, from the rows its WHERE kept."""
    from queries.regression import _buckets, _scales  # the models' public scales and padded row counts

    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    public: dict[str, Any] = {"iterations": stmt.maxiter}
    try:
        names, x, time, event, n = _cases(ctx, plan, kept)
        public["terms"] = names
        grid = _grid(ctx, plan, _check_counts(stmt, time, event))
        rows = _buckets(ctx, len(x))
        public.update(grid=grid, padded_rows=sum(rows))
        if sum(rows) * grid > MAX_CELLS:
            raise OutOfRange(f"COX's risk sets need all parties' padded rows times the grid's points ({sum(rows)} x "
                             f"{grid}) to stay within {MAX_CELLS}; coarsen the times with EVERY w (now "
                             f"{stmt.every:g}) or select fewer rows with WHERE; nothing is released")
        exps = _scales(ctx, x)
        public["scales"] = [int(e) for e in exps]
        grid_scale = 2.0 ** ctx.precise.frac
        scaled = np.round(x / np.exp2(exps) * grid_scale) / grid_scale
        data = cox.setup(ctx, scaled, grid_points(time, stmt.every), event, rows, grid)
        result = cox.fit(ctx, data, stmt.maxiter, stmt.tol)
        public["converged"] = result.converged
        if result.over_cap:
            raise OutOfRange(f"a relative hazard exp(x'beta) reaches {data.cap:.6g}, the fixed-point range of this "
                             "fit (a covariate pattern that separates events from survivors?); nothing is released")
        if result.singular:
            raise NoEstimate("no maximum partial likelihood estimate: the information matrix is singular "
                             "(collinear covariates, a level without events, or a covariate that separates events "
                             "from survivors); nothing is released")
        if not result.converged:
            raise NotConverged(f"did not converge in {stmt.maxiter} iterations (COX runs exactly MAXITER Newton "
                               "iterations: raise it; or a covariate separates events from survivors); nothing is "
                               "released")
    except ModelRefused as refusal:
        return [], {**public, "refused": str(refusal), "refusal": refusal.reason}
    return [result.coef, result.inverse_diag, result.events, n], public


def finish(plan: Plan, opened: list[np.ndarray], public: dict[str, Any]) -> Result:
    """The hazard-ratio table from the released values (at the analyst), under lifelines' conventions."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    if "refused" in public:
        raise refusal_error(str(public.get("refusal", "")), str(public["refused"]))
    names = list(public["terms"])
    scale = np.exp2(np.array(public["scales"], dtype=np.float64))
    coef, idiag, events, n = opened
    coef = coef / scale
    se = np.sqrt(np.clip(idiag, 0, None)) / scale
    model: dict[str, Any] = {"n": int(round(float(n[0]))), "events": int(round(float(events[0]))),
                             "iterations": public["iterations"], "converged": public["converged"],
                             "ties": "breslow", "time_grid": f"ceil({stmt.time} / {stmt.every:g}) x {stmt.every:g}",
                             "formula": stmt.model_text()}
    if public.get("dropped_levels"):
        model["dropped_levels"] = public["dropped_levels"]
    columns, rows = wald_table(names, coef, se, "hazard_ratio", "hr")
    return Result(columns, rows, [False] * len(rows), {"model": model})
