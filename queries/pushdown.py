"""The SQL a data source runs for a plan: the WHERE and the derived columns pushed down into it.

A site's rows never leave its data source except as the columns and rows a plan needs. For
a plan, `read_of` says what that is (a `Read`), and these functions print it as one statement
in the source's own dialect:

    rows_sql:     SELECT "c0" AS "k0", ..., CAST(<derived> AS <type>) AS "d0", ...
                  FROM (SELECT <column as its agreed kind> AS "c0", ... FROM <relation>) AS "t"
                  WHERE <condition>
    count_sql:    SELECT COUNT(*) FROM <relation>           (the table's rows, before the WHERE)
    rows_sql(..., distinct=True) over one grouping column: its values, for the private union

The inner SELECT is the source's own (`Column`: how it reads a column as the kind every
party agreed on, e.g. an integer column as DOUBLE where other sites hold decimals, a
PostgreSQL boolean through INTEGER). The outer part is printed from the checked IR by
`queries.sql_text.duckdb` (never taken from the analyst's text) in DuckDB's dialect, which
defines what a query means; for another dialect sqlglot transpiles it, with the fixes below
that keep DuckDB's meaning where the dialects differ (tested on the same rows in
tests/queries/test_sources_pg.py):

- PostgreSQL: LIKE without an escape character (PostgreSQL's default is a backslash, DuckDB
  has none); ROUND and % on NUMERIC (PostgreSQL has neither for DOUBLE PRECISION, and its
  ROUND of a double rounds halves to even); decimal literals as DOUBLE PRECISION (not
  NUMERIC); DATE_TRUNC of a TIMESTAMP (PostgreSQL's of a DATE has a time zone); a condition
  read as a number through CASE (PostgreSQL cannot CAST a boolean to BIGINT); text columns
  compared byte by byte (COLLATE "C", as DuckDB), whatever the database's locale.
- Every dialect: a division by zero is NULL (the divisor is NULLIF(divisor, 0)) and `/`
  divides as DOUBLE (`queries.sql_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from queries import ir
from queries.evaluate import Derived, derived_of
from queries.expr import Expr, columns_of
from queries.sql_text import duckdb as to_duckdb

if TYPE_CHECKING:
    from queries.plan import Plan

DIALECTS = ("duckdb", "postgres", "trino", "spark")
TYPES = {
    "duckdb": {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR"},
    "postgres": {"int": "BIGINT", "float": "DOUBLE PRECISION", "category": "TEXT"},
    "trino": {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR"},
    "spark": {"int": "BIGINT", "float": "DOUBLE", "category": "STRING"},
}
"""How each dialect's inner SELECT reads a column of each agreed kind."""
_OUT = {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR"}  # DuckDB's, transpiled with the rest

Column = Callable[[str, str], str]
"""(column name, agreed kind) -> the SQL that reads it as that kind, in the source's dialect."""


@dataclass(frozen=True)
class Read:
    """What a party reads for a plan: every table column any part reads, with the kind the
    parties agreed on (`columns`, in the inner SELECT's order); the table columns returned
    (`keep`); the WHERE; the derived columns returned, computed on the kept rows."""

    columns: tuple[tuple[str, str], ...]
    keep: tuple[str, ...] = ()
    where: Expr | None = None
    derived: tuple[Derived, ...] = ()


def needed(stmt: ir.Statement) -> tuple[str, ...]:
    """The columns a statement's MPC part reads from the kept rows (table or derived), in order."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    if isinstance(inner, ir.Select):
        return tuple(dict.fromkeys([*inner.group_by, *(c for a in inner.aggregates for c in a.columns)]))
    if isinstance(inner, ir.Crosstab):
        return inner.columns
    if isinstance(inner, ir.Survival):
        return inner.columns
    assert isinstance(inner, ir.Regression)
    return tuple(dict.fromkeys([inner.outcome, *((inner.time,) if inner.time else ()), *inner.columns,
                                *([inner.weight] if inner.weight else [])]))


def read_of(plan: Plan) -> Read:
    """The `Read` of a plan: its WHERE, its derived columns, and only the columns it needs."""
    stmt = plan.statement.inner if isinstance(plan.statement, ir.Explain) else plan.statement
    kinds = dict(plan.kinds)
    derived = tuple(derived_of(stmt, kinds))
    names = {d[0] for d in derived}
    keep = tuple(c for c in needed(stmt) if c not in names)
    where = getattr(stmt, "where", None)
    return Read(_columns(keep, where, derived, kinds), keep, where, derived)


def _columns(keep: Sequence[str], where: Expr | None, derived: Sequence[Derived],
             kinds: dict[str, str]) -> tuple[tuple[str, str], ...]:
    read = dict.fromkeys([*keep, *columns_of(where), *(c for d in derived for c in columns_of(d[1]))])
    return tuple((c, kinds[c]) for c in read)


def values_reads(stmt: ir.Statement, kinds: dict[str, str], columns: Sequence[str]) -> dict[str, Read]:
    """For each grouping column, the `Read` of its values for the private union of domains: a table
    column over all the table's rows, a derived one on the rows the WHERE keeps."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    derived = {d[0]: d for d in derived_of(inner, kinds)}
    where = getattr(inner, "where", None)
    out = {}
    for col in columns:
        if col in derived:
            out[col] = Read(_columns((), where, (derived[col],), kinds), (), where, (derived[col],))
        else:
            out[col] = Read(((col, kinds[col]),), (col,))
    return out


def quote(name: str, dialect: str = "duckdb") -> str:
    """A name as a quoted identifier of the dialect."""
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def cast_column(dialect: str) -> Column:
    """The plain way to read a column as a kind: CAST(name AS the dialect's type); PostgreSQL's text
    compared byte by byte (COLLATE "C"), as DuckDB compares it."""
    collate = ' COLLATE "C"' if dialect == "postgres" else ""
    return lambda name, kind: (f"CAST({quote(name, dialect)} AS {TYPES[dialect][kind]})"
                               + (collate if kind == "category" else ""))


def rows_sql(read: Read, relation: str, dialect: str = "duckdb", column: Column | None = None,
             distinct: bool = False) -> str:
    """The statement giving `read`'s rows from `relation` (a table name, or a parenthesised query
    with an alias), in `dialect`; its result columns are k0.. (`read.keep`) then d0.. (`read.derived`)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (one of {', '.join(DIALECTS)})")
    reader = column or cast_column(dialect)
    names = {c: f"c{i}" for i, (c, _) in enumerate(read.columns)}
    inner = ", ".join(f"{reader(c, kind)} AS {quote(names[c], dialect)}" for c, kind in read.columns)
    inner_sql = f"SELECT {inner or '1 AS ' + quote('c', dialect)} FROM {relation}"
    select = [f'"{names[c]}" AS "k{i}"' for i, c in enumerate(read.keep)]
    select += [f'CAST({to_duckdb(x, names)} AS {_OUT[kind]}) AS "d{i}"' for i, (_, x, kind) in enumerate(read.derived)]
    head = ("SELECT DISTINCT " if distinct else "SELECT ") + (", ".join(select) or '1 AS "one"')
    where = f" WHERE {to_duckdb(read.where, names)}" if read.where is not None else ""
    if dialect == "duckdb":
        return f'{head} FROM ({inner_sql}) AS "t"{where}'
    tree = sqlglot.parse_one(f"{head} FROM pooled_rows{where}", read="duckdb")
    if dialect == "postgres":
        tree = _rewrite(tree, _postgres)  # type: ignore[arg-type]
    table = tree.find(exp.Table)
    assert table is not None
    table.replace(exp.Var(this=f"({inner_sql}) AS {quote('t', dialect)}"))
    return tree.sql(dialect=dialect)


def count_sql(relation: str) -> str:
    """The statement counting the rows of `relation` (the same in every dialect)."""
    return f"SELECT COUNT(*) FROM {relation}"


# -- PostgreSQL: keep DuckDB's meaning -----------------------------------------------------------------
def _rewrite(node: exp.Expression, fix: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
    """`node` with `fix` applied to every node, children first."""
    for child in list(node.iter_expressions()):
        _rewrite(child, fix)
    parent, key, index = node.parent, node.arg_key, node.index
    new = fix(node)
    if new is not node and parent is not None and key is not None:
        parent.set(key, new, index)
    return new


def _boolean(node: exp.Expression) -> bool:
    if isinstance(node, exp.Paren):
        return _boolean(node.this)
    if isinstance(node, exp.Cast):
        return node.to.is_type(exp.DataType.Type.BOOLEAN)
    return isinstance(node, (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Escape))


def _cast(node: exp.Expression, to: str) -> exp.Cast:
    return exp.Cast(this=node, to=exp.DataType.build(to, dialect="postgres"))


def _postgres(node: exp.Expression) -> exp.Expression:
    if isinstance(node, (exp.Like, exp.ILike)) and not isinstance(node.parent, exp.Escape):
        return exp.Escape(this=node, expression=exp.Literal.string(""))
    if isinstance(node, exp.Round):
        node.set("this", _cast(node.this, "NUMERIC"))
        return _cast(node, "DOUBLE PRECISION")
    if isinstance(node, exp.Mod):
        return exp.Mod(this=_cast(node.this, "NUMERIC"), expression=_cast(node.expression, "NUMERIC"))
    if isinstance(node, exp.Literal) and not node.is_string and any(ch in node.this for ch in ".eE"):
        return _cast(node, "DOUBLE PRECISION")
    if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)):
        node.set("this", _cast(node.this, "TIMESTAMP"))
        return node
    if isinstance(node, exp.Cast) and _boolean(node.this) and not _boolean(node) \
            and not node.to.is_type(*exp.DataType.TEXT_TYPES):
        value = node.this
        number = exp.Case(ifs=[exp.If(this=value.copy(), true=exp.Literal.number(1)),
                               exp.If(this=exp.Not(this=exp.Paren(this=value.copy())), true=exp.Literal.number(0))])
        node.set("this", number)
        return node
    return node
