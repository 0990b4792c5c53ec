"""A party's own rows through DuckDB: which rows the WHERE keeps, and the derived columns' values.

One SQL statement per call, on its own cursor of the process's one in-memory DuckDB database
(`_engine`; a cursor is a connection of its own, so the table it registers is seen by no other
call and goes with it; opening a fresh database per call cost ~14 ms, a cursor under 1 ms):

    SELECT "_row", CAST(<derived expression> AS <type>) AS "d0", ... FROM t WHERE <condition>

over an Arrow table `t` holding a row number and only the columns the expressions read,
renamed c0, c1, ... (DuckDB's names are case-insensitive; the table's are not) and typed by
the kinds every party agreed on (an integer column that is float elsewhere is read as
DOUBLE here too, so every party computes the same thing). The SQL is printed from the
checked IR (`queries.sql_text.duckdb`), never taken from the analyst's text, so SQL's
three-valued logic, LIKE, CASE and dates follow DuckDB's semantics and nothing else of
DuckDB is reachable; the connection also refuses files and network (`enable_external_access`
off). Division by zero gives NULL, so a row's value never makes the query fail. A failure
(a CAST of a string that is no number, an overflow) is one QueryError that names its kind
and never a value.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from queries import ir
from queries.errors import QueryError
from queries.expr import Expr, columns_of
from queries.sql_text import duckdb as to_duckdb

if TYPE_CHECKING:
    from queries.plan import Plan

SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR"}
_ARROW = {"int": (pa.int64(), "Int64"), "float": (pa.float64(), "Float64"), "category": (pa.string(), "string")}
_PANDAS = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(), pa.string(): pd.StringDtype(),
           pa.large_string(): pd.StringDtype()}
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "threads": 1, "enable_external_access": False, "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_FAILURES = {
    "ConversionException": "a value could not be converted to the type asked (a CAST)",
    "OutOfRangeException": "a value is out of range (an integer overflow or an impossible date)",
    "InvalidInputException": "an expression received an input it cannot take",
}

Derived = tuple[str, Expr, str]
"""(name, expression, plan kind: int | float | category)."""


def _arrow(series: pd.Series, kind: str | None) -> pa.Array:
    if kind not in _ARROW:
        return pa.nulls(len(series))  # no value here and no agreed kind: NULLs fit any operation
    arrow_type, dtype = _ARROW[kind]
    return pa.array(series.astype(dtype), type=arrow_type, from_pandas=True)


def _local_kind(series: pd.Series) -> str | None:
    if series.isna().all():
        return None
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return "int"
    return "float" if pd.api.types.is_float_dtype(series) else "category"


def arrow_columns(frame: pd.DataFrame, kinds: Mapping[str, str | None]) -> tuple[dict[str, str], dict[str, pa.Array]]:
    """The columns of `frame` named in `kinds`, each read as its agreed kind (None: the kind this
    frame holds), renamed c0, c1, ... (DuckDB's names are case-insensitive, a frame's are not): the
    new names and the Arrow arrays under them. QueryError for a column the frame lacks."""
    for col in kinds:
        if col not in frame.columns:
            raise QueryError(f"unknown column {col!r}", name=col)
    names = {c: f"c{i}" for i, c in enumerate(kinds)}
    return names, {names[c]: _arrow(frame[c], kind or _local_kind(frame[c])) for c, kind in kinds.items()}


@cache
def _engine() -> tuple[Any, threading.Lock]:
    """The process's in-memory DuckDB database for evaluating rows, made on first use, and the lock
    under which cursors are taken from it. It holds no table between calls: each call registers
    its own on its own cursor. Its settings are global, so every cursor inherits them."""
    import duckdb  # only when there is something to evaluate

    con = duckdb.connect(config=_CONFIG)
    con.execute("SET GLOBAL error_on_division_by_zero = false")
    return con, threading.Lock()


def run_duckdb(table: pa.Table, sql: str) -> pa.Table:
    """`sql` over `table`, registered as `t` on a cursor of its own that reads no file and no
    network, division by zero giving NULL; a failure is `evaluation_failure`."""
    import duckdb

    base, lock = _engine()
    with lock:
        con = base.cursor()
    try:
        con.register("t", table)
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise evaluation_failure(exc) from None
    finally:
        con.close()


def evaluation_failure(exc: Exception) -> QueryError:
    """A DuckDB failure while evaluating a party's rows as one QueryError naming its kind, never a value."""
    reason = _FAILURES.get(type(exc).__name__, "an expression could not be evaluated")
    return QueryError(f"evaluating the query on this party's rows failed: {reason}")


