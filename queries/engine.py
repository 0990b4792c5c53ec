"""One entry point per side: plan a query, run a party's part, and finish for the analyst.

The node (parties/) calls `plan_query` and `run_party`; the analyst's client calls
`finish_result`. `run_in_process` runs a whole consortium in one process (every party a
thread, same code path) — for tests, `pooled local`'s reference check and EXPLAIN's cost
prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

import queries.crosstab_plan  # noqa: F401  (registers CROSSTAB with compile_statement)
import queries.survival_plan  # noqa: F401  (registers SURVIVAL with compile_statement)
from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE
from mpc.inprocess import make_contexts, run_parties
from mpc.share import Share, reconstruct
from protocols.material import KINDS
from queries import dp, dp_finish, ir, weights_select
from queries.arrange import arrange
from queries.cost import QUANTILE_SCALE, stand_ins
from queries.errors import ModelRefused, QueryError
from queries.executor import execute
from queries.floats import floated
from queries.parser import parse
from queries.plan import Plan, compile_statement
from queries.quantiles import slots_for
from queries.result import Result, explain_result, finish
from queries.sources import Datasets, FrameSource, Source
from queries.table import Schema, check_schemas
from queries.typecheck import check_statement
from queries.weights_select import check_kind as check_weight_kind
from queries.weights_select import check_local as check_weights

Domains = Mapping[str, tuple[ir.Value, ...]]


def plan_query(
    query: str | ir.Statement, schema: Schema, domains: Domains, min_cell: int = 5, release_zero: bool = True
) -> Plan:
    """Compile a parsed statement (or parse the text first); raises QueryError with a position
    on bad input."""
    if min_cell < 1:
        raise QueryError("the minimum cell size must be at least 1")
    stmt = parse(query) if isinstance(query, str) else query
    try:
        plan = compile_statement(stmt, schema, dict(domains), min_cell)
    except QueryError as exc:
        raise positioned(exc, stmt) from None
    return replace(plan, release_zero=release_zero)


def positioned(error: QueryError, stmt: ir.Statement) -> QueryError:
    """`error` with the statement's text, and the position of the name it blames when it has none
    (the first mention the parser recorded)."""
    if error.position is not None and error.text is not None:
        return error
    position = error.position if error.position is not None else (
        ir.position_of(stmt, error.name) if error.name is not None else None)
    return QueryError(error.message, position, error.text or ir.source_text(stmt) or None, error.name)


def check_query(stmt: ir.Statement, schema: Schema) -> dict[str, str]:
    """Check a statement against the agreed schema before any data is read (unknown columns,
    types): the plan kinds of its derived columns; QueryError with a position otherwise."""
    try:
        check_weight_kind(stmt, dict(schema.columns))
        return check_statement(stmt, schema)
    except QueryError as exc:
        raise positioned(exc, stmt) from None


Data: TypeAlias = pd.DataFrame | Source | Datasets
"""A party's data: a table in memory, one data source, or a site's named datasets (FROM picks one)."""


def source_of(data: Data, stmt: ir.Statement) -> Source:
    """The source a statement reads from a party's data; SourceError for a FROM the site does not have."""
    if isinstance(data, pd.DataFrame):
        return FrameSource(data)
    return Datasets.of(data).pick(stmt)


def local_values(source: Source, stmt: ir.Statement, schema: Schema) -> dict[str, tuple[ir.Value, ...]]:
    """This party's values of the statement's grouping columns, for forming their domains: a table
    column's over all its rows, a derived column's on the rows the WHERE keeps (read by the source)."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    derived_kinds = check_query(stmt, schema)
    groups = grouping_columns(inner, schema)
    if not groups:
        return {}
    kinds = {c: schema.kind(c) for c in ir.statement_columns(inner)} | derived_kinds
    return source.values(inner, kinds, groups)


def run_party(ctx: PartyContext, plan: Plan, data: Data) -> list[Share]:
    """A party's whole part: local pushdown on its own rows, then the MPC steps."""
    shares, _ = run_party_with_facts(ctx, plan, data)
    return shares


def run_party_with_facts(ctx: PartyContext, plan: Plan, data: Data) -> tuple[list[Share], dict[str, Any]]:
    """As `run_party`, plus the public facts the run produced (a model's iterations, a refusal).

    The WHERE, the derived columns and the per-group partials run in the data's own engine
    (`Source.local`: one GROUP BY statement); rows reach Python only where the plan needs them
    (a model's design, MEDIAN and QUANTILE keys: `Source.rows`)."""
    source = source_of(data, plan.statement)
    if isinstance(plan.statement, ir.Regression):
        from queries import regression  # formulaic and scipy: only for a model

        return regression.execute(ctx, plan, source.rows(plan).frame)
    if isinstance(plan.statement, ir.Survival):
        from queries import survival

        return survival.execute(ctx, plan, source.rows(plan).frame)
    if isinstance(plan.statement, ir.Crosstab) and plan.statement.strata:
        from queries import strata

        return strata.execute(ctx, plan, source.local(plan, ctx.precise.frac)), {}
    local = source.local(plan, ctx.precise.frac)
    check_weights(plan.statement, local.stats)  # SELECT ... WEIGHT w: a bad weight fails here, before sharing
    return execute(ctx, plan, local), {}


