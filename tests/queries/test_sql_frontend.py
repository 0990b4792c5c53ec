"""The SQL front end: what it accepts into the IR, what it refuses and why, the positions of its
errors, type errors against the schema, and a statement's identity (the session binding)."""

from __future__ import annotations

import pytest

from parties.binding import plan_digest, request_digest
from queries import expr as e
from queries import ir
from queries.engine import check_query, plan_query
from queries.errors import QueryError
from queries.parser import parse
from queries.table import Schema

SCHEMA = Schema((("age", "int"), ("sex", "category"), ("bmi", "float"), ("name", "category"),
                 ("admitted", "category"), ("weight", "float"), ("height", "float")))
DOMAINS = {"sex": ("F", "M")}


def _error(text: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse(text)
    return info.value


def _caret_under(error: QueryError, token: str) -> None:
    assert error.text is not None and error.position is not None
    assert error.text[error.position - 1 :].startswith(token), (error.position, str(error))
    assert error.render().splitlines()[-1].index("^") == error.position + 1


REFUSED = [
    ("SELECT COUNT(DISTINCT sex) FROM cohort", "would reveal which values each site holds", "COUNT"),
    ("SELECT COUNT(*) FROM a JOIN b ON a.x = b.x", "joins are not supported", "b ON"),
    ("SELECT COUNT(*) FROM a, b", "joins are not supported", "b"),
    ("SELECT COUNT(*) FROM cohort WHERE age IN (SELECT age FROM t)", "subquery", "age IN"),
    ("SELECT COUNT(*) FROM (SELECT * FROM t)", "subqueries", "* FROM t"),
    ("SELECT AVG(age) OVER (PARTITION BY sex) FROM cohort", "window functions", "AVG"),
    ("SELECT COUNT(*) FROM t UNION SELECT COUNT(*) FROM u", "UNION", "COUNT(*) FROM u"),
    ("SELECT COUNT(*) FROM cohort WHERE AVG(age) > 3", "aggregates cannot be used in WHERE", "AVG"),
    ("SELECT sex, COUNT(*) FROM cohort", "column 'sex' must appear in GROUP BY", "sex"),
    ("SELECT sex, age, COUNT(*) FROM cohort GROUP BY sex", "column 'age' must appear in GROUP BY", "age"),
    ("SELECT UPPER(sex), COUNT(*) GROUP BY sex", "'upper(sex)' must appear in GROUP BY", "UPPER"),
    ("SELECT * FROM cohort", "SELECT * is not supported", "*"),
    ("SELECT sex, COUNT(*) GROUP BY sex HAVING sex = 'F'", "a condition on grouping columns belongs in WHERE",
     "sex = 'F'"),
    ("SELECT AVG(age) * 2", "an expression over aggregates", "AVG"),
    ("SELECT DISTINCT sex FROM cohort", "SELECT DISTINCT", "sex"),
    ("SELECT sex FROM cohort GROUP BY sex", "a SELECT releases aggregates", "sex FROM"),
    ("WITH a AS (SELECT 1) SELECT COUNT(*) FROM a", "WITH is not supported", "a AS"),
    ("SELECT sex, COUNT(*) GROUP BY sex ORDER BY age", "ORDER BY sorts the released rows", "age"),
    ("SELECT sex, COUNT(*) GROUP BY sex ORDER BY AVG(age)", "ORDER BY sorts the released rows", "AVG"),
    ("SELECT sex, COUNT(*) GROUP BY 2", "GROUP BY names an aggregate", "2"),
    ("SELECT sex, COUNT(*) GROUP BY 3", "the SELECT list has 2 columns", "3"),
    ("SELECT VAR_POP(age)", "sample variance", "VAR_POP"),
    ("SELECT PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY age)", "PERCENTILE_CONT(q) WITHIN GROUP", "PERCENTILE"),
    ("SELECT MODE(age)", "not a supported aggregate", "MODE"),
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "table functions are not supported", "read_csv"),
    ("SELECT COUNT(*) WHERE getenv('HOME') = 'x'", "unknown function 'getenv'", "getenv"),
    ("SELECT AVG(SUM(age))", "an aggregate inside an aggregate", "SUM"),
    ("SELECT COUNT(*) FILTER (WHERE age > 3)", "FILTER", "COUNT"),
    ("SELECT COUNT(*) WHERE age > 1; SELECT 1", "one statement at a time", "; SELECT"),
    ("SELECT COUNT(*) FROM cohort WHERE other.age > 1", "unknown table 'other'", "other.age"),
    ("SELECT COUNT(*) WHERE name = 'Alice", "not closed", "'Alice"),
    ("SELECT QUANTILE(age, -0.1)", "between 0 and 1", "0.1"),
    ("SELECT 1, COUNT(*)", "found a constant", "1,"),
    ("SELECT COUNT(*) WHERE LOG(age) > 1", "use LN, LOG10 or LOG2", "LOG"),
    ("SELECT COUNT(*) LIMIT 'a'", "LIMIT needs a whole number", "'a'"),
    ("CROSSTAB sex BY name WHERE AVG(age) > 1", "aggregates cannot be used in WHERE", "AVG"),
    ("LINEAR bmi ~ age WHERE age > 1 GROUP BY sex", "only a condition may follow WHERE", "age > 1"),
]


