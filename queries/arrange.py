"""The analyst's post-processing of a SELECT's released rows: column order and names, ORDER BY, LIMIT.

None of this happens in MPC or at a party: the result (`queries.result.finish`) has the
grouping columns first, then the aggregates, then each interval's three columns
(`queries.intervals`), one row per non-empty group in the order of the agreed domains. `arrange`
puts the columns in SELECT order under their SELECT names, then sorts the rows (ORDER BY) and
keeps a slice of them (OFFSET, LIMIT). A value withheld
by the disclosure rule is None, like NULL, and sorts with the NULLs (last unless NULLS
FIRST); its flag moves with its row. LIMIT only hides released rows from the display: every
group's numbers were released to the analyst all the same.
"""

from __future__ import annotations

from typing import Any

from queries import ir
from queries.result import Result


def arrange(result: Result, stmt: ir.Statement) -> Result:
    """`result` as the SELECT `stmt` asks for it (other statements: unchanged)."""
    if not isinstance(stmt, ir.Select) or result.kind != "select":
        return result
    groups = len(stmt.group_by)
    after = {"group": 0, "aggregate": groups, "interval": groups + len(stmt.aggregates)}  # `queries.result.finish`
    order = [after[o.source] + o.index for o in stmt.output] or list(range(len(result.columns)))
    names = [o.name for o in stmt.output] or list(result.columns)
    cells = result.cell_flags()
    rows = [[row[i] for i in order] for row in result.rows]
    flags = [[f[i] for i in order] for f in cells]
    index = list(range(len(rows)))
    for key in reversed(stmt.order_by):
        c = names.index(key.column)
        index = _sorted(index, [r[c] for r in rows], key.descending, key.nulls_first)
    stop = None if stmt.limit is None else stmt.offset + stmt.limit
    index = index[stmt.offset : stop]
    kept_rows = [rows[i] for i in index]
    kept_flags = [flags[i] for i in index]
    noise = [[result.noise[i][j] for j in order] for i in index] if result.noise else []
    return Result(names, kept_rows, [any(f) for f in kept_flags], dict(result.extra), kept_flags, result.kind, noise)


def _sorted(index: list[int], values: list[Any], descending: bool, nulls_first: bool) -> list[int]:
    """`index` stably sorted by `values[i]` (None apart, first or last)."""
    present = [i for i in index if values[i] is not None]
    missing = [i for i in index if values[i] is None]
    present.sort(key=lambda i: values[i], reverse=descending)  # Python's sort stays stable in reverse
    return missing + present if nulls_first else present + missing
