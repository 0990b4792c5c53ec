"""The `pushdown` suite: large sites whose local half runs in their own engine.

* "parquet 3 x 10M": three parties, each a Parquet file of 10,000,000 synthetic rows, asked
  `GROUPED` end to end (`pooled` row: the analyst's wall time per query over a running
  consortium), against DuckDB grouping the three files pooled in plaintext in the same run
  (`duckdb` row, its default threads). The error is the largest relative difference of
  Pooled's released values from DuckDB's.
* "postgresql local phase": a PostgreSQL site of 1,000,000 rows: the party's whole local phase
  for the same query (`Source.local`: connection, the pushed-down GROUP BY statement, reading
  its result; `pooled` row) against that statement alone on an open psycopg connection
  (`postgresql` row), as psql would run it; and the query end to end over three such sites.

The Parquet files are written by DuckDB's own SQL (`write_parquet`) once and cached in the
system's temporary directory (`DATA_DIR`, outside the checkout). The PostgreSQL rows need a
server: the libpq URL of a user that may create databases in POOLED_BENCH_PG or POOLED_TEST_PG
(`.ci/postgres.sh` starts a throwaway one); without it they are recorded as not measured.
`--quick`: 10,000 rows per site, a smoke run of every path.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.consortia import ConsortiumSession, guarded_tasks, party_names
from benchmarks.framework import BenchOptions, Row, Task, median_spread, timed_runs

GROUPED = "SELECT sex, smoking, COUNT(*), AVG(sbp), VAR(sbp) FROM cohort GROUP BY sex, smoking"
PLAIN = ("SELECT sex, smoking, COUNT(*), AVG(sbp), VAR_SAMP(sbp) FROM read_parquet({files}) "
         "GROUP BY sex, smoking ORDER BY sex, smoking")
PARQUET_ROWS = 10_000_000
PG_ROWS = 1_000_000
QUICK_ROWS = 10_000
DATA_DIR = Path(tempfile.gettempdir()) / "pooled-bench-data"
PG_ENV = ("POOLED_BENCH_PG", "POOLED_TEST_PG")
COHORT_SQL = """SELECT CASE WHEN r1 < 0.5 THEN 'F' ELSE 'M' END AS sex,
    CASE WHEN r2 < 0.55 THEN 'never' WHEN r2 < 0.8 THEN 'former' ELSE 'current' END AS smoking,
    CAST(30 + FLOOR(r3 * 60) AS BIGINT) AS age,
    CASE WHEN r4 < 0.01 THEN NULL
         ELSE FLOOR(10 * (125 + 0.3 * (r3 * 60 - 30) + 15 * (r1 + r2 + r5 - 1.5) * 2) + 0.5) / 10 END AS sbp
FROM (SELECT random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5 FROM {series}) AS g"""
"""A synthetic cohort in SQL (DuckDB's and PostgreSQL's alike): sex, smoking, age, sbp (1% NULL)."""


def _version() -> str:
    """A short hash of `COHORT_SQL`: a cached file made by another definition is not reused."""
    import hashlib

    return hashlib.sha256(COHORT_SQL.encode()).hexdigest()[:8]


def parquet_files(names: Sequence[str], rows: int) -> dict[str, Path]:
    """Each party's cohort as a Parquet file of `rows` rows, written by DuckDB once and cached."""
    import duckdb

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, name in enumerate(names):
        path = DATA_DIR / f"cohort-{_version()}-{rows}-{i}.parquet"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            con = duckdb.connect()
            try:
                con.execute(f"SELECT setseed({0.1 * (i + 1)})")
                sql = COHORT_SQL.format(series=f"range({rows})")
                con.execute(f"COPY ({sql}) TO '{tmp}' (FORMAT parquet)")
            finally:
                con.close()
            tmp.replace(path)
        files[name] = path
    return files


def _values(result: Any) -> dict[tuple, list[float]]:
    return {tuple(r[:2]): [float(v) for v in r[2:]] for r in result.rows}


def _relative_error(got: dict[tuple, list[float]], want: dict[tuple, list[float]]) -> float:
    worst = 0.0
    for key, values in want.items():
        for a, b in zip(got.get(key, [float("nan")] * len(values)), values):
            worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
    return worst


def parquet_rows(session: ConsortiumSession, files: dict[str, Path], rows: int, repeat: int) -> list[Row]:
    """The grouped query end to end over the consortium, and DuckDB over the pooled files."""
    import duckdb

    from parties.analyst import ask

    client, names = session.client(), session.names
    seconds, results = timed_runs(lambda: ask(client, names, GROUPED), repeat)
    listed = "[" + ", ".join(f"'{files[n]}'" for n in names) + "]"

    def plain() -> list[tuple]:
        con = duckdb.connect()
        try:
            return con.sql(PLAIN.format(files=listed)).fetchall()
        finally:
            con.close()

    plain_seconds, plain_results = timed_runs(plain, repeat)
    want = {tuple(r[:2]): [float(v) for v in r[2:]] for r in plain_results[-1]}
    error = _relative_error(_values(results[-1][0]), want)
    job = results[-1][2]
    mpc = [o.public["mpc_cost"] for o in job.outcomes.values()]
    median, spread = median_spread(seconds)
    base, base_spread = median_spread(plain_seconds)
    case = "parquet grouped stats"
    parties = len(names)
    return [
        Row("pushdown", case, "pooled", parties, rows, 0.0, median, spread, repeat,
            max(m["bytes_sent"] for m in mpc), max(m["messages_sent"] for m in mpc),
            max(m["rounds"] for m in mpc), max(m["dealer_bytes"] for m in mpc), error,
            {"what": "end to end: the analyst's wall time per query", "plaintext_seconds": base}),
        Row("pushdown", case, "duckdb", parties, rows, 0.0, base, base_spread, repeat,
            extra={"what": "DuckDB over the three files pooled, plaintext"}),
    ]


