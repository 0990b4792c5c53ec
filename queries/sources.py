"""A site's data sources: where a dataset lives, read through its own SQL.

Every kind of source answers the same three questions for a query, so the rest of the engine
never sees more than a plan needs:

- `schema()`: its columns and their kinds (`queries.table.Schema`: metadata, never values);
- `rows(plan)`: only the rows the plan's WHERE keeps, with only the columns it reads and its
  derived columns computed (`Rows`), by one statement run in the source (`queries.pushdown`);
- `values(stmt, kinds, columns)`: the distinct values of grouping columns, for the private
  union of domains (`queries.domains`).

The kinds (one small class each): `FrameSource`, a pandas frame already in memory (tests,
`run_in_process`); `DuckDBSource` (`queries.source_duckdb`), a CSV or Parquet file, a table
of a DuckDB database, or a site's own SQL over its files, run by embedded DuckDB;
`PostgresSource` (`queries.source_postgres`), a table, view or query of a PostgreSQL
database. `open_source` makes one from a file path or a URL; `Datasets` is a site's named
datasets, from which a query's FROM picks one.

A source that cannot be reached or read raises `SourceError`, naming the dataset and where it
lives (file, or database host) and never a password; a failure while evaluating the query on
its rows is a `QueryError` naming the kind of failure and never a value.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from queries import ir
from queries.evaluate import derived_of, plan_rows, with_derived
from queries.pushdown import Read, count_sql, read_of, rows_sql, values_reads
from queries.pushdown_partials import Stat, collect, partials_sql, stats_of
from queries.source_names import SourceError, named_spec
from queries.table import Schema, schema_of

if TYPE_CHECKING:
    from queries.local import LocalData
    from queries.plan import Plan

Value = int | float | str
ARROW = {"int": pa.int64(), "float": pa.float64(), "category": pa.string()}
DTYPES = {"int": "Int64", "float": "Float64", "category": "string"}


@dataclass(frozen=True)
class Rows:
    """The rows a plan keeps at this site (`frame`: the columns it reads, by name) and the number
    of rows of the whole dataset before the WHERE (`table_rows`; 0 when the plan does not need it)."""

    frame: pd.DataFrame
    table_rows: int = 0


class Source(ABC):
    """One dataset of a site (see the module docstring)."""

    name: str = ""
    """The dataset's name, which a query's FROM uses ("" for an anonymous frame: any FROM)."""

    @abstractmethod
    def schema(self) -> Schema:
        """Column names and kinds (int, float, category; "empty" for a column with no value)."""

    @abstractmethod
    def rows(self, plan: Plan) -> Rows:
        """The plan's rows: WHERE applied, derived columns computed, every column read as the
        kind the parties agreed on (`plan.kinds`)."""

    @abstractmethod
    def partials(self, plan: Plan, stats: Sequence[Stat]) -> tuple[dict[Stat, np.ndarray], int]:
        """Each of `stats` per plan group, computed by the source's engine (one GROUP BY statement,
        `queries.pushdown_partials`), and the rows kept in the plan's groups."""

    def local(self, plan: Plan, frac: int = 40) -> LocalData:
        """This party's `LocalData` for a SELECT or CROSSTAB: its per-group aggregates, and its kept
        rows only when the plan needs rows (MEDIAN, QUANTILE, and a DP plan, which clamps each value:
        `queries.dp_release`); `frac`: the fixed point's fractional bits, for the exact sums."""
        from dataclasses import replace

        from queries.local import LocalData, group_rows

        values, kept = self.partials(plan, stats_of(plan, frac))
        if not plan.quantiles and plan.privacy is None:
            return LocalData(plan.groups, values, kept)
        rows = self.rows(plan)
        return replace(group_rows(plan, rows.frame, rows.table_rows), stats=values, kept=kept)

    @abstractmethod
    def values(self, stmt: ir.Statement, kinds: Mapping[str, str], columns: Sequence[str]) -> dict[str, tuple]:
        """Each grouping column's distinct non-NULL values, sorted: a table column's over all rows, a
        derived column's on the rows the WHERE keeps (`kinds`: every column's agreed kind)."""

    @abstractmethod
    def count_where(self, read: Read) -> int:
        """How many rows `read.where` keeps (a declared schema's checks, `queries.declared`)."""

    def describe(self) -> str:
        """Where the dataset lives, safe to show to anyone (no password)."""
        return f"dataset {self.name!r}" if self.name else "a table in memory"


class FrameSource(Source):
    """A pandas frame in memory, evaluated by DuckDB over Arrow (`queries.evaluate`)."""

    def __init__(self, frame: pd.DataFrame, name: str = "") -> None:
        self.frame = frame
        self.name = name

    def schema(self) -> Schema:
        return schema_of(self.frame)

    def rows(self, plan: Plan) -> Rows:
        return Rows(plan_rows(plan, self.frame), len(self.frame))

    def partials(self, plan: Plan, stats: Sequence[Stat]) -> tuple[dict[Stat, np.ndarray], int]:
        from queries.source_arrow import ArrowSource

        return ArrowSource.of(self.frame, read_of(plan).columns).partials(plan, stats)

    def values(self, stmt: ir.Statement, kinds: Mapping[str, str], columns: Sequence[str]) -> dict[str, tuple]:
        inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
        derived = derived_of(inner, dict(kinds), only=columns)
        frame = with_derived(self.frame, getattr(inner, "where", None), derived, kinds) if derived else self.frame
        return {c: _distinct(frame[c].dropna().unique()) for c in columns}

    def count_where(self, read: Read) -> int:
        from queries.evaluate import select_rows

        rows, _ = select_rows(self.frame, read.where, (), dict(read.columns))
        return len(rows)


