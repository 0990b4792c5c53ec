"""A plan's per-group partials as one GROUP BY statement, run by the site's own engine.

Everything the MPC half of a SELECT or CROSSTAB takes from a party's rows is a per-group
aggregate (`stats_of`): counts, sums, centred sums of squares and cross products, largest
|x| (the public scales and the private group scales), minima and maxima, and exact sums of the
values in fixed point. `partials_sql` prints them as one statement over the plan's rows
(`queries.pushdown.rows_sql`: the WHERE and the derived columns, already in the dialect):

    SELECT "g0", ..., COUNT(*) AS "a0", SUM("x0") AS "a1", ...
    FROM (SELECT <grouping column> AS "g0", ..., <column as DOUBLE, NaN as NULL> AS "x0", ...
          FROM (<rows_sql>) AS "r") AS "p"
    GROUP BY "g0", ...

so the rows never leave the engine: the result has one row per group. The aggregate layer is
printed in DuckDB's dialect and transpiled by sqlglot; half-even rounding is spelled per dialect
(`ROUND_EVEN` in DuckDB, `ROUND` of a double in PostgreSQL, `BROUND` in Spark; Trino's `ROUND`
rounds ties away from zero, the only difference there).

Exactness (tests/queries/test_pushdown_partials.py): counts and integer sums are exact (the
engine's 128-bit or NUMERIC sums); the fixed-point SUM of a float column is exact too, as the sum
of round(x 2^f) (each row rounded half to even, as numpy's `rint`) split into two 62-bit
halves summed as integers. Float sums are the engine's SUM of DOUBLE (in DuckDB with one thread,
in row order: the same float64 value as a sequential sum; PostgreSQL may add its parallel workers'
partial sums, so the last bits can differ from run to run there); centred sums are n VAR_POP
(DuckDB's and PostgreSQL's single-pass updates), within a few units in the last place of a
two-pass sum: the rounding of any float64 computation over the rows. A NaN counts as NULL, as a
NaN read into pandas does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import sqlglot
from sqlglot import exp

from queries import ir
from queries.pushdown import DIALECTS, Column, Read, quote, rows_sql

if TYPE_CHECKING:
    from queries.plan import Plan

Stat = tuple
"""A per-group aggregate: ("rows",), ("n"|"sum"|"m2"|"amax"|"min"|"max", c), ("exact", c, frac),
("pn"|"psum"|"pm2"|"pamax"|"pcross", a, b) over the rows where both a and b are present."""

EXTREME_SENTINEL = float(2**80)
"""Stands for 'no value' in a party's local minimum (+) or maximum (-); never released."""
_HALF = 2**62  # the exact sums' halves: round(x 2^f) = hi 2^62 + lo, |lo| < 2^62, hi and lo of its sign
_OVER = {  # the stats that are one aggregate of a column's values: its SQL ({0}: the values) and Arrow type
    "n": ("COUNT({0})", pa.int64()),
    "sum": ("SUM({0})", pa.float64()),
    "m2": ("VAR_POP({0}) * COUNT({0})", pa.float64()),
    "amax": ("MAX(ABS({0}))", pa.float64()),
}
_ROUND = {"duckdb": "ROUND_EVEN({}, 0)", "postgres": "ROUND({})", "spark": "BROUND({}, 0)", "trino": "ROUND({})"}


def sum_columns(plan: Plan) -> tuple[str, ...]:
    """The columns of the plan's SUM aggregates, whose exact sums the parties share
    (`queries.scaling.exact_sums`)."""
    stmt = plan.statement.inner if isinstance(plan.statement, ir.Explain) else plan.statement
    return tuple(dict.fromkeys(a.column for a in getattr(stmt, "aggregates", ()) if a.func == "SUM" and a.column))