def select_rows(
    frame: pd.DataFrame, where: Expr | None, derived: Sequence[Derived], kinds: Mapping[str, str] | None = None
) -> tuple[np.ndarray, dict[str, pd.Series]]:
    """The positions of the rows where `where` is true, and each derived column on those rows.

    `kinds`: the agreed kind of each table column read (default: the kinds this frame holds)."""
    read = list(dict.fromkeys(c for x in [where, *(d[1] for d in derived)] for c in columns_of(x)))
    agreed = dict(kinds or {})
    names, arrays = arrow_columns(frame, {c: agreed.get(c) for c in read})
    table = pa.table({"_row": pa.array(np.arange(len(frame), dtype=np.int64)), **arrays})
    select = ['"_row"'] + [f'CAST({to_duckdb(x, names)} AS {SQL_TYPES[kind]}) AS "d{i}"'
                           for i, (_, x, kind) in enumerate(derived)]
    sql = f"SELECT {', '.join(select)} FROM t" + (f" WHERE {to_duckdb(where, names)}" if where is not None else "")
    result = run_duckdb(table, sql)
    rows = result.column("_row").to_numpy()
    values = {
        name: result.column(f"d{i}").to_pandas(types_mapper=_PANDAS.get).astype(_ARROW[kind][1])
        for i, (name, _, kind) in enumerate(derived)
    }
    return rows, values


def evaluate(
    frame: pd.DataFrame, where: Expr | None, derived: Sequence[Derived] = (), kinds: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The rows of `frame` where `where` is true (SQL: NULL is not true), with the derived
    columns appended; `frame` itself when there is nothing to evaluate."""
    if where is None and not derived:
        return frame
    rows, values = select_rows(frame, where, derived, kinds)
    kept = frame.iloc[rows]
    if not values:
        return kept
    kept = kept.copy()
    for name, v in values.items():
        kept[name] = v.array  # by position: the index is never aligned
    return kept


def with_derived(
    frame: pd.DataFrame, where: Expr | None, derived: Sequence[Derived], kinds: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """All rows of `frame`, with the derived columns appended: their values on the rows `where`
    keeps, NULL elsewhere (a derived grouping column's domain is formed from the rows it groups)."""
    if not derived:
        return frame
    rows, values = select_rows(frame, where, derived, kinds)
    out = frame.copy()
    for name, v in values.items():
        full = pd.array([pd.NA] * len(frame), dtype=v.dtype)
        full[rows] = v.array
        out[name] = full
    return out


def derived_of(stmt: ir.Statement, kinds: Mapping[str, str], only: Sequence[str] | None = None) -> list[Derived]:
    """A SELECT's derived columns with their kinds (`only`: those named)."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    if not isinstance(inner, ir.Select):
        return []
    return [(d.name, d.expr, kinds[d.name]) for d in inner.derived if only is None or d.name in only]


def plan_rows(plan: Plan, frame: pd.DataFrame) -> pd.DataFrame:
    """A plan's rows at this party: its WHERE applied, its derived columns computed, every
    column read as the kind the parties agreed on."""
    stmt = plan.statement
    kinds = dict(plan.kinds)
    return evaluate(frame, getattr(stmt, "where", None), derived_of(stmt, kinds), kinds)