class SqlSource(Source):
    """A source that answers by running SQL in its own engine: subclasses say how to run a
    statement (`run`), what the dataset is (`relation`) and its columns' kinds (`schema`)."""

    dialect = "duckdb"

    @property
    @abstractmethod
    def relation(self) -> str:
        """The dataset as a FROM item of the dialect: a quoted table name or `(query) AS alias`."""

    @abstractmethod
    def run(self, sql: str, types: Sequence[pa.DataType]) -> pa.Table:
        """The result of one statement, its columns of the given Arrow types."""

    def column(self, name: str, kind: str) -> str:
        """The SQL that reads column `name` as `kind` (`queries.pushdown.cast_column` by default)."""
        from queries.pushdown import cast_column

        return cast_column(self.dialect)(name, kind)

    def rows(self, plan: Plan) -> Rows:
        read = read_of(plan)
        table = self.run(rows_sql(read, self.relation, self.dialect, self.column), _types(read))
        names = [*read.keep, *(d[0] for d in read.derived)]
        kinds = [dict(read.columns)[c] for c in read.keep] + [d[2] for d in read.derived]
        if names:
            frame = pd.DataFrame({n: _pandas(table.column(i), k) for i, (n, k) in enumerate(zip(names, kinds))})
        else:
            frame = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
        return Rows(frame, self.count() if plan.quantiles else 0)

    def partials(self, plan: Plan, stats: Sequence[Stat]) -> tuple[dict[Stat, np.ndarray], int]:
        sql, types = partials_sql(read_of(plan), plan.group_columns, stats, dict(plan.kinds), self.relation,
                                  self.dialect, self.column)
        return collect(plan, self.run(sql, types), stats)

    def count(self) -> int:
        """The dataset's rows."""
        return int(self.run(count_sql(self.relation), [pa.int64()]).column(0)[0].as_py())

    def values(self, stmt: ir.Statement, kinds: Mapping[str, str], columns: Sequence[str]) -> dict[str, tuple]:
        out = {}
        for col, read in values_reads(stmt, dict(kinds), columns).items():
            sql = rows_sql(read, self.relation, self.dialect, self.column, distinct=True)
            out[col] = _distinct(self.run(sql, _types(read)).column(0).to_pylist())
        return out

    def count_where(self, read: Read) -> int:
        sql = f"SELECT COUNT(*) FROM ({rows_sql(read, self.relation, self.dialect, self.column)}) AS kept"
        return int(self.run(sql, [pa.int64()]).column(0)[0].as_py())


def _types(read: Read) -> list[pa.DataType]:
    kinds = dict(read.columns)
    return [ARROW[kinds[c]] for c in read.keep] + [ARROW[d[2]] for d in read.derived] or [pa.int64()]


def _pandas(column: pa.ChunkedArray, kind: str) -> pd.Series:
    if pa.types.is_null(column.type):
        return pd.Series(pd.array([pd.NA] * len(column), dtype=DTYPES[kind]))
    return pd.Series(pd.array(column.to_pandas(), dtype=DTYPES[kind]))


def _distinct(values: Any) -> tuple:
    plain = {v.item() if isinstance(v, np.generic) else v for v in values}
    return tuple(sorted(v for v in plain if v is not None and v is not pd.NA and v == v))


class Datasets:
    """A site's named datasets; a query's FROM picks one (`pick`), no FROM the default."""

    def __init__(self, sources: Mapping[str, Source], default: str | None = None) -> None:
        if default is not None and default not in sources:
            raise ValueError(f"the default dataset {default!r} is not one of the site's datasets")
        self.sources = dict(sources)
        self.default = default if default is not None else (next(iter(self.sources)) if len(sources) == 1 else None)

    @staticmethod
    def of(data: Source | Datasets) -> Datasets:
        return data if isinstance(data, Datasets) else Datasets({data.name: data}, data.name)

    def pick(self, stmt: ir.Statement) -> Source:
        """The dataset a statement reads: its FROM's, or the default; SourceError for a name this
        site does not have (before anything is read)."""
        inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
        assert not isinstance(inner, ir.Explain)
        name = inner.source
        if name is None:
            if self.default is None:
                raise SourceError("this site holds several datasets: name one with FROM")
            return self.sources[self.default]
        if name in self.sources:
            return self.sources[name]
        if self.default is not None and self.sources[self.default].name == "":
            return self.sources[self.default]  # an anonymous table in memory answers to any name
        raise SourceError(f"this site has no dataset {name!r}")


def open_source(spec: str | Path, name: str | None = None) -> Source:
    """A source from a file path (.csv, .parquet) or a URL (postgresql://user@host:port/db?table=T
    or ?query=SQL; duckdb:///path/db.duckdb?table=T); named `name`, else after the file's stem or
    the table (see `queries.source_duckdb`, `queries.source_postgres`); NAME=FILE_OR_URL names it
    NAME (`named_spec`)."""
    given, text = named_spec(str(spec))
    name = name or given
    if text.startswith(("postgresql://", "postgres://")):
        from queries.source_postgres import PostgresSource

        return PostgresSource.from_url(text, name)
    if text.startswith("duckdb:"):
        from queries.source_duckdb import DuckDBSource

        return DuckDBSource.from_url(text, name)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise SourceError(f"unsupported data source {scheme}:// (use a .csv or .parquet file, "
                          "postgresql://user@host:port/db?table=NAME or duckdb:///file.duckdb?table=NAME)")
    from queries.source_duckdb import DuckDBSource

    return DuckDBSource.file(Path(text), name)
