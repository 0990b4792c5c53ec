"""The synthetic OMOP example: a cohort defined by concept ids is a site's own dataset (a query joining
its person, condition_occurrence and measurement tables), read by name; over files (DuckDB) and in
PostgreSQL (`pooled synth --omop --database`), the consortium's answer is the pooled one."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from queries.engine import run_in_process
from queries.omop import COHORT_SQL, TABLES, omop_sites
from queries.source_duckdb import DuckDBSource
from queries.source_postgres import PostgresSource
from tests.pg import PgDatabase
from tests.queries.test_sql_pooled import assert_matches

QUERY = ("SELECT sex, COUNT(*) AS n, AVG(hba1c) AS a1c, SUM(hypertension) AS htn FROM diabetes "
         "WHERE age >= 40 GROUP BY sex")


class _Run:
    """What `pooled ARGS` printed and its exit status, run in this process (it starts nothing)."""

    def __init__(self, *argv: str) -> None:
        from parties.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                self.returncode = main(list(argv)) or 0
            except SystemExit as stop:  # as the interpreter does: a message goes to stderr, status 1
                if isinstance(stop.code, str):
                    print(stop.code, file=err)
                self.returncode = stop.code if isinstance(stop.code, int) else 1
        self.stdout, self.stderr = out.getvalue(), err.getvalue()


def _synth(out: Path, *more: str) -> _Run:
    return _Run("synth", "--omop", "--rows", "900", "--parties", "2", "--seed", "3", "--out", str(out), *more)


def _reference(sites: list[dict[str, pd.DataFrame]]) -> pd.DataFrame:
    """The cohort at each site by DuckDB over its own tables, pooled, then the query on the pooled rows."""
    cohorts = []
    for tables in sites:
        con = duckdb.connect()
        for name, frame in tables.items():
            con.register(name, frame)
        cohorts.append(con.sql(COHORT_SQL).df())
    con = duckdb.connect()
    con.register("diabetes", pd.concat(cohorts, ignore_index=True))
    return con.sql(QUERY).df()


def test_a_cohort_by_concept_ids_is_a_sites_own_query_over_its_files(tmp_path: Path) -> None:
    run = _synth(tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(Path(p).name for p in run.stdout.split()) == sorted(f"{t}.csv" for t in TABLES * 2)
    sources = [DuckDBSource.query(COHORT_SQL, "diabetes", tmp_path / f"site_{k}") for k in (1, 2)]
    assert dict(sources[0].schema().columns) == {"person_id": "int", "sex": "category", "age": "int",
                                                 "hypertension": "int", "hba1c": "float"}
    got, _ = run_in_process(sources, QUERY, min_cell=1)
    assert_matches(got.to_pandas(), _reference(omop_sites(900, 2, 3)), ordered=False)


@pytest.mark.xdist_group("postgres")  # with the other PostgreSQL tests: one cluster (`tests.pg`)
def test_the_same_cohort_in_postgresql(pg_db: PgDatabase, tmp_path: Path) -> None:
    run = _synth(tmp_path, "--database", pg_db.url())
    assert run.returncode == 0, run.stderr
    urls = [line for line in run.stdout.split() if line.startswith("postgresql://")]
    assert len(urls) == 2 and all("search_path%3Dsite_" in u for u in urls)
    in_pg = PostgresSource.from_url(urls[1], "diabetes", query=COHORT_SQL)
    in_files = DuckDBSource.query(COHORT_SQL, "diabetes", tmp_path / "site_1")
    assert in_pg.schema() == in_files.schema()
    got, _ = run_in_process([in_files, in_pg], QUERY, min_cell=1)
    assert_matches(got.to_pandas(), _reference(omop_sites(900, 2, 3)), ordered=False)


def test_synth_refuses_a_database_without_omop(tmp_path: Path) -> None:
    run = _Run("synth", "--rows", "10", "--parties", "2", "--out", str(tmp_path), "--database",
               "postgresql://u@127.0.0.1:1/db")
    assert run.returncode != 0 and "--database goes with --omop" in run.stderr
    with pytest.raises(ValueError, match="cannot split"):
        omop_sites(1, 2)