def stats_of(plan: Plan, frac: int) -> tuple[Stat, ...]:
    """Every per-group aggregate the plan's MPC half reads (`queries.local`, `queries.scaling`,
    `queries.group_scales`), `frac` the fixed point's fractional bits of the exact sums."""
    out: dict[Stat, None] = {("rows",): None}
    integers = set(plan.integer_columns)

    def need(*stats: Stat) -> None:
        out.update(dict.fromkeys(stats))

    for m in plan.measures:
        op = m[0]
        if op in ("n", "s", "mean", "m2"):
            need(("n", m[1]))
        if op in ("s", "mean"):
            need(("sum", m[1]))
        if op == "m2":
            need(("sum", m[1]), ("m2", m[1]))
        if len(m) == 3:
            x, y = m[1], m[2]
            need(("pn", x, y), ("psum", x, y), ("psum", y, x))
            need({"pm2x": ("pm2", x, y), "pm2y": ("pm2", y, x), "pcxy": ("pcross", x, y)}.get(op, ("pn", x, y)))
    stmt = plan.statement.inner if isinstance(plan.statement, ir.Explain) else plan.statement
    for agg in getattr(stmt, "aggregates", ()):
        if agg.func in ("AVG", "VAR", "STDDEV", "CORR"):
            need(*(("amax", c) for c in agg.columns))
        if agg.func == "CORR" and agg.column and agg.column2:
            x, y = agg.column, agg.column2
            need(("pamax", x, y), ("pamax", y, x), ("pm2", x, y), ("pm2", y, x), ("pcross", x, y))
    for kind, col in plan.extremes:
        need((kind, col), ("amax", col))
    for col in sum_columns(plan):
        need(("amax", col), ("exact", col, 0 if col in integers else frac))
    return tuple(out)


def _columns(stats: Sequence[Stat]) -> list[str]:
    return list(dict.fromkeys(c for s in stats for c in s[1:] if isinstance(c, str)))


def _aggregates(stat: Stat, x: dict[str, str], i: dict[str, str]) -> list[tuple[str, pa.DataType]]:
    """The SQL (DuckDB's dialect) and Arrow type of each result column of one stat."""
    op = stat[0]
    if op == "rows":
        return [("COUNT(*)", pa.int64())]
    a = x[stat[1]]
    if op in _OVER:
        sql, arrow_type = _OVER[op]
        return [(sql.format(a), arrow_type)]
    if op in ("min", "max"):
        col = i.get(stat[1], a)
        return [(f"{op.upper()}({col})", pa.int64() if stat[1] in i else pa.float64())]
    if op == "exact":
        if stat[1] in i:
            return [(f"CAST(SUM({i[stat[1]]}) AS VARCHAR)", pa.string())]
        v = f"ROUND_EVEN({a} * {2.0 ** stat[2]!r}, 0)"  # a placeholder for the dialect's half-even rounding
        v = f"CASE WHEN ABS({a}) < {2.0 ** (124 - stat[2])!r} THEN {v} END"
        hi = f"TRUNC({v} / {float(_HALF)!r})"  # toward zero: the rest keeps a subset of the bits
        return [(f"CAST(SUM(CAST({hi} AS BIGINT)) AS VARCHAR)", pa.string()),
                (f"CAST(SUM(CAST({v} - {hi} * {float(_HALF)!r} AS BIGINT)) AS VARCHAR)", pa.string())]
    b = x[stat[2]]
    on = f"CASE WHEN {b} IS NOT NULL THEN {a} END"  # a over the rows where both are present
    if op == "pcross":
        other = f"CASE WHEN {a} IS NOT NULL THEN {b} END"
        return [(f"COVAR_POP({on}, {other}) * COUNT({on})", pa.float64())]
    sql, arrow_type = _OVER[op.removeprefix("p")]  # pn, psum, pm2, pamax: n, sum, m2, amax over `on`
    return [(sql.format(on), arrow_type)]


