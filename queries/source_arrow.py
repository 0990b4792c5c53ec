"""A table in memory (a pandas frame's columns as Arrow) answered by embedded DuckDB.

`FrameSource` (tests, `run_in_process`) computes a plan's per-group aggregates with the same
statement as a file or database source (`queries.pushdown_partials`): the columns the plan
reads are handed as an Arrow table `t` to a cursor of its own of the process's in-memory DuckDB
database (`queries.evaluate.run_duckdb`), renamed c0, c1, ... (DuckDB's names are
case-insensitive, a frame's are not) and typed by the kinds the parties agreed on, with files
and network switched off. A failure while
evaluating is one QueryError naming its kind, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from queries.evaluate import arrow_columns, run_duckdb
from queries.pushdown import cast_column
from queries.sources import Rows, SqlSource
from queries.table import Schema

if TYPE_CHECKING:
    from queries.plan import Plan


class ArrowSource(SqlSource):
    """An Arrow table `t` run by DuckDB; `names` maps each column to its name in `t`."""

    dialect = "duckdb"

    def __init__(self, table: pa.Table, names: dict[str, str]) -> None:
        self._table = table
        self._names = names

    @staticmethod
    def of(frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> ArrowSource:
        """The columns (name, agreed kind) of `frame`, as the kinds agreed; QueryError for a column
        the frame lacks."""
        names, arrays = arrow_columns(frame, dict(columns))
        table = pa.table(arrays) if arrays else pa.table({"c": pa.nulls(len(frame))})
        return ArrowSource(table, names)

    @property
    def relation(self) -> str:
        return '"t"'

    def column(self, name: str, kind: str) -> str:
        return cast_column("duckdb")(self._names[name], kind)

    def run(self, sql: str, types: Sequence[pa.DataType]) -> pa.Table:
        table = run_duckdb(self._table, sql)
        return table.cast(pa.schema([pa.field(f.name, t) for f, t in zip(table.schema, types)]))

    def schema(self) -> Schema:
        raise NotImplementedError("an Arrow table in memory is read only through a plan")

    def rows(self, plan: Plan) -> Rows:
        raise NotImplementedError("an Arrow table in memory gives only a plan's partials")
