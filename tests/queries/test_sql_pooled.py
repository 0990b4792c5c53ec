"""Standard SQL through the whole pipeline against DuckDB run on the pooled plaintext: every accepted
construct, derived grouping columns, NULLs, ORDER BY and LIMIT. The constructs run on two in-process
parties holding three sites' rows (the SQL becomes one plan: per-row expressions each site evaluates
on its own rows, and the engine's aggregates, all of which `test_queries_in_process.py` checks on
three parties); derived domains, EXPLAIN and a site's failure on three."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from queries import evaluate
from queries.engine import run_in_process
from queries.errors import QueryError
from queries.parser import parse
from queries.table import normalize_frame


def _site(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    months, days = rng.integers(1, 13, rows), rng.integers(1, 29, rows)
    return normalize_frame(pd.DataFrame({
        "sex": rng.choice(["F", "M"], rows),
        "age": rng.integers(20, 90, rows),
        "bmi": np.where(rng.random(rows) < 0.15, np.nan, rng.normal(27, 4, rows)),
        "weight": rng.normal(75, 12, rows),
        "height": rng.normal(1.72, 0.09, rows),
        "admitted": [f"2020-{m:02d}-{d:02d}" for m, d in zip(months, days)],
        "name": rng.choice(np.array(["alice", "Bob", "carol", "dave", None], dtype=object), rows),
        "visits": np.where(rng.random(rows) < 0.1, np.nan, rng.integers(0, 6, rows)),
    }))


@pytest.fixture(scope="module")
def sites() -> list[pd.DataFrame]:
    return [_site(70, 1), _site(90, 2), _site(60, 3)]


@pytest.fixture(scope="module")
def two_sites(sites: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The same rows at two parties (the first two sites' at one), for the tests of the grammar each
    site evaluates on its own rows: more parties change nothing there."""
    return [normalize_frame(pd.concat(sites[:2], ignore_index=True)), sites[2]]


def reference(pooled: pd.DataFrame, sql: str) -> pd.DataFrame:
    """DuckDB's answer on the pooled rows, with the parties' setting (division by zero is NULL)."""
    con = duckdb.connect()
    con.execute("SET error_on_division_by_zero = false")
    con.register("cohort", pooled)
    return con.sql(sql).df()


def _same(a: Any, b: Any) -> bool:
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA for v in (a, b)]
    if any(missing):
        return all(missing)
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=1e-6))


def _rows(frame: pd.DataFrame) -> list[list[Any]]:
    return [[None if v is pd.NA else v for v in row] for row in frame.astype(object).itertuples(index=False)]


def assert_matches(got: pd.DataFrame, want: pd.DataFrame, ordered: bool) -> None:
    assert list(got.columns) == list(want.columns)
    a, b = _rows(got), _rows(want)
    if not ordered:
        a, b = sorted(a, key=repr), sorted(b, key=repr)
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b):
        assert all(_same(u, v) for u, v in zip(x, y)), (x, y)