def partials_sql(read: Read, groups: Sequence[str], stats: Sequence[Stat], kinds: dict[str, str], relation: str,
                 dialect: str = "duckdb", column: Column | None = None) -> tuple[str, list[pa.DataType]]:
    """The statement giving every stat per group of `groups` over `read`'s rows (`read.keep` and
    `read.derived` hold the grouping columns and the stats' columns), with its result's Arrow types:
    the grouping columns g0.. then each stat's columns, in order."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (one of {', '.join(DIALECTS)})")
    out = {c: f'"k{n}"' for n, c in enumerate(read.keep)} | {d[0]: f'"d{n}"' for n, d in enumerate(read.derived)}
    types = {"int": pa.int64(), "float": pa.float64(), "category": pa.string()}
    middle = [f"{out[g]} AS \"g{n}\"" if kinds[g] != "float" else f"{_no_nan(out[g])} AS \"g{n}\""
              for n, g in enumerate(groups)]
    x, i = {}, {}
    for n, c in enumerate(_columns(stats)):
        x[c] = f'"x{n}"'  # a number as DOUBLE, NaN as NULL; a category column is only counted
        number = kinds[c] != "category"
        middle.append(f"{_no_nan(f'CAST({out[c]} AS DOUBLE)') if number else out[c]} AS {x[c]}")
        if kinds[c] == "int":
            i[c] = f'"i{n}"'
            middle.append(f"{out[c]} AS {i[c]}")
    select = [f'"g{n}"' for n in range(len(groups))]
    result_types = [types[kinds[g]] for g in groups]
    for stat in stats:
        for sql, t in _aggregates(stat, x, i):
            select.append(f'{sql} AS "a{len(select)}"')
            result_types.append(t)
    group_by = f" GROUP BY {', '.join(select[: len(groups)])}" if groups else ""
    head = f"SELECT {', '.join(select)} FROM (SELECT {', '.join(middle) or '1 AS one'} FROM pooled_rows) AS \"p\""
    rows = rows_sql(read, relation, dialect, column)
    if dialect == "duckdb":
        return head.replace("pooled_rows", f'({rows}) AS "r"', 1) + group_by, result_types
    tree = sqlglot.parse_one(head + group_by, read="duckdb")
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.upper() == "ROUND_EVEN":
            node.replace(sqlglot.parse_one(_ROUND[dialect].format(node.expressions[0].sql(dialect)), read=dialect))
    table = tree.find(exp.Table)
    assert table is not None
    table.replace(exp.Var(this=f"({rows}) AS {quote('r', dialect)}"))
    return tree.sql(dialect=dialect), result_types


def _no_nan(sql: str) -> str:
    return f"NULLIF({sql}, CAST('NaN' AS DOUBLE))"


Decoded = dict[Stat, np.ndarray]


def collect(plan: Plan, table: pa.Table, stats: Sequence[Stat]) -> tuple[Decoded, int]:
    """Each stat per plan group (laid out as `plan.group_keys`) from `partials_sql`'s result, and
    the rows kept in the plan's groups. A group whose values are outside the agreed domains (or
    NULL where the plan has no NULL level) is dropped, as `queries.local.group_rows` drops its rows.
    Empty groups hold 0 (a sum, count, centred sum, largest |x|) or the sentinel (min, max)."""
    g = plan.groups
    ncols = len(plan.group_columns)
    index = _indexer(plan)
    columns = [table.column(n).to_pylist() for n in range(table.num_columns)]
    integers = set(plan.integer_columns)
    out: Decoded = {}
    for stat in stats:
        if stat[0] == "exact":
            out[stat] = np.zeros(g, dtype=object)
        elif stat[0] in ("min", "max"):
            fill = EXTREME_SENTINEL if stat[0] == "min" else -EXTREME_SENTINEL
            out[stat] = np.array([int(fill)] * g, dtype=object) if stat[1] in integers else np.full(g, fill)
        else:
            out[stat] = np.zeros(g)
    kept = 0
    for r in range(table.num_rows):
        gi = index(tuple(columns[n][r] for n in range(ncols)))
        if gi is None:
            continue
        pos = ncols
        for stat in stats:
            width = 2 if stat[0] == "exact" and stat[1] not in integers else 1
            vals = [columns[pos + w][r] for w in range(width)]
            pos += width
            if stat[0] == "exact":
                total = sum(int(v or 0) << (62 * w) for w, v in zip((1, 0), vals)) if width == 2 else int(vals[0] or 0)
                out[stat][gi] = total
            elif vals[0] is not None:
                out[stat][gi] = vals[0]
        kept += int(out[("rows",)][gi])
    return out, kept


def _indexer(plan: Plan) -> Callable[[tuple], int | None]:
    """Group values -> the plan's group index (None: dropped), as `queries.local.group_rows`."""
    codes: list[dict] = []
    nulls: list[int | None] = []
    strides: list[int] = []
    stride = 1
    for pos in reversed(range(len(plan.group_columns))):
        domain = list(dict.fromkeys(k[pos] for k in plan.group_keys))
        codes.insert(0, {v: n for n, v in enumerate(domain) if v is not None})
        nulls.insert(0, domain.index(None) if None in domain else None)
        strides.insert(0, stride)
        stride *= len(domain)

    def index(values: tuple) -> int | None:
        total = 0
        for value, code, null, step in zip(values, codes, nulls, strides):
            c = null if value is None else code.get(value)
            if c is None:
                return None
            total += c * step
        return total

    return index
