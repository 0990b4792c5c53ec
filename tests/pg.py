"""A real PostgreSQL server for the tests of PostgreSQL data sources.

The `postgres` fixture (session-wide) uses the server named by POOLED_TEST_PG (a libpq URL of
a user that may create databases, e.g. postgresql://postgres@127.0.0.1:PORT/postgres), which
.ci/run sets after starting a throwaway cluster (.ci/postgres.sh); else it starts its own
throwaway cluster the same way, if PostgreSQL's server binaries are installed (initdb in
/usr/lib/postgresql/*/bin or on PATH): in a temporary directory, as the postgres user when
run as root (initdb refuses root), on a free port of 127.0.0.1, stopped by its pg_ctl and
removed at the end. Without either, the tests that use it skip with the reason — except
under CI=true, where they fail: a CI run must not pass by skipping them.

`pg_db` gives each test a fresh database (`PgDatabase`): `load(frame, table)` writes a pandas
frame into a table, `url(table)` is the dataset's URL, `execute(sql)` runs SQL as the owner.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ENV = "POOLED_TEST_PG"
TYPES = {"int": "BIGINT", "float": "DOUBLE PRECISION", "category": "TEXT"}


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory (trust authentication on 127.0.0.1)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pooled-pg-"))
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        data = self.root / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C.UTF-8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A libpq URL of a PostgreSQL server's superuser (see the module docstring)."""
    given = os.environ.get(ENV)
    if given:
        yield given
        return
    bindir = _bindir()
    if bindir is None:
        _unavailable(f"no PostgreSQL server binaries (initdb) and no {ENV}")
    assert bindir is not None
    cluster = Cluster(bindir)
    try:
        url = cluster.start()
    except (OSError, subprocess.SubprocessError) as exc:
        cluster.stop()
        _unavailable(f"a throwaway PostgreSQL cluster did not start: {exc}")
    try:
        yield url
    finally:
        cluster.stop()


class PgDatabase:
    """A fresh database on the test server."""

    def __init__(self, server: str, name: str) -> None:
        self.server = server
        self.name = name
        self.base = server.rsplit("/", 1)[0] + "/" + name

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.base, autocommit=True)

    def execute(self, sql: str) -> None:
        with self.connect() as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def load(self, frame: pd.DataFrame, table: str, kinds: dict[str, str] | None = None) -> str:
        """Write `frame` into a new table (columns typed by `kinds`, else by the frame's kinds); its URL."""
        from queries.table import schema_of

        kinds = kinds or {c: (k if k != "empty" else "float") for c, k in schema_of(frame).columns}
        columns = ", ".join(f'"{c}" {TYPES.get(kinds[c], kinds[c])}' for c in frame.columns)
        with self.connect() as conn:
            conn.execute(f'CREATE TABLE "{table}" ({columns})')  # type: ignore[arg-type]
            names = ", ".join(f'"{c}"' for c in frame.columns)
            with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:  # type: ignore[arg-type]
                for row in frame.astype(object).itertuples(index=False):
                    copy.write_row([None if v is None or v is pd.NA or v != v else v for v in row])
        return self.url(table)

    def url(self, table: str | None = None, user: str = "postgres", password: str | None = None) -> str:
        auth = user + (f":{password}" if password is not None else "")
        host = self.server.split("@", 1)[1].rsplit("/", 1)[0]
        return f"postgresql://{auth}@{host}/{self.name}" + (f"?table={table}" if table else "")


@pytest.fixture
def pg_db(postgres: str) -> Iterator[PgDatabase]:
    """A fresh database for one test, dropped after it."""
    import psycopg

    name = f"pooled_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield PgDatabase(postgres, name)
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
