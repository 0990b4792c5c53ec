"""The checks a model must pass before it is fitted, decided in MPC; only their bits are opened.

Each party counts on its own complete cases; the counts are added in shares and compared
with public thresholds in one batched comparison, and only the comparison bits are opened.
A refusal raises a `queries.errors.ModelRefused` subclass whose message is all that is
released (`queries.regression` sends it to the analyst).

1. `check_levels` (when the model has categorical columns): complete cases per level of each
   categorical column. A level with none is dropped, as statsmodels drops a level absent
   from the data it is given (only when zeros are released: otherwise it refuses like a rare
   level); a level with 1..k-1 refuses the model.
2. `check_model`: complete cases n >= k; parameters p <= fraction x n; every category
   indicator column (a level, or a cell of an interaction of categorical factors) >= k rows;
   for LOGISTIC, every outcome 0 or 1 (the count of other values is compared with 1/2); for
   POISSON, every outcome a whole number >= 0, with an offset the offset defined at every
   complete case (finite: the log of a positive exposure; `queries.offset.defined`), and at
   least one event in every category indicator column (else the MLE does not exist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mpc.context import PartyContext
from mpc.share import Share, concat
from protocols.aggregate import secure_sum
from protocols.arith import add_public
from protocols.compare import ltz
from protocols.opening import open_arith
from queries import ir
from queries.design import Design, build, local_matrix
from queries.errors import (
    BadWeights,
    NoEstimate,
    OffsetNotPositive,
    OutcomeNotBinary,
    OutcomeNotCount,
    QueryError,
    RareLevel,
    TooFewCases,
    TooManyParameters,
)
from queries.formula import analyse
from queries.offset import OFFSET_BOUND, log_argument
from queries.plan import Plan
from queries.weights import message as weight_message


def _totals(ctx: PartyContext, local: np.ndarray) -> Share:
    fp = ctx.precise
    return secure_sum(ctx, fp.encode(local), fp.ring, fp.frac)


def _open_below(ctx: PartyContext, checks: Sequence[Share], tag: str) -> list[int]:
    """Open [c < 0] for every element of the checks (one comparison, one opening)."""
    bits = open_arith(ctx, [ltz(ctx, concat(list(checks)))], tag)[0]
    return [int(v) for v in np.ravel(bits)]


def check_levels(ctx: PartyContext, plan: Plan, design: Design, counts: np.ndarray) -> dict[str, tuple[ir.Value, ...]]:
    """The levels to keep per categorical column, from this party's `counts` per level
    (`design.levels` order); raises RareLevel or TooFewCases."""
    k = plan.min_cell
    totals = _totals(ctx, counts)
    checks = [add_public(ctx, totals, -float(k))]
    if plan.release_zero:
        checks.append(add_public(ctx, totals, -0.5))
    flags = _open_below(ctx, checks, "model-levels")
    m = len(counts)
    few, empty = flags[:m], flags[m:] if plan.release_zero else [0] * m
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    references = analyse(stmt.formula).references
    kept: dict[str, tuple[ir.Value, ...]] = {}
    i = 0
    for column, levels in design.levels.items():
        mine = list(zip(levels, few[i : i + len(levels)], empty[i : i + len(levels)]))
        i += len(levels)
        if any(f and not e for _, f, e in mine):
            raise RareLevel(f"a level of {column!r} has fewer than {k} complete cases")
        kept[column] = tuple(level for level, _, e in mine if not e)
        if not kept[column]:
            raise TooFewCases(f"fewer than {k} complete cases")
        if any(e and (column, level) in references for level, _, e in mine):
            raise RareLevel(f"the reference level of {column!r} has no complete cases")
    return kept


def check_model(
    ctx: PartyContext, plan: Plan, design: Design, x: np.ndarray, y: np.ndarray, bad_offsets: int = 0,
    bad_weights: int | None = None,
) -> Share:
    """Raise the first refusal that applies; return [n] (pooled complete cases, precise ring).
    `bad_offsets`: this party's complete cases whose offset is not defined (POISSON); `bad_weights`
    (WEIGHT): those whose weight is negative or infinite (`queries.weights`)."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    k = plan.min_cell
    flagged = [j for j, pure in enumerate(design.indicators) if pure]
    bad: list[float] = []  # counts of rows that refuse the model, each compared with 1/2
    if stmt.kind == "LOGISTIC":
        bad.append(float(np.count_nonzero((y != 0) & (y != 1))))
    elif stmt.kind == "POISSON":
        bad.append(float(np.count_nonzero((y < 0) | (y != np.floor(y)))))
        if design.offset is not None:
            bad.append(float(bad_offsets))
    if bad_weights is not None:
        bad.append(float(bad_weights))
    events = (x[:, flagged] * y[:, None]).sum(axis=0) if stmt.kind == "POISSON" and flagged else np.zeros(0)
    local = np.concatenate([[len(x)], x[:, flagged].sum(axis=0) if flagged else [], events, bad])
    totals = _totals(ctx, local)
    n = totals[:1]
    p = len(design.names)
    checks = [add_public(ctx, n, -float(k)), add_public(ctx, n, -p / plan.param_fraction)]
    if flagged:
        checks.append(add_public(ctx, totals[1 : 1 + len(flagged)], -float(k)))
    if len(events):
        checks.append(add_public(ctx, totals[1 + len(flagged) : 1 + 2 * len(flagged)], -0.5))  # no event
    if bad:
        checks.append(add_public(ctx, -totals[len(local) - len(bad) :], 0.5))  # [0.5 - bad < 0]: some row is bad
    flags = _open_below(ctx, checks, "model-refusal")
    refused = flags[len(flags) - len(bad) :]
    if stmt.kind == "LOGISTIC" and refused[0]:
        raise OutcomeNotBinary(
            f"LOGISTIC needs an outcome coded 0/1 (or boolean, or a categorical with two levels); "
            f"{stmt.outcome!r} has other values"
        )
    if stmt.kind == "POISSON" and refused[0]:
        raise OutcomeNotCount(f"POISSON needs a count outcome (whole numbers 0, 1, 2, ...); {stmt.outcome!r} has "
                              "negative or fractional values")
    if stmt.kind == "POISSON" and design.offset is not None and refused[1]:
        raise OffsetNotPositive(_offset_message(design.offset))
    if bad_weights is not None and refused[-1]:
        raise BadWeights(weight_message(str(stmt.weight)))
    if flags[0]:
        raise TooFewCases(f"fewer than {k} complete cases")
    if flags[1]:
        raise TooManyParameters(f"{p} parameters is more than {plan.param_fraction:g} of the complete cases")
    if any(flags[2 : 2 + len(flagged)]):
        raise RareLevel(f"a level or a cell of categorical terms has fewer than {k} complete cases")
    if any(flags[2 + len(flagged) : 2 + len(flagged) + len(events)]):
        raise NoEstimate("no maximum likelihood estimate: a level or a cell of categorical terms has no events "
                         "(its rate ratio would be 0)")
    return n


