"""EXPLAIN's rendering of a plan: the local steps at each party, the MPC steps, the disclosure
rule and the predicted cost with what it depends on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from queries import intervals, ir
from queries.order_keys import key_bits
from queries.plan import outcome_coding

if TYPE_CHECKING:
    from queries.plan import Measure, Plan


def render(plan: Plan, with_cost: bool = True) -> str:
    """The EXPLAIN rendering: local steps, MPC steps and the predicted cost."""
    lines = [f"plan for: {_describe(plan.statement)}"]
    grouping = ", ".join(plan.group_columns) if plan.group_columns else "(no grouping: one group)"
    lines.append(f"groups: {plan.groups} — {grouping}")
    if isinstance(plan.statement, ir.Regression):
        lines.append(f"model: {plan.statement.model_text()}")
        lines.append(f"design ({len(plan.terms)} columns): {', '.join(plan.terms)}")
        coding = outcome_coding(plan)
        if coding:
            lines.append(f"outcome coding: {coding}")
    lines.append("local, at each party, in plaintext:")
    lines.append(f"  filter rows: {'WHERE condition' if _where(plan.statement) is not None else 'all rows'}")
    if isinstance(plan.statement, ir.Select) and plan.statement.derived:
        lines.append("  per row, by DuckDB: " + ", ".join(d.name for d in plan.statement.derived))
    for m in plan.measures if plan.privacy is None else ():
        lines.append(f"  per group: {measure_text(m)}")
    lines += plan.privacy.local_lines() if plan.privacy is not None else []
    for kind, col in plan.extremes:
        lines.append(f"  per group: local {kind} of {col}")
    for col in dict.fromkeys(col for col, _ in plan.quantiles):
        key = ("(e + 2)-bit integer order key x + 2^e" if col in plan.integer_columns
               else "(e + 42)-bit fixed-point order key floor(x 2^40) + 2^(e + 40) for e <= 18, else its "
               f"{key_bits(False)}-bit compact floating-point order key")
        lines.append(
            f"  per value of {col}: its {key}, in slots padded to the table's row count rounded up to a power "
            "of two (at least 64)"
        )
    lines.append("in MPC, on secret shares:")
    for step in plan.mpc_steps:
        lines.append(f"  {step}")
    lines += plan.privacy.lines() if plan.privacy else [f"disclosure: {plan.disclosure_rule()} (decided in MPC)"]
    after = _after_release(plan.statement)
    if after:
        lines.append(f"at the analyst, on the released rows: {after}")
    if with_cost and plan.cost:
        c = plan.cost
        lines.append(
            "predicted cost per party (max over parties): "
            f"{c['rounds']} rounds, {c['bytes_sent']} bytes sent, {c['messages_sent']} messages, "
            f"{c['dealer_requests']} dealer requests ({c['dealer_bytes']} bytes of dealer material)"
        )
        if "slots_per_party" in c:
            lines.append(
                f"  (an estimate for tables of at most {c['slots_per_party']} rows: the quantile search's bytes "
                "and dealer material grow with each party's table rows rounded up to a power of two; its rounds "
                "do not, up to 2^16 rows in all (beyond, one more per search step))"
            )
        if "column_scale" in c:
            lines.append(
                f"  (rounds at most: MEDIAN/QUANTILE takes ceil((e + 2) / 2) search steps for an integer column, "
                f"ceil((e + 42) / 2) for another with e <= 18, for the opened 2^e at or above its largest |x|; "
                f"priced here for e = {c['column_scale']})"
            )
        if "fixed_iterations" in c:
            lines.append(
                f"  (rounds exact: a fixed schedule of {c['fixed_iterations']} Newton iterations; bytes and dealer "
                f"material for {c['rows_per_party']} rows per party, growing with each party's rows)"
            )
        if "grid_points" in c:
            lines.append(f"  (rounds exact; bytes and dealer material for a grid of {c['grid_points']} points, "
                         "growing with the grid the times need)")
        if "iterations" in c:
            lines.append(
                f"  (an estimate: {c['iterations']} Newton iterations over {c['rows_per_party']} rows per party; "
                "the cost grows with both)"
            )
    return "\n".join(lines)


def _describe(stmt: ir.Statement) -> str:
    return type(stmt).__name__.upper()


def _where(stmt: ir.Statement) -> ir.Condition | None:
    return getattr(stmt, "where", None)


def _after_release(stmt: ir.Statement) -> str:
    """The intervals the analyst computes (`queries.intervals`), then ORDER BY and LIMIT, which the analyst
    applies to the released rows (`queries.arrange`)."""
    if not isinstance(stmt, ir.Select):
        return ""
    parts = []
    if stmt.order_by:
        keys = [f"{k.column}{' DESC' if k.descending else ''}{' NULLS FIRST' if k.nulls_first else ''}"
                for k in stmt.order_by]
        parts.append("ORDER BY " + ", ".join(keys))
    if stmt.limit is not None:
        parts.append(f"LIMIT {stmt.limit}")
    if stmt.offset:
        parts.append(f"OFFSET {stmt.offset}")
    return "; ".join(p for p in (intervals.explain_text(stmt), " ".join(parts)) if p)


def measure_text(m: Measure) -> str:
    names = {
        "rows": "row count",
        "n": "count of non-null {0}",
        "s": "sum of {0}",
        "mean": "local mean of {0} (shared per party, not summed)",
        "m2": "sum of squares of {0} about its local mean",
        "pn": "count of rows with {0} and {1}",
        "px": "sum of {0} (rows with {1})",
        "py": "sum of {1} (rows with {0})",
        "pmx": "local mean of {0} (rows with {1}; shared per party)",
        "pmy": "local mean of {1} (rows with {0}; shared per party)",
        "pm2x": "sum of squares of {0} about its local mean (rows with {1})",
        "pm2y": "sum of squares of {1} about its local mean (rows with {0})",
        "pcxy": "sum of cross products of {0} and {1} about their local means",
    }
    return names[m[0]].format(*m[1:])