CASES = [
    # (Pooled's query, DuckDB's spelling of it when it differs, ordered)
    ("SELECT sex, COUNT(*) AS n, AVG(bmi) AS m FROM cohort WHERE age >= 50 GROUP BY sex", None, False),
    ("SELECT COUNT(*) AS n, sex, SUM(age) AS s, MIN(age) AS lo, MAX(bmi) AS hi FROM cohort GROUP BY sex", None, False),
    ("SELECT CASE WHEN age >= 65 THEN '65+' ELSE '<65' END AS band, COUNT(*) AS n, "
     "AVG(weight / (height * height)) AS bmi2 FROM cohort GROUP BY band", None, False),
    ("SELECT age // 10 AS decade, COUNT(*) AS n FROM cohort GROUP BY age // 10 ORDER BY decade", None, True),
    ("SELECT age // 20 * 20, COUNT(name) AS named FROM cohort GROUP BY 1 ORDER BY 1 DESC",
     'SELECT age // 20 * 20 AS "age // 20 * 20", COUNT(name) AS named FROM cohort GROUP BY 1 ORDER BY 1 DESC', True),
    ("SELECT COUNT(*) AS n FROM cohort WHERE (name LIKE 'a%' OR name ILIKE 'b%') AND age BETWEEN 30 AND 70 "
     "AND sex IN ('F') AND bmi IS NOT NULL AND NOT age = 40", None, False),
    ("SELECT COUNT(*) AS n FROM cohort WHERE NOT bmi > 30 OR name NOT IN ('alice', 'dave')", None, False),
    ("SELECT EXTRACT(MONTH FROM CAST(admitted AS DATE)) AS m, COUNT(*) AS n FROM cohort "
     "WHERE CAST(admitted AS DATE) + INTERVAL 30 DAY < DATE '2020-10-01' AND EXTRACT(DOW FROM CAST(admitted AS DATE)) "
     "<> 0 GROUP BY m ORDER BY n DESC, m LIMIT 4 OFFSET 1", None, True),
    ("SELECT sex, SUM(CASE WHEN bmi > 30 THEN 1 ELSE 0 END) AS obese, VAR(age) AS v, VARIANCE(bmi) AS v2, "
     "VAR_SAMP(weight) AS v3, STDDEV(age) AS sd, STDDEV_SAMP(bmi) AS sd2, CORR(weight, height) AS r FROM cohort "
     "GROUP BY sex",
     "SELECT sex, SUM(CASE WHEN bmi > 30 THEN 1 ELSE 0 END) AS obese, VAR_SAMP(age) AS v, VARIANCE(bmi) AS v2, "
     "VAR_SAMP(weight) AS v3, STDDEV(age) AS sd, STDDEV_SAMP(bmi) AS sd2, CORR(weight, height) AS r FROM cohort "
     "GROUP BY sex", False),
    ("SELECT sex, MEDIAN(age) AS med, QUANTILE(bmi, 0.25) AS q1, "
     "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY weight / height) AS p90 FROM cohort GROUP BY sex",
     "SELECT sex, MEDIAN(age) AS med, QUANTILE_CONT(bmi, 0.25) AS q1, QUANTILE_CONT(weight / height, 0.9) AS p90 "
     "FROM cohort GROUP BY sex", False),
    ("SELECT c.sex, COUNT(*) AS n, AVG(COALESCE(c.visits, 0)) AS v, SUM(ABS(ROUND(c.bmi - 27, 1))) AS dev "
     "FROM cohort AS c WHERE NULLIF(c.name, 'carol') IS NOT NULL GROUP BY c.sex ORDER BY AVG(COALESCE(c.visits, 0))",
     "SELECT c.sex, COUNT(*) AS n, AVG(COALESCE(c.visits, 0)) AS v, SUM(ABS(ROUND(c.bmi - 27, 1))) AS dev "
     "FROM cohort AS c WHERE NULLIF(c.name, 'carol') IS NOT NULL GROUP BY c.sex ORDER BY v", True),
    ("SELECT UPPER(name) AS who, sex, COUNT(*) AS n, SUM(visits) AS s FROM cohort GROUP BY UPPER(name), sex "
     "ORDER BY who NULLS FIRST, sex DESC", None, True),
    ("SELECT CASE WHEN visits > 2 THEN 'many' WHEN visits >= 0 THEN 'few' END AS load, COUNT(*) AS n "
     "FROM cohort GROUP BY load ORDER BY load", None, True),
    ("SELECT sex, COUNT(*) AS n FROM cohort WHERE visits / (visits - visits) > 0 OR age > 80 GROUP BY sex",
     "SELECT sex, COUNT(*) AS n FROM cohort WHERE visits / NULLIF(visits - visits, 0) > 0 OR age > 80 GROUP BY sex",
     False),  # a division by zero is NULL at every site (DuckDB's own 1.0 / 0 is infinity)
]


@pytest.mark.parametrize(("query", "duck", "ordered"), CASES)
def test_sql_matches_duckdb_on_the_pooled_rows(
    two_sites: list[pd.DataFrame], pooled: pd.DataFrame, query: str, duck: str | None, ordered: bool
) -> None:
    result, _ = run_in_process(two_sites, query, min_cell=1)
    assert_matches(result.to_pandas(), reference(pooled, duck or query), ordered)


def test_a_derived_grouping_column_forms_its_domain_from_derived_values(sites: list[pd.DataFrame]) -> None:
    query = "SELECT COUNT(*) AS n, CASE WHEN age >= 65 THEN 'old' ELSE 'young' END AS band FROM cohort GROUP BY 2"
    result, plan = run_in_process(sites, query, min_cell=1)
    assert plan.group_columns == ("CASE WHEN age >= 65 THEN 'old' ELSE 'young' END",)
    assert plan.group_keys == (("old",), ("young",), (None,))  # the union of the derived values, NULL level last
    assert result.columns == ["n", "band"]  # SELECT order, SELECT names
    assert "per row, by DuckDB: CASE WHEN age >= 65 THEN 'old' ELSE 'young' END" in plan.text()


def test_explain_names_the_derived_columns_and_the_analysts_steps(sites: list[pd.DataFrame]) -> None:
    _, plan = run_in_process(
        sites, "EXPLAIN SELECT AVG(weight / (height * height)) AS b, sex FROM cohort GROUP BY sex ORDER BY b LIMIT 1")
    assert plan.explain
    text = plan.text()
    assert "per group: sum of weight / (height * height)" in text
    assert "at the analyst, on the released rows: ORDER BY b LIMIT 1" in text


