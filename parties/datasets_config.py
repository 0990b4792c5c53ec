"""A node's datasets: the `[database]` and `[datasets]` tables of its configuration, and the data sources they make.

    [database]                              # optional: where `table` and `query` datasets live
    url = "postgresql://pooled_reader@db.hospital-a.org:5432/clinic"
    [datasets.cohort]                       # FROM cohort
    table = "public.cohort"                 # a table or a view of the database
    [datasets.diabetes]
    query = \"\"\"SELECT p.person_id, ... FROM person p WHERE EXISTS (SELECT 1 FROM condition_occurrence c ...)\"\"\"
    [datasets.local_view]                   # the site's own SQL over its own files, in embedded DuckDB
    query = "SELECT * FROM person"
    files = "data/omop"                     # each CSV or Parquet file there is a table: person.csv is `person`
    [datasets.registry]
    file = "data/registry.parquet"          # a CSV or Parquet file (relative to this file)
    [datasets.registry.schema]              # optional, as [data.schema]; [datasets.NAME.domains] too
    age = "int"

Each dataset is exactly one of `file`, `table` or `query`; a `table` or `query` reads the
`[database]` (PostgreSQL, or `duckdb:///path/file.duckdb`), or the dataset's own `database`
URL; a `query` with `files` (or without any database) runs in embedded DuckDB over the CSV
and Parquet files of that directory (default: this configuration's directory;
`queries.source_duckdb.DuckDBSource.query`). The one-file `[data] path` is still a dataset,
named after the file's stem, and the default for a query without FROM; without it, a site
with one dataset makes that one the default. Put no password in a URL kept in a file: libpq
reads PGPASSWORD, PGPASSFILE or ~/.pgpass (docs/deployment.md).

Nothing here connects to a database: `datasets_of` only builds the sources, which connect
when a query reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parties.config import DataSettings
    from queries.sources import Datasets

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
URL_SCHEMES = ("postgresql://", "postgres://", "duckdb:")


@dataclass(frozen=True)
class DatasetSettings:
    """One `[datasets.NAME]` entry: exactly one of `file`, `table`, `query`."""

    name: str
    file: Path | None = None
    table: str | None = None
    query: str | None = None
    database: str | None = None
    """The database URL a `table` or `query` reads (the dataset's own, else `[database] url`)."""
    directory: Path = Path(".")
    """Where a `query` without a database reads its files (`files`, else the configuration's directory)."""
    schema: Mapping[str, str] | None = None
    domains: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))


def read_datasets(r: Any, check_files: bool, schema_of: Any) -> tuple[DatasetSettings, ...]:
    """The `[datasets]` of a node's file, read through the config reader `r` (`parties.config`);
    `schema_of(r, key)` reads a dataset's `schema`, `domains` and bounds as `[data.schema]`/`[data.domains]`."""
    database = r.table("database", required=False)
    r.only(database, "database", ("url",))
    default_url = _url(r, database, "database", "url") if "url" in database else None
    out = []
    for name, entry in r.table("datasets", required=False).items():
        where = f"datasets.{name}"
        if not NAME.match(name):
            raise r.error(where, "a dataset's name is a plain identifier (letters, digits, _), as FROM names it")
        if not isinstance(entry, dict):
            raise r.error(where, f"must be a table, got {type(entry).__name__}")
        r.only(entry, where, ("file", "table", "query", "database", "files", "schema", "domains"))
        given = [k for k in ("file", "table", "query") if k in entry]
        if len(given) != 1:
            raise r.error(where, "give exactly one of file, table or query")
        url = _url(r, entry, where, "database") if "database" in entry else default_url
        if "table" in entry and url is None:
            raise r.error(f"{where}.table", "a table lives in a database: give [database] url or this dataset's "
                          "database")
        if "file" in entry and "database" in entry:
            raise r.error(f"{where}.database", "a file dataset reads no database")
        text = {k: r.value(entry, where, k, str, check=lambda v: None if v.strip() else "must not be empty")
                for k in ("table", "query") if k in entry}
        file = r.path_value(entry, where, "file", check_files) if "file" in entry else None
        directory = r.base
        if "files" in entry:  # the site's own SQL over these files, whatever [database] says
            if "query" not in entry or "database" in entry:
                raise r.error(f"{where}.files", "only a query without a database reads a directory of files")
            url = None
            directory = r.path_value(entry, where, "files", must_exist=False)
            if check_files and not directory.is_dir():
                raise r.error(f"{where}.files", f"no such directory: {directory}")
        schema, domains, bounds = schema_of(r, where)
        out.append(DatasetSettings(name, file, text.get("table"), text.get("query"),
                                   url if "file" not in entry else None, directory, schema, domains, bounds))
    return tuple(out)


def _url(r: Any, table: Mapping[str, Any], where: str, key: str) -> str:
    def problem(v: str) -> str | None:
        if v.startswith(URL_SCHEMES):
            return None
        return "must be a postgresql://USER@HOST:PORT/DATABASE or duckdb:///FILE.duckdb URL"

    return str(r.value(table, where, key, str, check=problem))


def datasets_of(datasets: tuple[DatasetSettings, ...], data: DataSettings | None) -> Datasets:
    """The data sources of a node's `[data]` and `[datasets]` (`queries.sources.Datasets`)."""
    from queries.declared import Declared
    from queries.sources import Datasets, Source, open_source

    sources: dict[str, Source] = {}
    default = None
    if data is not None:
        source = open_source(data.path)
        default = source.name
        declared = data.schema or data.domains or data.bounds
        sources[source.name] = Declared(source, data.schema, data.domains, data.bounds) if declared else source
    for d in datasets:
        if d.name in sources:
            raise ValueError(f"two datasets are named {d.name!r} ([data] path's is named after its file)")
        source = _source(d)
        declared = d.schema or d.domains or d.bounds
        sources[d.name] = Declared(source, d.schema, d.domains, d.bounds) if declared else source
    return Datasets(sources, default)


def _source(d: DatasetSettings) -> Any:
    from queries.source_duckdb import DuckDBSource
    from queries.source_postgres import PostgresSource

    if d.file is not None:
        return DuckDBSource.file(d.file, d.name)
    if d.database is None:
        assert d.query is not None
        return DuckDBSource.query(d.query, d.name, d.directory)
    if d.database.startswith("duckdb:"):
        raw = d.database.split(":", 1)[1]
        path = Path(raw[2:] if raw.startswith("//") else raw)  # duckdb:///absolute or duckdb:relative
        path = path if path.is_absolute() else d.directory / path
        if d.table is not None:
            return DuckDBSource.table(path, d.table, d.name)
        assert d.query is not None
        return DuckDBSource.query(d.query, d.name, d.directory, database=path)
    return PostgresSource.from_url(d.database, d.name, table=d.table, query=d.query)