def _pg_server() -> str | None:
    return next((os.environ[k] for k in PG_ENV if os.environ.get(k)), None)


def pg_database(server: str, names: Sequence[str], rows: int) -> str:
    """A fresh database `pooled_bench` holding one table cohort_<name> of `rows` rows per party; its URL."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS pooled_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE pooled_bench")
    url = server.rsplit("/", 1)[0] + "/pooled_bench"
    with psycopg.connect(url, autocommit=True) as conn:
        for i, name in enumerate(names):
            conn.execute(f"SELECT setseed({0.1 * (i + 1)})")  # type: ignore[arg-type]
            sql = COHORT_SQL.format(series=f"generate_series(1, {rows})")
            conn.execute(f"CREATE TABLE cohort_{name} AS {sql}")  # type: ignore[arg-type]
            conn.execute(f"ANALYZE cohort_{name}")  # type: ignore[arg-type]
    return url


def pg_local_rows(url: str, name: str, rows: int, repeat: int) -> list[Row]:
    """One site's local phase (`Source.local`) against its pushed-down statement alone."""
    import psycopg

    from queries.engine import plan_query
    from queries.pushdown import read_of
    from queries.pushdown_partials import partials_sql, stats_of
    from queries.sources import open_source

    source = open_source(f"{url}?table=cohort_{name}", "cohort")
    domains = {"sex": ("F", "M"), "smoking": ("current", "former", "never")}
    plan = plan_query(GROUPED, source.schema(), domains, 5)
    stats = stats_of(plan, 40)
    sql, _ = partials_sql(read_of(plan), plan.group_columns, stats, dict(plan.kinds), source.relation,  # type: ignore[attr-defined]
                          "postgres", source.column)  # type: ignore[attr-defined]
    local_seconds, sql_seconds = [], []
    with psycopg.connect(url) as conn:
        def alone() -> int:
            with conn.cursor() as cur:
                cur.execute(sql)  # type: ignore[arg-type]
                return len(cur.fetchall())

        source.local(plan, 40), alone()  # warm-up: the table in the server's buffers
        for _ in range(repeat):  # interleaved, so that both see the same load
            local_seconds += timed_runs(lambda: source.local(plan, 40), 1, warmup=0)[0]
            sql_seconds += timed_runs(alone, 1, warmup=0)[0]
    local, local_spread = median_spread(local_seconds)
    base, base_spread = median_spread(sql_seconds)
    case = "postgresql local phase"
    return [
        Row("pushdown", case, "pooled", 1, rows, 0.0, local, local_spread, repeat,
            extra={"what": "Source.local: connect, the GROUP BY statement, its result decoded",
                   "sql_alone_seconds": base}),
        Row("pushdown", case, "postgresql", 1, rows, 0.0, base, base_spread, repeat,
            extra={"what": "the pushed-down statement alone on an open connection", "sql": sql}),
    ]


def pg_end_to_end(session: ConsortiumSession, rows: int, repeat: int) -> Row:
    from parties.analyst import ask

    client, names = session.client(), session.names
    seconds, results = timed_runs(lambda: ask(client, names, GROUPED), repeat)
    mpc = [o.public["mpc_cost"] for o in results[-1][2].outcomes.values()]
    median, spread = median_spread(seconds)
    return Row("pushdown", "postgresql grouped stats", "pooled", len(names), rows, 0.0, median, spread, repeat,
               max(m["bytes_sent"] for m in mpc), max(m["messages_sent"] for m in mpc),
               max(m["rounds"] for m in mpc), max(m["dealer_bytes"] for m in mpc),
               extra={"what": "end to end over three PostgreSQL sites"})


def _not_measured(case: str, rows: int, why: str) -> list[Row]:
    return [Row("pushdown", case, "pooled", 1, rows, extra={"failed": True, "not_measured": why})]


def tasks(options: BenchOptions) -> list[Task]:
    """The Parquet consortium (files written before it starts), then the PostgreSQL sites."""
    repeat = 1 if options.quick else options.repeat
    names = party_names(3)
    parquet = QUICK_ROWS if options.quick else PARQUET_ROWS
    pg_rows = QUICK_ROWS if options.quick else PG_ROWS
    files: dict[str, Path] = {}

    def data() -> dict[str, Any]:
        files.update(parquet_files(names, parquet))
        return {n: f"cohort={p}" for n, p in files.items()}

    session = ConsortiumSession(names, data=data)
    out = guarded_tasks(session.close, [Task(f"pushdown parquet {parquet:,} x 3",
                                              lambda: parquet_rows(session, files, parquet, repeat))])
    server = _pg_server()
    if server is None:
        why = f"no PostgreSQL server: set {' or '.join(PG_ENV)}"
        return out + [Task("pushdown postgresql", lambda: _not_measured("postgresql local phase", pg_rows, why))]
    state: dict[str, str] = {}

    def pg_data() -> dict[str, Any]:
        return {n: f"cohort={state['url']}?table=cohort_{n}" for n in names}

    pg_session = ConsortiumSession(names, data=pg_data)

    def local() -> list[Row]:
        started = time.perf_counter()
        state["url"] = pg_database(server, names, pg_rows)
        rows = pg_local_rows(state["url"], names[0], pg_rows, repeat)
        rows[0].extra["load_seconds"] = time.perf_counter() - started
        return rows

    return out + guarded_tasks(pg_session.close, [
        Task(f"pushdown postgresql local {pg_rows:,}", local),
        Task(f"pushdown postgresql {pg_rows:,} x 3", lambda: [pg_end_to_end(pg_session, pg_rows, repeat)]),
    ])