@pytest.mark.parametrize(("text", "fragment", "at"), REFUSED)
def test_refusals_say_why_and_where(text: str, fragment: str, at: str) -> None:
    error = _error(text)
    assert fragment in error.message
    _caret_under(error, at)


def test_refusals_never_echo_a_literal() -> None:
    for text in ["SELECT COUNT(*) WHERE name = 'Alice Smith' 'x'", "SELECT COUNT(*) WHERE name = 'Alice Smith' )",
                 "SELECT COUNT(*) ~ 'Alice Smith'", "SELECT COUNT(*) WHERE name = 'Alice Smith"]:
        assert "Alice" not in str(_error(text))


TYPE_ERRORS = [
    ("SELECT COUNT(*) WHERE sex > 3", "column 'sex' is categorical; compare it with a string", "sex"),
    ("SELECT COUNT(*) WHERE age BETWEEN 'a' AND 'b'", "column 'age' is numeric; compare it with a number", "age"),
    ("SELECT COUNT(*) WHERE name LIKE 3", "LIKE compares strings", "3"),
    ("SELECT COUNT(*) WHERE age", "WHERE needs a condition", "age"),
    ("SELECT CASE WHEN age > 1 THEN 'a' ELSE 1 END AS x, COUNT(*) GROUP BY x", "CASE's results mix", "1 END"),
    ("SELECT COUNT(*) WHERE EXTRACT(YEAR FROM admitted) = 2020", "CAST it AS DATE", "admitted"),
    ("SELECT COUNT(*) WHERE CAST(admitted AS DATE) > DATE '2020-13-01'", "DATE literal", "'2020-13-01'"),
    ("SELECT AVG(LOWER(sex))", "AVG needs a numeric column; 'lower(sex)' is categorical", "LOWER"),
    ("SELECT COUNT(*) WHERE age + sex > 1", "'+' cannot combine a number and a string", "age"),
    ("SELECT COUNT(*) WHERE admitted > DATE '2020-01-01'", "cannot compare a string with a date", "admitted"),
    ("SELECT AVG(weight / hieght)", "unknown column 'hieght'", "hieght"),
    ("SELECT CASE WHEN agee > 60 THEN 'old' END AS band, COUNT(*) GROUP BY band", "unknown column 'agee'", "agee"),
    ("SELECT CASE WHEN age > 60 THEN 'old' END AS sex, COUNT(*) GROUP BY 1", "'sex' names both a column", "sex,"),
    ("CROSSTAB sex BY name WHERE agee > 1", "unknown column 'agee'", "agee"),
    ("LOGISTIC sex ~ age WHERE CAST(nmae AS DATE) > '2020-01-01' MAXITER 5", "unknown column 'nmae'", "nmae"),
    ("SELECT COUNT(*) GROUP BY age // 10", "no domain", "age // 10"),
]


