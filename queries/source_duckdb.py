"""Datasets read by embedded DuckDB: a CSV or Parquet file, a DuckDB database's table, or a
site's own SQL over its files.

Each statement runs on a cursor of the dataset's own in-memory DuckDB database, opened on first
use (opening one costs ~20 ms of CPU, a cursor well under 1), that can read only the dataset's
own file (`allowed_paths`), with every other file and the network switched off
(`enable_external_access`) and no extension loaded. A cursor holds no table a statement made,
and the file is read anew by every statement (no file cache). A database file is opened
read-only for each statement and closed after it (held open, its lock would keep the site's
own writers out). A site's own SQL over its files (`query`, written by the site, never by an
analyst) reads the CSV and Parquet files of its directory as tables named after their stems
(person.csv is `person`), and the files it names, relative to that directory
(`file_search_path`). The analyst's query never reaches DuckDB as text: what runs around
the dataset is printed from the checked statement (`queries.pushdown`), whose grammar has no
table functions, so it cannot name a file. The file is read by DuckDB's own readers
(`read_csv(..., header = true)`, its column types sniffed from the first rows; `read_parquet`),
never row by row in Python, and only the columns and rows the plan needs reach pandas. A CSV's
schema is read with a count of every column's values, which reads every row: a later row that
does not fit the sniffed types fails there, as one error naming the file and not the value.

Column kinds: DuckDB's integer and boolean types are `int`, FLOAT, DOUBLE and DECIMAL are
`float`, everything else (VARCHAR, DATE, TIMESTAMP, ...) is `category`, read as text (a date
reads as 'YYYY-MM-DD'; `CAST(column AS DATE)` in a query makes it a date again). A CSV
column without a single value is "empty" (it agrees with any kind, as a table read by pandas).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb
import pyarrow as pa

from queries.evaluate import _CONFIG, evaluation_failure
from queries.pushdown import quote
from queries.sources import SourceError, SqlSource
from queries.table import Schema

INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "UHUGEINT", "BOOLEAN")
FLOATS = ("FLOAT", "DOUBLE", "REAL", "DECIMAL")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def kind_of(duck_type: str) -> str:
    """The Pooled kind of a DuckDB column type."""
    base = duck_type.upper().split("(", 1)[0].strip()
    if base in INTEGERS:
        return "int"
    if base in FLOATS:
        return "float"
    return "empty" if base == "NULL" else "category"


_UNREADABLE = ("IOException", "PermissionException", "CatalogException", "BinderException", "ParserException")


def _kind(exc: duckdb.Error) -> str:
    """What went wrong, by the exception's kind only (DuckDB's messages may quote a file's values)."""
    words = type(exc).__name__.removesuffix("Exception")
    return {"IO": "the file cannot be opened or parsed", "InvalidInput": "the file cannot be parsed",
            "Catalog": "no such table or column", "Binder": "no such table or column",
            "Permission": "access refused", "Parser": "its SQL does not parse",
            "Conversion": "a row does not fit the column types sniffed from the file's first rows"}.get(
                words, f"{words} error")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _reader(path: Path) -> str | None:
    """DuckDB's reader of a CSV or Parquet file (None for another kind of file)."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind == "csv":
        return f"read_csv({_literal(str(path))}, header = true)"
    return f"read_parquet({_literal(str(path))})" if kind == "parquet" else None


def _stamp(path: Path) -> tuple[int, int]:
    """A file's (modification time in ns, size): what tells a changed file from the one read before."""
    found = path.stat()
    return found.st_mtime_ns, found.st_size


