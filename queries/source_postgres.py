"""Datasets in a PostgreSQL database: a table, a view, or a site's own query, read with psycopg 3.

    postgresql://USER@HOST:PORT/DATABASE?table=NAME          (NAME may be SCHEMA.NAME)
    postgresql://USER@HOST:PORT/DATABASE?query=SELECT...     (URL-encoded; the site's own SQL)

Other query parameters are libpq's (sslmode, sslrootcert, passfile, connect_timeout, ...). The
password is best left out of the URL: libpq reads PGPASSWORD, PGPASSFILE or ~/.pgpass.

Each call opens one read-only transaction (`read_only`), runs one statement and closes. The
statement is the plan's pushed down into PostgreSQL's dialect (`queries.pushdown`), so the
database filters the rows and computes the derived columns; the kept rows come back as a
few values of CSV text built by the server (`_as_csv`: one per 65,536 rows), parsed by Arrow's
CSV reader, so no row is handled in Python. The session prints dates as ISO and doubles
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
from collections.abc import Sequence
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


CHUNK_ROWS = 65536
"""Rows per text value of `_as_csv`'s result (a PostgreSQL text value holds at most 1 GB)."""


def _as_csv(sql: str, names: Sequence[str], types: Sequence[pa.DataType]) -> str:
    """`sql`'s result as a few rows of CSV text, each holding up to CHUNK_ROWS rows: NULL an empty
    field, text quoted. Built by the server and parsed by Arrow, so no row is handled in Python."""
    fields = []
    for name, t in zip(names, types):
        if pa.types.is_string(t):
            fields.append(f"COALESCE('\"' || replace({name}, '\"', '\"\"') || '\"', '')")
        else:
            fields.append(f"COALESCE(CAST({name} AS TEXT), '')")
    line = " || ',' || ".join(fields)
    return (f"SELECT string_agg(line, E'\\n') FROM (SELECT {line} AS line, (row_number() OVER ()) / {CHUNK_ROWS} "
            f"AS chunk FROM ({sql}) AS q({', '.join(names)})) AS lines GROUP BY chunk")


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
        import psycopg

        names = [f"r{i}" for i in range(len(types))]
        with self._connect() as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute(_as_csv(sql, names, types))  # type: ignore[arg-type]
                    chunks = [str(row[0]) for row in cur.fetchall()]
            except psycopg.Error as exc:
                raise self._failure(exc) from None
            conn.rollback()
        if not chunks:
            return pa.table({n: pa.array([], type=t) for n, t in zip(names, types)})
        return pacsv.read_csv(
            io.BytesIO("\n".join(chunks).encode()),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types=dict(zip(names, types)), null_values=[""],
                                                 strings_can_be_null=True, quoted_strings_can_be_null=False),
        )

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