@pytest.mark.parametrize(("text", "fragment", "at"), TYPE_ERRORS)
def test_type_errors_against_the_schema_point_at_the_fault(text: str, fragment: str, at: str) -> None:
    with pytest.raises(QueryError) as info:
        plan_query(text, SCHEMA, DOMAINS)
    assert fragment in info.value.message
    _caret_under(info.value, at)


def test_the_checks_before_data_find_the_same_errors() -> None:
    with pytest.raises(QueryError, match="unknown column 'hieght'") as info:
        check_query(parse("SELECT sex, AVG(weight / hieght) GROUP BY sex"), SCHEMA)
    assert info.value.position == 26
    kinds = check_query(parse("SELECT SUM(age > 50), CASE WHEN bmi > 30 THEN 'y' END AS o, AVG(CAST(age AS DOUBLE)), "
                              "EXTRACT(MONTH FROM CAST(admitted AS DATE)) AS m, COUNT(*) GROUP BY o, m"), SCHEMA)
    assert kinds == {"age > 50": "int", "CASE WHEN bmi > 30 THEN 'y' END": "category",
                     "CAST(age AS DOUBLE)": "float", "EXTRACT(MONTH FROM CAST(admitted AS DATE))": "int"}


def test_the_ir_of_a_standard_select() -> None:
    stmt = parse("SELECT CASE WHEN age >= 65 THEN '65+' ELSE '<65' END AS band, COUNT(*) AS n, "
                 "AVG(weight / (height * height)) FROM cohort WHERE NOT name ILIKE 'x%' GROUP BY band "
                 "ORDER BY 3 DESC NULLS FIRST, band LIMIT 5 OFFSET 1")
    assert isinstance(stmt, ir.Select)
    band = "CASE WHEN age >= 65 THEN '65+' ELSE '<65' END"
    assert stmt.group_by == (band,) and stmt.source == "cohort"
    assert {d.name for d in stmt.derived} == {band, "weight / (height * height)"}
    assert stmt.where == e.Not(e.Like("name", "x%", ilike=True))
    assert stmt.aggregates[1] == ir.Aggregate("AVG", "weight / (height * height)")
    assert [o.name for o in stmt.output] == ["band", "n", "avg(weight / (height * height))"]
    assert stmt.order_by == (ir.OrderKey("avg(weight / (height * height))", True, True), ir.OrderKey("band"))
    assert (stmt.limit, stmt.offset) == (5, 1)
    assert ir.statement_columns(stmt) == {"age", "weight", "height", "name"}


def test_having_is_parsed_into_the_ir_and_planned() -> None:
    stmt = parse("SELECT sex, AVG(age) FROM cohort GROUP BY sex HAVING COUNT(*) >= 10 AND AVG(age) > 40")
    assert isinstance(stmt, ir.Select)
    assert [a.name for a in stmt.aggregates] == ["avg(age)", "count"]  # COUNT(*) joins, hidden from the result
    assert [o.name for o in stmt.output] == ["sex", "avg(age)"]
    assert stmt.having == e.And(e.Compare(e.Column("count"), ">=", e.Literal(10)),
                                e.Compare(e.Column("avg(age)"), ">", e.Literal(40)))
    steps = plan_query(stmt, SCHEMA, DOMAINS).mpc_steps
    want = ("HAVING: per group, 1 exact comparison(s) of COUNT/SUM in the suppression flags' batched comparison; "
            "1 floating-point comparison(s) of AVG/VAR/STDDEV")
    assert any(step.startswith(want) for step in steps)


def test_median_quantile_and_percentile_cont_are_one_aggregate() -> None:
    stmt = parse("SELECT MEDIAN(age), QUANTILE(bmi, 0.9), QUANTILE_CONT(bmi, 0.1) AS q, "
                 "PERCENTILE_CONT(0.25) WITHIN GROUP (ORDER BY bmi + 1) FROM cohort")
    assert isinstance(stmt, ir.Select)
    assert stmt.aggregates == (ir.Aggregate("QUANTILE", "age", None, 0.5, "median(age)"),
                               ir.Aggregate("QUANTILE", "bmi", None, 0.9),
                               ir.Aggregate("QUANTILE", "bmi", None, 0.1, "q"),
                               ir.Aggregate("QUANTILE", "bmi + 1", None, 0.25))