def finish_result(
    plan: Plan,
    outputs: Sequence[tuple[np.ndarray, int, int]],
    public: Mapping[str, Any] | None = None,
    yates: bool = False,
) -> Result:
    """The analyst's side: decode reconstructed outputs (ring elements, frac, ring bits) and build the table.

    `yates`: a CROSSTAB's chi-square with Yates' continuity correction. A model's extra["model"]
    gains its outcome and method (as statsmodels' header names them) unless it has them."""
    decoded = [(PRECISE if bits == 128 else FAST).decode(values, frac) for values, frac, bits in outputs]
    stmt = plan.statement
    if plan.privacy is not None:  # post-processing of the noisy statistics (`queries.dp_finish`)
        return arrange(dp_finish.finish(plan, decoded), stmt)
    if isinstance(stmt, ir.Survival):
        from queries import survival_result

        return survival_result.finish(plan, decoded, dict(public or {}))
    if isinstance(stmt, ir.Crosstab) and stmt.strata:
        from queries import strata_result

        return strata_result.finish(plan, decoded)
    if isinstance(stmt, ir.Regression):
        from queries import regression

        result = regression.finish(plan, decoded, dict(public or {}))
        method = {"LINEAR": "OLS (least squares)", "LOGISTIC": "Logit (MLE, Newton-Raphson)",
                  "POISSON": "Poisson GLM, log link (MLE, Newton-Raphson)",
                  "COX": "Cox proportional hazards (Breslow ties, Newton-Raphson)"}[stmt.kind]
        result.extra["model"] = {"outcome": stmt.outcome, "method": method, **result.extra.get("model", {})}
        result.kind = "model"
        return result
    aggregates = stmt.aggregates if isinstance(stmt, ir.Select) else ()
    floats_i = [i for i, agg in enumerate(aggregates) if floated(agg.func)]
    if floats_i:  # VAR and STDDEV: mantissa 2^exponent, exact in float64 (`queries.floats`)
        m = len(aggregates)
        for i, exps in zip(floats_i, decoded[1 + 3 * m :]):
            decoded[1 + i] = np.ldexp(decoded[1 + i], np.rint(exps).astype(np.int64))
        decoded = decoded[: 1 + 3 * m]
    exact = weights_select.exact_parts(stmt)
    for i, agg in enumerate(aggregates):
        values, frac, bits = outputs[1 + i]
        if agg.func == "SUM" and frac == 0 and bits == 128:
            decoded[1 + i] = PRECISE.ring.to_signed(np.asarray(values))  # exact integers, beyond float64's 2^53
        elif i in exact and bits == 128:  # a weighted VAR's sums, read exactly (`queries.weights_select`)
            signed = PRECISE.ring.to_signed(np.asarray(values))
            decoded[1 + i] = np.array([Fraction(int(v), 1 << frac) for v in signed.ravel()], dtype=object)
        elif agg.func in ("MIN", "MAX") and agg.column in plan.integer_columns and bits == 128:
            signed = PRECISE.ring.to_signed(np.asarray(values))
            decoded[1 + i] = np.array([(int(v) + (1 << (frac - 1))) >> frac for v in signed.ravel()], dtype=object)
    return arrange(finish(plan, decoded, yates), stmt)