def test_where_follows_three_valued_logic_with_nulls(two_sites: list[pd.DataFrame], pooled: pd.DataFrame) -> None:
    for cond in ["bmi > 30", "NOT bmi > 30", "NOT (bmi > 30 AND name = 'alice')", "bmi > 30 OR name = 'alice'",
                 "visits IN (1, NULL)", "visits NOT IN (1, NULL)", "CASE WHEN bmi > 30 THEN TRUE END",
                 "NULLIF(visits, 0) >= 0", "name LIKE NULL"]:
        result, _ = run_in_process(two_sites, f"SELECT COUNT(*) AS n FROM cohort WHERE {cond}", min_cell=1)
        want = int(reference(pooled, f"SELECT COUNT(*) AS n FROM cohort WHERE {cond}").n[0])
        assert result.rows == [[want]], cond


def test_crosstab_and_linear_take_the_same_condition_grammar(two_sites: list[pd.DataFrame],
                                                             pooled: pd.DataFrame) -> None:
    where = "CAST(admitted AS DATE) >= DATE '2020-03-01' AND (name ILIKE 'A%' OR name IS NULL)"
    table, _ = run_in_process(two_sites, f"CROSSTAB sex BY visits FROM cohort WHERE {where}", min_cell=1)
    counts = reference(pooled, f"SELECT sex, visits, COUNT(*) AS n FROM cohort WHERE {where} AND visits IS NOT NULL "
                               "GROUP BY ALL")
    got = {(row[0], float(v)): row[1 + j] for row in table.rows[:-1] for j, v in enumerate(table.columns[1:-1])}
    for sex, visits, n in counts.itertuples(index=False):
        assert got[(sex, float(visits))] == n
    model, _ = run_in_process(two_sites, f"LINEAR weight ~ height + age FROM cohort WHERE {where} AND age // 10 <> 5",
                              min_cell=1)
    rows = reference(pooled, f"SELECT weight, height, age FROM cohort WHERE {where} AND age // 10 <> 5")
    x = np.column_stack([np.ones(len(rows)), rows.height, rows.age.astype(float)])
    beta = np.linalg.lstsq(x, rows.weight.to_numpy(float), rcond=None)[0]
    np.testing.assert_allclose([r[1] for r in model.rows], beta, rtol=1e-5, atol=1e-5)


def test_a_query_is_parsed_once_per_process(monkeypatch: pytest.MonkeyPatch, sites: list[pd.DataFrame]) -> None:
    import queries.parser

    calls = []
    real = queries.parser._sqlglot
    monkeypatch.setattr(queries.parser, "_sqlglot", lambda *a: calls.append(1) or real(*a))
    run_in_process(sites, "SELECT sex, COUNT(*) AS n FROM cohort WHERE age > 40 GROUP BY sex", min_cell=1)
    assert len(calls) == 1


def test_an_unknown_column_fails_before_any_row_is_read(monkeypatch: pytest.MonkeyPatch,
                                                        sites: list[pd.DataFrame]) -> None:
    def no_rows(*args: object, **kwargs: object) -> None:
        raise AssertionError("a party's rows were read")

    monkeypatch.setattr(evaluate, "select_rows", no_rows)
    text = "SELECT CASE WHEN agee > 1 THEN 'a' END AS band, COUNT(*) FROM cohort GROUP BY band"
    with pytest.raises(QueryError, match="unknown column 'agee'") as info:
        run_in_process(sites, text, min_cell=1)
    assert info.value.position == text.index("agee") + 1
    assert info.value.render().splitlines()[-1].index("^") == info.value.position + 1


def test_a_failure_at_a_site_is_one_clear_error_without_values(sites: list[pd.DataFrame]) -> None:
    with pytest.raises(QueryError, match="could not be converted") as info:
        run_in_process(sites, "SELECT SUM(CAST(name AS INTEGER)) AS s FROM cohort", min_cell=1)
    assert "alice" not in str(info.value) and "carol" not in str(info.value)


def test_old_and_standard_spellings_give_the_same_result(two_sites: list[pd.DataFrame]) -> None:
    old, _ = run_in_process(two_sites, "SELECT COUNT(*), AVG(bmi) WHERE age >= 50 GROUP BY sex", min_cell=1)
    new, _ = run_in_process(two_sites, "SELECT sex, COUNT(*), AVG(bmi) FROM cohort WHERE age >= 50 GROUP BY 1",
                            min_cell=1)
    assert old.columns == new.columns == ["sex", "count", "avg(bmi)"]
    assert_matches(old.to_pandas(), new.to_pandas(), ordered=True)
    assert parse("SELECT COUNT(*) GROUP BY sex") == parse("select count(*) group by sex")
