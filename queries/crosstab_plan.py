"""The plan of a CROSSTAB: its groups, one count per group, and EXPLAIN's steps.

Registered with `queries.plan.compile_statement` (imported by `queries.engine`). A CROSSTAB with
STRATA is planned by `queries.strata_plan`. The MPC part is `queries.crosstab` (`queries.strata`).
"""

from __future__ import annotations

from queries import ir
from queries.plan import Plan, _check, compile_statement, group_keys
from queries.strata_plan import compile_strata
from queries.table import Schema


@compile_statement.register
def _(stmt: ir.Crosstab, schema: Schema, domains: dict[str, tuple[ir.Value, ...]], min_cell: int) -> Plan:
    if stmt.strata is not None:
        return compile_strata(stmt, schema, domains, min_cell)
    _, read = _check(stmt, schema)
    keys = group_keys((stmt.row, stmt.col), domains)
    steps = (
        "secure sum of every party's cell counts, as integers in Z_2^64",
        "margins and total: sums of the shared cells (local)",
        "small cells, margins and total (thresholds in the disclosure line): one batched comparison",
        "suppression bits of the cells, the row margins and the column margins: a tree of products each, "
        "every level in one round",
        "release: every count times its part's keep bit (one round); the analyst receives the kept counts and "
        "four suppression bits, never which number is small; chi-square, odds ratio and relative risk are "
        "computed from released cells only",
    )
    return Plan(stmt, (stmt.row, stmt.col), keys, (("rows",),), (), (), min_cell, steps, kinds=read)
