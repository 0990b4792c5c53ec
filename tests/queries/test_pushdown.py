"""The pushed-down SQL as text: what a site's database is asked, in DuckDB, PostgreSQL, Trino and Spark SQL.

Only DuckDB and PostgreSQL run in the tests (tests/queries/test_sources_pg.py compares them on the same
rows); for Trino and Spark this pins the transpiled text a site would run."""

from __future__ import annotations

import pytest

from queries.engine import plan_query
from queries.parser import parse
from queries.pushdown import Read, count_sql, read_of, rows_sql
from queries.table import Schema

SCHEMA = Schema((("age", "int"), ("sex", "category"), ("bmi", "float"), ("admitted", "category"),
                 ("name", "category")))
QUERY = ("SELECT sex, CASE WHEN age >= 65 THEN 'old' ELSE 'young' END AS band, COUNT(*), AVG(bmi / age), "
         "SUM(age > 60) FROM cohort WHERE name LIKE 'a%' AND CAST(admitted AS DATE) >= DATE '2020-03-01' "
         "AND bmi > 20.5 GROUP BY sex, band")


def _read() -> Read:
    stmt = parse(QUERY)
    domains = {g: ("x",) for g in stmt.group_by}  # type: ignore[union-attr]
    return read_of(plan_query(stmt, SCHEMA, domains, 1))


def test_only_the_columns_the_plan_reads_in_the_order_first_needed() -> None:
    read = _read()
    assert read.keep == ("sex",)
    assert [c for c, _ in read.columns] == ["sex", "name", "admitted", "bmi", "age"]
    assert [d[0] for d in read.derived] == ["bmi / age", "age > 60", "CASE WHEN age >= 65 THEN 'old' ELSE 'young' END"]


HEAD = ('SELECT "c0" AS "k0", CAST(CAST("c3" AS DOUBLE) / NULLIF(CAST("c4" AS DOUBLE), 0) AS DOUBLE) AS "d0", '
        'CAST("c4" > 60 AS BIGINT) AS "d1", ')
COMMON = ('CAST(CASE WHEN "c4" >= 65 THEN \'old\' ELSE \'young\' END AS {text}) AS "d2" FROM (SELECT '
          'CAST("sex" AS {text}) AS "c0", CAST("name" AS {text}) AS "c1", CAST("admitted" AS {text}) AS "c2", '
          'CAST("bmi" AS DOUBLE) AS "c3", CAST("age" AS BIGINT) AS "c4" FROM "cohort") AS "t" WHERE ')
EXPECTED = {
    "duckdb": HEAD + COMMON.format(text="VARCHAR")
    + '(("c1" LIKE \'a%\') AND (CAST("c2" AS DATE) >= DATE \'2020-03-01\')) AND ("c3" > 20.5e0)',
    "trino": HEAD + COMMON.format(text="VARCHAR")
    + '(("c1" LIKE \'a%\') AND (CAST("c2" AS DATE) >= CAST(\'2020-03-01\' AS DATE))) AND ("c3" > 20.5e0)',
    "spark": (
        "SELECT `c0` AS `k0`, CAST(CAST(`c3` AS DOUBLE) / NULLIF(CAST(`c4` AS DOUBLE), 0) AS DOUBLE) AS `d0`, "
        "CAST(`c4` > 60 AS BIGINT) AS `d1`, CAST(CASE WHEN `c4` >= 65 THEN 'old' ELSE 'young' END AS STRING) AS "
        "`d2` FROM (SELECT CAST(`sex` AS STRING) AS `c0`, CAST(`name` AS STRING) AS `c1`, CAST(`admitted` AS "
        "STRING) AS `c2`, CAST(`bmi` AS DOUBLE) AS `c3`, CAST(`age` AS BIGINT) AS `c4` FROM `cohort`) AS `t` "
        "WHERE ((`c1` LIKE 'a%') AND (CAST(`c2` AS DATE) >= CAST('2020-03-01' AS DATE))) AND (`c3` > 20.5e0)"),
    "postgres": (
        'SELECT "c0" AS "k0", CAST(CAST("c3" AS DOUBLE PRECISION) / NULLIF(CAST("c4" AS DOUBLE PRECISION), 0) '
        'AS DOUBLE PRECISION) AS "d0", CAST(CASE WHEN "c4" > 60 THEN 1 WHEN NOT ("c4" > 60) THEN 0 END AS '
        'BIGINT) AS "d1", CAST(CASE WHEN "c4" >= 65 THEN \'old\' ELSE \'young\' END AS TEXT) AS "d2" FROM '
        '(SELECT CAST("sex" AS TEXT) COLLATE "C" AS "c0", CAST("name" AS TEXT) COLLATE "C" AS "c1", '
        'CAST("admitted" AS TEXT) COLLATE "C" AS "c2", CAST("bmi" AS DOUBLE PRECISION) AS "c3", CAST("age" AS '
        'BIGINT) AS "c4" FROM "cohort") AS "t" WHERE (("c1" LIKE \'a%\' ESCAPE \'\') AND (CAST("c2" AS DATE) '
        '>= CAST(\'2020-03-01\' AS DATE))) AND ("c3" > CAST(20.5e0 AS DOUBLE PRECISION))'),
}


@pytest.mark.parametrize("dialect", sorted(EXPECTED))
def test_the_statement_each_dialect_runs(dialect: str) -> None:
    relation = "`cohort`" if dialect == "spark" else '"cohort"'
    assert rows_sql(_read(), relation, dialect) == EXPECTED[dialect]


def test_postgres_keeps_duckdbs_meaning_where_the_dialects_differ() -> None:
    stmt = parse("SELECT AVG(ROUND(bmi, 1)), SUM(age % 7), COUNT(*) FROM cohort "
                 "WHERE EXTRACT(MONTH FROM date_trunc('month', CAST(admitted AS DATE))) = 3 AND name ILIKE 'A\\_%'")
    sql = rows_sql(read_of(plan_query(stmt, SCHEMA, {}, 1)), '"cohort"', "postgres")
    assert 'CAST(ROUND(CAST("c2" AS DECIMAL), 1) AS DOUBLE PRECISION)' in sql  # halves away from zero, as DuckDB
    assert 'CAST(("c3") AS DECIMAL) % CAST(NULLIF(7, 0) AS DECIMAL)' in sql  # PostgreSQL has no % on doubles
    assert "DATE_TRUNC('MONTH', CAST(CAST(\"c0\" AS DATE) AS TIMESTAMP))" in sql  # no time zone
    assert "\"c1\" ILIKE 'A\\_%' ESCAPE ''" in sql  # a backslash is a character, as in DuckDB


def test_the_count_and_an_unknown_dialect() -> None:
    assert count_sql('"cohort"') == 'SELECT COUNT(*) FROM "cohort"'
    with pytest.raises(ValueError, match="unknown SQL dialect 'oracle'"):
        rows_sql(_read(), "cohort", "oracle")
