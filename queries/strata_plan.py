"""The plan of a stratified CROSSTAB (`CROSSTAB exposure BY outcome STRATA s`): checks, groups, EXPLAIN's steps.

Called from the CROSSTAB compiler (`queries.crosstab_plan`) when the statement has STRATA. The MPC part is
`queries.strata`, the analyst's part `queries.strata_result`, the release rule `queries.crosstab_rule.rule_text`.
The exposure and the outcome must each have exactly two levels (their sorted levels: the
first is the reference, the second the exposed level or the case), known before anything is
computed from the private union of the parties' values; so is every level of the strata column.
"""

from __future__ import annotations

from queries import ir
from queries.errors import QueryError
from queries.plan import Plan, _check, group_keys
from queries.table import Schema

MAX_STRATA = 200
"""Levels a STRATA column may have: each stratum adds its share of every secure division."""


def compile_strata(stmt: ir.Crosstab, schema: Schema, domains: dict[str, tuple[ir.Value, ...]], min_cell: int) -> Plan:
    """The plan: groups (exposure, outcome, stratum) in domain order, one count per group."""
    assert stmt.strata is not None
    _, read = _check(stmt, schema)
    for col, what in ((stmt.row, "exposure"), (stmt.col, "outcome")):
        levels = domains.get(col, ())
        if len(levels) != 2:
            raise QueryError(f"CROSSTAB ... STRATA needs a binary {what}: {col!r} has {len(levels)} level(s) "
                             "at the parties, not 2", name=col)
    strata = domains.get(stmt.strata, ())
    if not strata:
        raise QueryError(f"{stmt.strata!r} has no values at any party", name=stmt.strata)
    if len(strata) > MAX_STRATA:
        raise QueryError(f"STRATA supports at most {MAX_STRATA} levels; {stmt.strata!r} has {len(strata)}",
                         name=stmt.strata)
    keys = group_keys(stmt.columns, domains)
    k = len(strata)
    steps = (
        f"secure sum of every party's 2 x 2 x {k} cell counts (exposure x outcome x stratum), as integers in Z_2^128; "
        "rows with NULL in any of the three columns are dropped (local)",
        "margins per stratum (local); per stratum the integer products ad, bc, a n0, c n1, n1 m1, n1 n0, m1 m0, "
        "(a + d) ad, (a + d) bc, (b + c) ad, (b + c) bc, n1 n0 m1 - a c n, n1 n0 m1 m0 (two rounds of products)",
        "one batched sign and zero test: small strata, small cells per stratum and of the table summed over the "
        "strata, empty strata, strata with a zero margin, and the zero tests of the sums the estimates divide by; "
        "suppression bits by a tree of products",
        "per stratum, one batched secure division of the integers above by n, n^2 or n (n - 1): the Mantel-Haenszel "
        "terms R = ad/n, S = bc/n, Robins-Breslow-Greenland's PR, PS + QR, QS, the risk ratio terms, "
        "Greenland-Robins' variance terms, E(a) and Var(a) under the null",
        "summed over the strata (local); one batched secure division: OR = sum R / sum S, the RBG variance, "
        "RR and its variance, the Mantel-Haenszel chi2 (no continuity correction)",
        "Breslow-Day: per stratum the expected a under the pooled OR, the root of a quadratic divided by 1 + OR "
        "(its discriminant a sum of three terms >= 0; the roots of the a and the b cell side by side, weighted "
        "1 - s and s, s = 1/(1 + OR)), by a secure square root and a division; its variance by secure reciprocals; "
        "the statistic and Tarone's correction (two more secure reciprocal/division steps)",
        "release: every statistic times its keep bit, the cells times theirs (one round); the analyst receives the "
        "statistics, the strata with rows, the tables if released and the bits, never which stratum or cell is "
        "small, and computes the CIs and p-values",
    )
    return Plan(stmt, stmt.columns, keys, (("rows",),), (), (), min_cell, steps, kinds=read)
