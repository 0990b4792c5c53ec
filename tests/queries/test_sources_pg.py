"""PostgreSQL sites on a real server (tests/pg.py): the same answers as CSV and Parquet sites in one
consortium, the same values as DuckDB row by row, only SELECT needed, and errors that name the host and
never the password."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from queries.engine import plan_query, run_in_process
from queries.errors import QueryError
from queries.parser import parse
from queries.source_postgres import PostgresSource
from queries.sources import SourceError, open_source
from tests.parties.deployment import run_here
from tests.pg import PgDatabase
from tests.queries.test_sources import MODELS
from tests.queries.test_sql_pooled import _site, assert_matches, reference

pytestmark = pytest.mark.xdist_group("postgres")  # one worker, so one PostgreSQL cluster (`tests.pg`)

QUERIES = [
    "SELECT sex, COUNT(*) AS n, AVG(bmi) AS m, STDDEV(weight) AS sd FROM cohort WHERE age >= 40 GROUP BY sex",
    "SELECT CASE WHEN age >= 55 THEN 'older' ELSE 'younger' END AS band, COUNT(*) AS n, "
    "AVG(weight / (height * height)) AS b FROM cohort WHERE name IS NOT NULL AND name NOT LIKE 'c%' "
    "AND CAST(admitted AS DATE) >= DATE '2020-03-01' GROUP BY band",
    "SELECT EXTRACT(MONTH FROM CAST(admitted AS DATE)) AS month, COUNT(*) AS n, SUM(visits) AS v FROM cohort "
    "WHERE CAST(admitted AS DATE) + INTERVAL 30 DAY < TIMESTAMP '2020-12-01 00:00:00' GROUP BY month",
    "SELECT sex, MEDIAN(age) AS med, MAX(age) AS hi FROM cohort WHERE name ILIKE 'B%' OR bmi > 30 GROUP BY sex",
    *MODELS,  # a CROSSTAB and a LINEAR model
]


@pytest.fixture
def mixed(pg_db: PgDatabase, tmp_path: Path) -> tuple[list[pd.DataFrame], list[Any], list[str]]:
    """Three sites holding the dataset "cohort": a CSV file, a Parquet file and a PostgreSQL table."""
    frames = [_site(70, 21), _site(90, 22), _site(60, 23)]
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    frames[0].to_csv(tmp_path / "a" / "cohort.csv", index=False)
    frames[1].to_parquet(tmp_path / "b" / "cohort.parquet")
    specs = [str(tmp_path / "a" / "cohort.csv"), str(tmp_path / "b" / "cohort.parquet"),
             pg_db.load(frames[2], "cohort")]
    return frames, [open_source(s) for s in specs], specs


def test_csv_parquet_and_postgres_sites_give_the_same_answers(mixed: Any) -> None:
    frames, sources, _ = mixed
    assert [s.name for s in sources] == ["cohort"] * 3
    pooled = pd.concat(frames, ignore_index=True)
    for query in QUERIES:
        got, _ = run_in_process(sources, query, min_cell=1)
        if query.startswith("SELECT"):  # against DuckDB on the pooled rows
            assert_matches(got.to_pandas(), reference(pooled, query), ordered=False)
        else:  # against pandas' crosstab and statsmodels' OLS on the pooled rows
            assert_matches(got.to_pandas(), MODELS[query](pooled), ordered=True)


EXPRESSIONS = [
    "CASE WHEN bmi IS NULL THEN 'none' WHEN bmi > 27 THEN 'high' ELSE 'low' END",
    "name LIKE 'a%'", "name LIKE 'a\\_b'", "name LIKE '%\\%'", "name ILIKE 'B%'", "name < 'b'",
    "NOT (bmi > 27)", "bmi > 27 OR name LIKE 'a%'", "age BETWEEN 30 AND 50", "age IN (30, 41, 55)",
    "COALESCE(name, 'none')", "UPPER(name) || '-' || LOWER(sex)", "LENGTH(name)", "SUBSTRING(name, 2, 2)",
    "CAST(admitted AS DATE) - DATE '2020-01-01'", "CAST(CAST(admitted AS DATE) + INTERVAL 30 DAY AS VARCHAR)",
    "CAST(CAST(admitted AS DATE) - 7 AS VARCHAR)", "EXTRACT(MONTH FROM CAST(admitted AS DATE))",
    "CAST(date_trunc('month', CAST(admitted AS DATE)) AS VARCHAR)", "CAST(admitted AS DATE) >= DATE '2020-06-01'",
    "age / visits", "age // 7", "age % 7", "bmi / 0", "ROUND(bmi, 1)", "ROUND(age / 4)", "ROUND(age / 8, 1)",
    "ABS(age - 50)", "SQRT(age)", "LN(age)", "POWER(age, 2)", "GREATEST(age, 40)", "SIGN(age - 50)",
    "FLOOR(bmi)", "CEIL(bmi)",
    "NULLIF(sex, 'F')", "CASE sex WHEN 'F' THEN 1 ELSE 0 END", "CAST(age AS VARCHAR)", "CAST(visits AS DOUBLE) * 1.5",
]


def _rows(source: Any, expressions: list[str]) -> pd.DataFrame:
    select = ", ".join(f"{e} AS x{i}" for i, e in enumerate(expressions))
    groups = ", ".join(f"x{i}" for i in range(len(expressions)))
    stmt = parse(f"SELECT id, {select}, COUNT(*) FROM t WHERE age > 18 GROUP BY id, {groups}")
    domains = {g: () for g in stmt.group_by}  # type: ignore[union-attr]
    plan = plan_query(stmt, source.schema(), domains, 1)
    return source.rows(plan).frame.sort_values("id").reset_index(drop=True)


def _same(a: Any, b: Any) -> bool:
    if a is pd.NA or b is pd.NA or a is None or b is None:
        return (a is pd.NA or a is None) and (b is pd.NA or b is None)
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)


def test_postgres_evaluates_every_construct_as_duckdb_on_the_same_rows(pg_db: PgDatabase,
                                                                       tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 60
    frame = pd.DataFrame({
        "id": np.arange(n),
        "age": rng.integers(20, 90, n),
        "sex": rng.choice(["F", "M"], n),
        "bmi": np.where(rng.random(n) < 0.2, np.nan, rng.normal(27, 4, n)),  # no decimal halves: see docs
        "visits": rng.integers(0, 4, n),
        "name": rng.choice(np.array(["alice", "a_b", "axb", "a\\b", "B%", "bob", "Bob", "carol", None],
                                    dtype=object), n),
        "admitted": [f"2020-{m:02d}-{d:02d}" for m, d in zip(rng.integers(1, 13, n), rng.integers(1, 29, n))],
    })
    frame.to_parquet(tmp_path / "t.parquet")
    duck, pg = open_source(tmp_path / "t.parquet"), open_source(pg_db.load(frame, "t"))
    assert duck.schema().columns == pg.schema().columns
    a, b = _rows(duck, EXPRESSIONS), _rows(pg, EXPRESSIONS)
    assert len(a) == len(b) == int((frame["age"] > 18).sum())
    for i, expression in enumerate(EXPRESSIONS):
        column = [c for c in a.columns if c not in ("id",)][i]
        differ = [(x, y) for x, y in zip(a[column], b[column]) if not _same(x, y)]
        assert not differ, (expression, differ[:3])


def test_the_database_user_needs_only_select_on_the_table(pg_db: PgDatabase) -> None:
    pg_db.load(_site(40, 4), "cohort")
    pg_db.load(_site(10, 5), "other")
    pg_db.execute("CREATE ROLE pooled_reader LOGIN")
    pg_db.execute(f'GRANT CONNECT ON DATABASE "{pg_db.name}" TO pooled_reader')
    pg_db.execute("GRANT USAGE ON SCHEMA public TO pooled_reader")
    pg_db.execute("GRANT SELECT ON cohort TO pooled_reader")
    try:
        reader = open_source(pg_db.url("cohort", user="pooled_reader"))
        got, _ = run_in_process([reader, _site(30, 6)], "SELECT sex, COUNT(*) AS n FROM cohort GROUP BY sex",
                                min_cell=1)
        assert int(got.to_pandas()["n"].sum()) == 70
        with pytest.raises(SourceError, match=r"'other' .*cannot be read \(InsufficientPrivilege"):
            open_source(pg_db.url("other", user="pooled_reader")).schema()
    finally:
        pg_db.execute(f'REVOKE ALL ON DATABASE "{pg_db.name}" FROM pooled_reader')
        pg_db.execute("DROP OWNED BY pooled_reader")
        pg_db.execute("DROP ROLE pooled_reader")


def test_every_statement_runs_in_a_read_only_transaction(pg_db: PgDatabase) -> None:
    pg_db.execute("CREATE SEQUENCE s")
    writes = PostgresSource.from_url(pg_db.url(), "w", query="SELECT nextval('s') AS x")  # as the superuser
    with pytest.raises(QueryError, match="could not be evaluated"):
        run_in_process([writes, pd.DataFrame({"x": [1, 2]})], "SELECT SUM(x) FROM w", min_cell=1)
    with pg_db.connect() as conn:
        assert conn.execute("SELECT last_value, is_called FROM s").fetchone() == (1, False)  # never advanced


def test_a_failure_on_the_rows_names_its_kind_never_a_value(pg_db: PgDatabase) -> None:
    source = open_source(pg_db.load(_site(40, 7), "cohort"))
    with pytest.raises(QueryError, match="could not be converted") as info:
        run_in_process([source, _site(20, 8)], "SELECT SUM(CAST(name AS INTEGER)) AS s FROM cohort", min_cell=1)
    assert not any(v in str(info.value) for v in ("alice", "Bob", "carol", "dave"))


def test_an_unreachable_database_names_the_host_and_never_the_password() -> None:
    source = open_source("postgresql://reader:Sup3rS3cret@127.0.0.1:1/clinic?table=cohort")
    with pytest.raises(SourceError) as info:
        run_in_process([source, _site(10, 1)], "SELECT COUNT(*) FROM cohort")
    message = str(info.value)
    assert "127.0.0.1:1" in message and "clinic" in message and "reader" in message
    assert "Sup3rS3cret" not in message and "Sup3rS3cret" not in source.describe()
    with pytest.raises(SourceError, match="name one table"):
        open_source("postgresql://reader@127.0.0.1:5432/clinic")


@pytest.mark.network
def test_an_unreachable_database_through_real_nodes_keeps_the_password_out_of_every_message(tmp_path: Path) -> None:
    from parties.client import ConsortiumError
    from parties.local import LocalConsortium

    secret = "Sup3rS3cret"
    csv = tmp_path / "cohort.csv"
    _site(20, 2).to_csv(csv, index=False)
    data = {"a": csv, "b": f"postgresql://reader:{secret}@127.0.0.1:1/clinic?table=cohort"}
    with LocalConsortium(["a", "b"], data=data, audit_dir=tmp_path / "audit") as consortium:
        with pytest.raises(ConsortiumError) as info:
            consortium.query("SELECT COUNT(*) FROM cohort")
    message = str(info.value)
    assert "127.0.0.1:1" in message and secret not in message
    logs = [p.read_text() for p in (tmp_path / "audit").glob("*.jsonl")]
    assert logs and any("127.0.0.1:1" in log for log in logs) and not any(secret in log for log in logs)


@pytest.mark.network
def test_pooled_local_with_csv_parquet_and_postgres_sites(mixed: Any) -> None:
    frames, sources, specs = mixed
    query = QUERIES[1]
    run = run_here(["local", "--format", "json", "--min-cell", "1", "--data", *specs, query], timeout=300)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    want, _ = run_in_process(frames, query, min_cell=1)
    assert_matches(pd.DataFrame(body["rows"], columns=body["columns"]), want.to_pandas(), ordered=False)