def _digest(text: str) -> str:
    return request_digest(parse(text), "alice", ["a", "b"], "s1", 0)


def test_spellings_that_differ_in_case_or_spacing_bind_equal() -> None:
    base = ("SELECT sex, COUNT(*) AS n, AVG(weight / (height * height)) FROM cohort WHERE name LIKE 'a%' "
            "AND age >= 50 GROUP BY sex ORDER BY n DESC LIMIT 3")
    for other in [base.lower().replace("'a%'", "'a%'"),
                  base.replace(" ", "\n  ").replace("(height * height)", "( height*height )"),
                  base.replace("GROUP BY sex", "GROUP BY 1")]:
        assert _digest(other) == _digest(base), other
    assert _digest("SELECT COUNT(*) WHERE x > 1") == _digest("select count(*) where (x > 1)")


@pytest.mark.parametrize("other", [
    "SELECT sex, COUNT(*) AS n FROM cohort WHERE name LIKE 'A%' GROUP BY sex",  # the literal's case matters
    "SELECT sex, COUNT(*) AS n FROM cohort WHERE name ILIKE 'a%' GROUP BY sex",
    "SELECT sex, COUNT(*) AS n FROM cohort WHERE name LIKE 'a%' GROUP BY sex ORDER BY n",
    "SELECT sex, COUNT(*) AS n FROM cohort WHERE name LIKE 'a%' GROUP BY sex LIMIT 1",
    "SELECT COUNT(*) AS n, sex FROM cohort WHERE name LIKE 'a%' GROUP BY sex",
    "SELECT sex, COUNT(*) AS m FROM cohort WHERE name LIKE 'a%' GROUP BY sex",
    "SELECT sex, COUNT(*) AS n FROM other WHERE name LIKE 'a%' GROUP BY sex",
    "SELECT sex, COUNT(*) AS n FROM cohort WHERE Name LIKE 'a%' GROUP BY sex",  # column names are case-sensitive
    "SELECT sex, COUNT(*) AS n FROM cohort WHERE name LIKE 'a%' AND 1 = 1 GROUP BY sex",
])
def test_different_queries_bind_differently(other: str) -> None:
    assert _digest(other) != _digest("SELECT sex, COUNT(*) AS n FROM cohort WHERE name LIKE 'a%' GROUP BY sex")


def test_plans_of_two_spellings_bind_equal_and_positions_stay_out_of_the_statement() -> None:
    a = plan_query("SELECT sex, AVG(age + 1) FROM cohort GROUP BY sex", SCHEMA, DOMAINS)
    b = plan_query("select   sex,avg( age+1 ) from cohort\ngroup by 1", SCHEMA, DOMAINS)
    assert plan_digest(a, "alice", ["a"], "s") == plan_digest(b, "alice", ["a"], "s")
    assert a.statement == b.statement and hash(a.statement) == hash(b.statement)
    assert "pos" not in repr(a.statement) and "mentions" not in repr(a.statement)


@pytest.mark.parametrize(("text", "fragment", "at"), [
    ("SELECT COUNT(*)\nFROM cohort\nWHERE agee > 1 AND\n  sex @ 2", "unexpected character '@'", "@ 2"),
    ("EXPLAIN\n  SELECT COUNT(*)\n  WHERE nope = 1", "unknown column 'nope'", "nope"),
    ("EXPLAIN SELECT AVG(sex)", "AVG needs a numeric column", "sex)"),
    ("SELECT COUNT(*) WHERE age > GROUP BY sex", "expected a number, a string or an expression", "GROUP BY"),
    ("SELECT AVG(age + ) FROM t", "found ')'", ")"),
])
def test_positions_count_every_character_of_the_text(text: str, fragment: str, at: str) -> None:
    with pytest.raises(QueryError) as info:
        plan_query(text, SCHEMA, DOMAINS)
    error = info.value
    assert fragment in error.message
    assert error.text is not None and error.position is not None
    assert error.text[error.position - 1 :].startswith(at)
    line = error.text[: error.position - 1].rsplit("\n", 1)[-1]
    assert error.render().splitlines()[-1] == "  " + " " * len(line) + "^"