def grouping_columns(stmt: ir.Statement, schema: Schema | None = None) -> tuple[str, ...]:
    """Columns whose value domains a plan needs (GROUP BY, CROSSTAB, a model's categorical
    columns: `queries.design.categorical_columns`, which needs the common schema; without it,
    a model's C() columns only)."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    if isinstance(inner, ir.Select):
        return inner.group_by
    if isinstance(inner, ir.Crosstab):
        return inner.columns
    if isinstance(inner, ir.Survival):
        return (inner.group,) if inner.group else ()
    if isinstance(inner, ir.Regression):
        if schema is None:
            return inner.categorical
        from queries.design import categorical_columns  # formulaic: only for a model

        known = set(schema.names)
        wanted = categorical_columns(inner, lambda c: schema.kind(c) if c in known else "unknown")
        return tuple(c for c in wanted if c in known)  # an unknown column is the plan's error, with its position
    return ()


def local_domains(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> dict[str, tuple[ir.Value, ...]]:
    """Sorted union of the values present at any party (used where all frames are at hand)."""
    out = {}
    for col in columns:
        values: set[Any] = set()
        for f in frames:
            values |= {v.item() if isinstance(v, np.generic) else v for v in f[col].dropna().unique()}
        out[col] = tuple(sorted(values))
    return out


def run_in_process(
    frames: Sequence[Data], query: str | ir.Statement, min_cell: int = 5, release_zero: bool = True,
    yates: bool = False, epsilon: float | None = None, bounds: Sequence[dp.Bounds] | None = None,
) -> tuple[Result, Plan]:
    """Run a query over n in-process parties (one frame, data source or set of datasets each) and
    return the analyst's result (`yates`: as in `finish_result`); for EXPLAIN, the plan with its
    predicted cost, as the nodes answer it, without running anything. With `epsilon`: under differential
    privacy (`queries.dp`), with each party's declared `bounds` (the widest apply).

    A model the parties refuse raises its `ModelRefused`, with `.plan` holding the plan and
    the cost counters of the refused run."""
    stmt = parse(query) if isinstance(query, str) else query
    sources = [source_of(f, stmt) for f in frames]  # an unknown dataset fails before anything is read
    schema = check_schemas([s.schema() for s in sources])
    check_query(stmt, schema)  # a column absent at some party: the message names it, as at the nodes
    found = [local_values(s, stmt, schema) for s in sources]
    domains = {c: tuple(sorted(set().union(*(f[c] for f in found)))) for c in (found[0] if found else {})}
    plan = plan_query(stmt, schema, domains, min_cell, release_zero)
    if epsilon is not None:
        plan = dp.apply(plan, epsilon, dp.pooled_bounds(list(bounds or [{} for _ in sources])))
    if plan.explain:  # as through nodes: the plan and its predicted cost, nothing run
        plan = replace(plan, cost=predict_cost(plan, schema, len(sources)))
        return explain_result(plan), plan
    ctxs = make_contexts(len(sources), kinds=KINDS)
    answers = run_parties(
        len(sources), lambda ctx, source: run_party_with_facts(ctx, plan, source), args=sources, contexts=ctxs
    )
    shares = [a[0] for a in answers]
    per_party = [c.stats.as_dict() for c in ctxs]
    cost = {key: max(d[key] for d in per_party) for key in per_party[0]}
    outputs = [(reconstruct(output), output[0].frac, output[0].ring.bits) for output in zip(*shares, strict=True)]
    try:
        return finish_result(plan, outputs, answers[0][1], yates), replace(plan, cost=cost)
    except ModelRefused as refusal:
        refusal.plan = replace(plan, cost=cost)  # type: ignore[attr-defined]  # what the refused run cost
        raise


def rebuild_plan(public: Mapping[str, Any], stmt: ir.Statement | None = None) -> Plan:
    """The analyst's copy of the plan, from the public facts the nodes returned (`stmt`: the
    query the analyst sent, already parsed)."""
    domains = {c: tuple(v) for c, v in public["domains"].items()}
    query = stmt if stmt is not None and ir.source_text(stmt) == public["query"] else public["query"]
    plan = plan_query(query, Schema.from_json(public["schema"]), domains, int(public["min_cell"]),
                      bool(public.get("release_zero", True)))
    plan = replace(plan, param_fraction=float(public.get("param_fraction", plan.param_fraction)))
    privacy = public.get("privacy")
    if privacy:
        plan = dp.apply(plan, privacy["epsilon"], {c: (lo, hi) for c, lo, hi in privacy["bounds"]})
    return plan


def predict_cost(
    plan: Plan, schema: Schema, parties: int, rows: Sequence[int] | None = None, scales: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Rounds, bytes, messages and dealer material per party (maximum over parties).

    Runs the plan's MPC steps in-process on stand-in tables (`queries.cost`): exact for
    SELECT, CROSSTAB and LINEAR; for LOGISTIC an estimate, with the Newton iterations and
    rows per party it assumed added as "iterations" and "rows_per_party"; for POISSON exact in
    rounds (a fixed schedule of "fixed_iterations"), its bytes for "rows_per_party". A SELECT with
    MEDIAN/QUANTILE is exact given each party's table `rows`; without them its bytes are an
    estimate for tables of at most 64 rows, flagged by "slots_per_party"; and exact given each
    MEDIAN/QUANTILE column's opened scale e (`scales`: max |x| <= 2^e, which sets its
    search steps), else an upper bound for the widest keys, flagged by "column_scale". The metadata
    exchange before the MPC steps is not included.
    """
    run_plan, frames = stand_ins(plan, schema, parties, rows=rows, scales=scales)
    ctxs = make_contexts(parties, kinds=KINDS)
    answers = run_parties(
        parties, lambda ctx, frame: run_party_with_facts(ctx, run_plan, frame), args=frames, contexts=ctxs
    )
    per_party = [c.stats.as_dict() for c in ctxs]
    cost = {key: max(d[key] for d in per_party) for key in per_party[0]}
    facts = answers[0][1]
    stmt = plan.statement
    if isinstance(stmt, ir.Regression) and stmt.kind in ("POISSON", "COX"):
        cost.update(fixed_iterations=stmt.maxiter, rows_per_party=len(frames[0]))
    elif isinstance(stmt, ir.Survival) and "grid" in facts:
        cost.update(grid_points=int(facts["grid"]))
    elif "iterations" in facts:
        cost.update(iterations=int(facts["iterations"]), rows_per_party=len(frames[0]))
    if plan.quantiles and rows is None and plan.privacy is None:  # under dp a quantile is a fixed histogram
        cost.update(slots_per_party=slots_for(0))
    keyed = {c for c, _ in plan.quantiles}
    if keyed and not keyed <= set(scales or {}) and plan.privacy is None:
        cost.update(column_scale=QUANTILE_SCALE)
    return cost
