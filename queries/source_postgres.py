"""Datasets in a PostgreSQL database: a table, a view, or a site's own query, read with psycopg 3.

    postgresql://USER@HOST:PORT/DATABASE?table=NAME          (NAME may be SCHEMA.NAME)
    postgresql://USER@HOST:PORT/DATABASE?query=SELECT...     (URL-encoded; the site's own SQL)

Other query parameters are libpq's (sslmode, sslrootcert, passfile, connect_timeout, ...). The
password is best left out of the URL: libpq reads PGPASSWORD, PGPASSFILE or ~/.pgpass.

Each call opens one read-only transaction (`read_only`), runs one statement and closes. The
statement is the plan's pushed down into PostgreSQL's dialect (`queries.pushdown`,
`queries.pushdown_partials`), so the database filters the rows, computes the derived columns
and, for a SELECT or CROSSTAB, the per-group partials; the result streams back as CSV from
`COPY (...) TO STDOUT` (allowed to a user with SELECT only, in a read-only transaction),
read batch by batch by Arrow's CSV reader, so no row is handled in Python. The session prints dates as ISO and doubles
exactly (`DateStyle`, `extra_float_digits`), whatever the server's defaults.

Column kinds: smallint, integer, bigint and boolean are `int`; real, double precision and
numeric are `float`; everything else (text, varchar, date, timestamp, ...) is `category`,
read as text compared byte by byte (COLLATE "C"). A boolean is read through INTEGER
(PostgreSQL has no cast from boolean to bigint).

Every error names the dataset, the host, port, database and user, and never the password;
an error while evaluating names the kind of failure (by SQLSTATE), never a value.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.csv as pacsv

from queries.errors import QueryError
from queries.pushdown import TYPES, cast_column, quote
from queries.sources import SourceError, SqlSource
from queries.table import Schema

OIDS = {16: "int", 20: "int", 21: "int", 23: "int", 700: "float", 701: "float", 1700: "float"}
"""PostgreSQL type OIDs -> kinds (bool, int8, int2, int4; float4, float8, numeric); others are category."""
BOOL_OID = 16
_DATA_ERRORS = {
    "22P02": "a value could not be converted to the type asked (a CAST)",
    "22007": "a value could not be converted to the type asked (a CAST)",
    "22003": "a value is out of range (an integer overflow or an impossible date)",
    "22008": "a value is out of range (an integer overflow or an impossible date)",
}


def _convert_options(names: Sequence[str], types: Sequence[pa.DataType]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(column_types=dict(zip(names, types)), null_values=[""], strings_can_be_null=True,
                                quoted_strings_can_be_null=False)


class _Stream(io.RawIOBase):
    """The blocks of a COPY ... TO STDOUT as a readable binary stream (what Arrow's CSV reader reads)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._rest = bytes(block)
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _copy_sql(sql: str, names: Sequence[str]) -> str:
    """`sql`'s result as CSV from COPY ... TO STDOUT: NULL an empty field, text quoted (so an empty
    text is "" and stays apart from NULL)."""
    columns = ", ".join(names)
    return f"COPY (SELECT {columns} FROM ({sql}) AS q({columns})) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"


class PostgresSource(SqlSource):
    """A table, view or query of a PostgreSQL database (see the module docstring)."""

    dialect = "postgres"

    def __init__(self, conninfo: str, name: str, relation: str, what: str, *, host: str, port: int,
                 database: str, user: str, password: str | None = None) -> None:
        self.name = name
        self._conninfo = conninfo
        self._relation = relation
        self._what = what
        self.host, self.port, self.database, self.user = host, port, database, user
        self._password = password  # only to scrub it from a driver's message
        self._booleans: frozenset[str] | None = None

    @staticmethod
    def from_url(url: str, name: str | None = None, *, table: str | None = None,
                 query: str | None = None) -> PostgresSource:
        """The dataset of a URL (?table= or ?query=, or `table` / `query` given here)."""
        parts = urlsplit(url)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        table, query = params.pop("table", None) or table, params.pop("query", None) or query
        host = parts.hostname or "localhost"
        try:
            port = parts.port or 5432
        except ValueError:
            raise SourceError(f"postgresql://{host}: the port is not a number") from None
        database = unquote(parts.path.lstrip("/")) or (parts.username or "")
        user = unquote(parts.username or "")
        safe = f"postgresql://{user}@{host}:{port}/{database}"
        if (table is None) == (query is None):
            raise SourceError(f"{safe}: name one table (?table=NAME) or one query (?query=SQL)")
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params, quote_via=quote_plus), ""))
        if table is not None:
            relation = ".".join(quote(part, "postgres") for part in table.split(".", 1))
            what, default = f"{safe}, table {table}", table.rsplit(".", 1)[-1]
        else:
            relation, what, default = f"({query}) AS {quote('dataset', 'postgres')}", f"{safe}, a query", database
        password = unquote(parts.password) if parts.password else None
        return PostgresSource(conninfo, name or default, relation, what, host=host, port=port, database=database,
                              user=user, password=password)

    @property
    def relation(self) -> str:
        return self._relation

    def describe(self) -> str:
        return f"dataset {self.name!r} ({self._what})"

    # -- connection ------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        line = " ".join(text.split())[:300]
        return line.replace(self._password, "***") if self._password else line

    def _connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        try:
            conn = psycopg.connect(self._conninfo, connect_timeout=10)
        except psycopg.Error as exc:
            raise SourceError(f"{self.describe()}: cannot connect to the database at {self.host}:{self.port} "
                              f"as {self.user!r}: {self._scrub(str(exc))}") from None
        conn.read_only = True
        with conn.cursor() as cur:  # text as the other sources print it: ISO dates, doubles to the last bit
            cur.execute("SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3")
        return conn

    def _failure(self, exc: Exception) -> Exception:
        state = str(getattr(exc, "sqlstate", "") or "")
        if state.startswith("42") or state.startswith("3F"):  # undefined table/column, no privilege, syntax
            name = type(exc).__name__
            return SourceError(f"{self.describe()} cannot be read ({name}, SQLSTATE {state})")
        if state.startswith("22"):
            reason = _DATA_ERRORS.get(state, "an expression received an input it cannot take")
        else:
            reason = "an expression could not be evaluated"
        return QueryError(f"evaluating the query on this party's rows failed: {reason}")

    def run(self, sql: str, types: Sequence[pa.DataType]) -> pa.Table:
        """One statement's result, streamed by COPY ... TO STDOUT in CSV and read by Arrow's CSV
        reader batch by batch: no row is handled in Python."""
        import psycopg

        names = [f"r{i}" for i in range(len(types))]
        schema = pa.schema([pa.field(n, t) for n, t in zip(names, types)])
        batches: list[pa.RecordBatch] = []
        with self._connect() as conn:
            try:
                with conn.cursor() as cur, cur.copy(_copy_sql(sql, names)) as copy:  # type: ignore[arg-type]
                    blocks = iter(copy)
                    first = next(blocks, None)
                    if first is not None:
                        stream = io.BufferedReader(_Stream(itertools.chain([first], blocks)), 1 << 20)
                        reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(column_names=names),
                                                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                                                convert_options=_convert_options(names, types))
                        batches = list(reader)
            except psycopg.Error as exc:
                raise self._failure(exc) from None
            conn.rollback()
        return pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()

    # -- schema ----------------------------------------------------------------------------------
    def schema(self) -> Schema:
        import psycopg

        with self._connect() as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SELECT * FROM {self.relation} LIMIT 0")  # type: ignore[arg-type]
                    described = [(d.name, d.type_code) for d in cur.description or ()]
            except psycopg.Error as exc:
                raise self._failure(exc) from None
            conn.rollback()
        self._booleans = frozenset(n for n, oid in described if oid == BOOL_OID)
        return Schema(tuple((n, OIDS.get(oid, "category")) for n, oid in described))

    def column(self, name: str, kind: str) -> str:
        if self._booleans is None:
            self.schema()
        if name in (self._booleans or ()):
            as_int = f"CAST({quote(name, 'postgres')} AS INTEGER)"
            return f"CAST({as_int} AS {TYPES['postgres'][kind]})" + (' COLLATE "C"' if kind == "category" else "")
        return cast_column(self.dialect)(name, kind)