def _offset_message(code: str) -> str:
    exposure = log_argument(code)
    if exposure is not None:
        return (f"the exposure {exposure} in offset({code}) must be positive at every complete case (the log of 0 or "
                "less is undefined); exclude those rows with WHERE")
    return (f"offset({code}) must be a finite number below {OFFSET_BOUND:g} in magnitude at every complete case; "
            "exclude the other rows with WHERE")


def agreed_design(
    ctx: PartyContext, plan: Plan, stmt: ir.Regression, design: Design, rows: pd.DataFrame,
    levels: Mapping[str, tuple[ir.Value, ...]],
) -> tuple[Design, np.ndarray, np.ndarray]:
    """This party's design matrix over `rows` and its kept-row mask, with the categorical levels every
    party has rows of (`check_levels`; the design rebuilt from `levels` and those when a level has no
    row anywhere); QueryError for an infinite value (statsmodels refuses those too)."""
    x, keep, counts = local_matrix(design, rows)
    if not np.isfinite(x).all():
        raise QueryError("a transformed value at this party is infinite (e.g. np.log of 0); "
                         "exclude those rows with WHERE")
    if design.levels:
        agreed = check_levels(ctx, plan, design, counts)
        if agreed != dict(design.levels):
            design = build(stmt, {**levels, **agreed})
            x, keep, _ = local_matrix(design, rows)
    return design, x, keep

