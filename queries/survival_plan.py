"""The plan of a SURVIVAL statement: checks against the schema, the groups, and EXPLAIN's steps.

Registered with `queries.plan.compile_statement` (imported by `queries.engine`). The MPC part
is `queries.survival`; the release rule is `rule_text`; EXPLAIN's stand-in tables `stand_ins`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from queries import ir
from queries.errors import QueryError
from queries.plan import Plan, _check, compile_statement, group_keys
from queries.table import Schema

_DTYPES = {"int": "Int64", "float": "Float64", "category": "string"}

MAX_GROUPS = 20
"""Levels a SURVIVAL BY column may have: the log-rank test runs one secure reciprocal per group."""


def rule_text(k: int) -> str:
    """The release rule in one line, for EXPLAIN's disclosure line."""
    return (f"a grid point is a released step of a group's curve when it has at least {k} events (so at least {k} "
            f"patients at risk); steps with 1..{k - 1} events are not shown, their events are in S at the next "
            f"released step; a group's patients and events with 1..{k - 1} are suppressed, and then the log-rank test "
            "is withheld")


@compile_statement.register
def _(stmt: ir.Survival, schema: Schema, domains: dict[str, tuple[ir.Value, ...]], min_cell: int) -> Plan:
    _, read = _check(stmt, schema)
    for col, what in ((stmt.time, "time"), (stmt.event, "event")):
        if schema.kind(col) == "category":
            raise QueryError(f"the {what} column of SURVIVAL must be numeric; {col!r} is categorical", name=col)
    columns = (stmt.group,) if stmt.group else ()
    keys = group_keys(columns, domains)
    if len(keys) > MAX_GROUPS:
        raise QueryError(f"SURVIVAL BY supports at most {MAX_GROUPS} groups; {stmt.group!r} has {len(keys)}",
                         name=stmt.group)
    if not keys:
        raise QueryError(f"{stmt.group!r} has no values at any party", name=stmt.group)
    width = f"{stmt.every:g}"
    steps = [
        f"complete cases: rows with NULL in {', '.join(stmt.columns)} are dropped (local); a time t counts at the grid "
        f"point ceil(t / {width}), shown as that point times {width}",
        "checks: pooled counts of negative times, of events not 0/1, of rows beyond each grid size 2^4 .. 2^12, of "
        f"patients (< {min_cell}?) and of events (< {min_cell}?): one batched sign and zero test; only the yes/no "
        "bits are opened (the grid size: the least power of two holding every time); a failed check refuses",
        "secure sum of every party's events and patients leaving the risk set, per group and grid point, as integers; "
        "at risk = suffix sums (local)",
        f"one batched sign and zero test: [events < {min_cell}] per group and grid point, the zero tests of the "
        f"denominators, and per group [patients < {min_cell}], [events < {min_cell}]",
        "Kaplan-Meier per group and grid point: log(n - d) - log n and 1/(n - d) - 1/n by one secure log and one "
        "secure reciprocal of all counts (one normalisation), summed along the grid (log S and Greenwood's sum)",
    ]
    if len(keys) > 1:
        steps.append(
            f"log-rank across the {len(keys)} groups: observed - expected and its variance matrix by three rounds of "
            "products on the pooled reciprocals 1/n and 1/(n - 1); chi2 = z' V^-1 z over the first "
            f"{len(keys) - 1} groups (an empty group left out) by Gaussian elimination ({len(keys) - 1} secure "
            "reciprocals); withheld (a tree of products of the keep bits) if a group has 1.."
            f"{min_cell - 1} patients or events")
    steps.append("release: every value times its released bit (one round); the analyst receives the released steps "
                 "(at risk, events, log S, Greenwood's sum), the groups' counts, chi2 and the bits, and computes S, "
                 "its 95% CI (log(-log), as lifelines) and the p-value")
    return Plan(stmt, columns, keys, (), (), (), min_cell, tuple(steps), kinds=read)


def stand_ins(plan: Plan, schema: Schema, parties: int) -> tuple[Plan, list[pd.DataFrame]]:
    """EXPLAIN's stand-in tables (`queries.cost`): per party 64 rows, or 4 k per group if more, every row an
    event at a time on the 16-point grid, the groups' levels in turn, the WHERE dropped. They pass every check,
    so the predicted rounds are the real run's (the rounds do not depend on the grid size; the bytes do)."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Survival)
    rows = max(64, 4 * plan.min_cell * plan.groups)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(parties):
        points = rng.integers(0, 16, rows)
        data: dict[str, pd.Series] = {}
        for name, kind in schema.columns:
            if name == stmt.time:
                data[name] = pd.Series(points if kind == "int" else points * stmt.every, dtype=_DTYPES[kind])
            elif name == stmt.group:
                levels = np.array([key[0] for key in plan.group_keys], dtype=object)
                data[name] = pd.Series(np.resize(levels, rows), dtype=_DTYPES[kind])
            elif kind == "category":
                data[name] = pd.Series(["x"] * rows, dtype="string")
            else:
                data[name] = pd.Series(np.ones(rows, dtype=np.int64), dtype=_DTYPES[kind])
        frames.append(pd.DataFrame(data))
    return replace(plan, statement=replace(stmt, where=None)), frames