class DuckDBSource(SqlSource):
    """A dataset that embedded DuckDB reads: a file, a database's table, or a query over files."""

    dialect = "duckdb"

    def __init__(self, name: str, relation: str, where: str, *, database: Path | None = None,
                 files: Sequence[Path] = (), directory: Path | None = None, sniffed: bool = False) -> None:
        self.name = name
        self._relation = relation
        self._where = where  # what `describe` says (a path, never anything secret)
        self._database = database
        self._files = tuple(files)
        self._directory = directory
        self._sniffed = sniffed  # a CSV: kinds are guessed from the text, so a column with no value is "empty"
        self._known: tuple[tuple[tuple[int, int], ...], Schema] | None = None  # the files' (mtime, size), schema
        self._kept: tuple[tuple[object, ...], duckdb.DuckDBPyConnection] | None = None  # views' files, database
        self._lock = threading.Lock()  # a connection is one thread's: cursors are taken under this lock

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def file(path: Path, name: str | None = None) -> DuckDBSource:
        """A CSV or Parquet file, named after its stem unless `name` is given."""
        p = path.expanduser().resolve()
        kind = SUFFIXES.get(p.suffix.lower())
        if kind is None:
            raise SourceError(f"unsupported data file type {p.suffix!r} (use .csv or .parquet)")
        relation = _reader(p)
        assert relation is not None
        return DuckDBSource(name or p.stem, relation, str(p), files=(p,), sniffed=kind == "csv")

    @staticmethod
    def table(database: Path, table: str, name: str | None = None) -> DuckDBSource:
        """A table or view of a DuckDB database file (opened read-only)."""
        p = database.expanduser().resolve()
        relation = ".".join(quote(part) for part in table.split(".", 1))
        return DuckDBSource(name or table.rsplit(".", 1)[-1], relation, f"{p} table {table}", database=p)

    @staticmethod
    def query(sql: str, name: str, directory: Path, database: Path | None = None) -> DuckDBSource:
        """A site's own SQL (DuckDB's dialect): over the files in `directory` (each CSV or Parquet
        file there is a table named after its stem: person.csv is `person`; other relative paths
        are read from there too), or over a DuckDB database's tables."""
        where = f"{database} (a query)" if database is not None else f"a query over files in {directory}"
        return DuckDBSource(name, f"({sql}) AS {quote('dataset')}", where,
                            database=database.expanduser().resolve() if database is not None else None,
                            directory=directory.resolve() if database is None else None)

    @staticmethod
    def from_url(url: str, name: str | None = None) -> DuckDBSource:
        """duckdb:///path/to/file.duckdb?table=NAME (or ?query=SQL, URL-encoded)."""
        parts = urlsplit(url)
        path = Path(unquote(parts.netloc + parts.path))
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if "table" in params:
            return DuckDBSource.table(path, params["table"], name)
        if "query" in params:
            return DuckDBSource.query(params["query"], name or path.stem, path.parent, database=path)
        raise SourceError(f"a duckdb: URL names its table (?table=NAME) or query (?query=SQL): {url}")

    # -- running ---------------------------------------------------------------------------------
    @property
    def relation(self) -> str:
        return self._relation

    def describe(self) -> str:
        return f"dataset {self.name!r} ({self._where})"

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one statement (the caller closes it): a cursor of the kept
        database, or for a database file a fresh read-only connection."""
        if self._database is not None and not self._database.is_file():
            raise SourceError(f"{self.describe()}: no such database file")
        for f in self._files:
            if not f.is_file():
                raise SourceError(f"{self.describe()}: no such file")
        if self._database is not None:
            return self._open(())
        views = self._views()
        with self._lock:
            if self._kept is None or self._kept[0] != views:  # a file came, went or changed: views anew
                self._kept = (views, self._open([name for name, _ in views]))  # (a cursor in use keeps the old)
            return self._kept[1].cursor()

    def _views(self) -> tuple[tuple[str, tuple[int, int]], ...]:
        """The files of the directory a site's SQL reads as tables (their views): name, (mtime, size)."""
        if self._directory is None:
            return ()
        found = [p for p in sorted(self._directory.iterdir()) if _reader(p) is not None and NAME.match(p.stem)]
        return tuple((p.name, _stamp(p)) for p in found)

    def _open(self, views: Sequence[str]) -> duckdb.DuckDBPyConnection:
        """A new database with the dataset's settings (global, so that every cursor has them) and a
        view over each of `views`, files of the directory."""
        config = {k: v for k, v in _CONFIG.items() if k != "enable_external_access"}  # switched off below
        config["enable_external_file_cache"] = False  # every statement reads the file as it is now
        con = (duckdb.connect(str(self._database), read_only=True, config=config) if self._database
               else duckdb.connect(config=config))
        if self._files:
            con.execute(f"SET allowed_paths = [{', '.join(_literal(str(f)) for f in self._files)}]")
        if self._directory is not None:  # the site's own SQL names its files (DuckDB checks access before
            con.execute(f"SET GLOBAL file_search_path = {_literal(str(self._directory))}")  # resolving a name)
            for name in views:
                path = self._directory / name
                con.execute(f"CREATE VIEW {quote(path.stem)} AS SELECT * FROM {_reader(path)}")
        else:
            con.execute("SET enable_external_access = false")
        con.execute("SET GLOBAL error_on_division_by_zero = false")
        return con

    def run(self, sql: str, types: Sequence[pa.DataType]) -> pa.Table:
        con = self._connect()
        try:
            table = con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise self._error(exc) from None
        finally:
            con.close()
        return table.cast(pa.schema([pa.field(f.name, t) for f, t in zip(table.schema, types)]))

    def _error(self, exc: duckdb.Error) -> Exception:
        kind = type(exc).__name__
        if kind in _UNREADABLE:
            return SourceError(f"{self.describe()} cannot be read ({_kind(exc)})")
        return evaluation_failure(exc)

    def schema(self) -> Schema:
        """The columns and kinds; for a file, read again only when the file changed (its time or size)."""
        stamp = tuple(_stamp(f) for f in self._files if f.is_file())
        known = self._known
        if self._files and known is not None and known[0] == stamp:
            return known[1]
        found = self._read_schema()
        self._known = (stamp, found)
        return found

    def _read_schema(self) -> Schema:
        con = self._connect()
        try:
            described = con.sql(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()
            columns = [(str(row[0]), kind_of(str(row[1]))) for row in described]
            if self._sniffed and columns:
                counts = con.execute("SELECT " + ", ".join(f"COUNT({quote(c)})" for c, _ in columns)
                                 + f" FROM {self.relation}").fetchone()
                columns = [(c, k if n else "empty") for (c, k), n in zip(columns, counts or ())]
        except duckdb.Error as exc:  # its text may quote the file's content: only its kind is told
            raise SourceError(f"{self.describe()} cannot be read ({_kind(exc)})") from None
        finally:
            con.close()
        return Schema(tuple(columns))
