"""The parser: good statements to IR, bad ones to errors with the right position."""

from __future__ import annotations

import pytest

from queries import ir
from queries.errors import QueryError
from queries.parser import parse


def test_select_with_everything() -> None:
    stmt = parse(
        "select count(*), AVG(bmi) as m, Median(age), QUANTILE(sbp, 0.9), CORR(age, bmi) FROM cohort "
        "WHERE age >= 40 AND (sex = 'F' OR smoking IN ('current', 'former')) AND chol IS NOT NULL "
        "AND NOT bmi BETWEEN 30 AND 35 GROUP BY sex, diabetes"
    )
    assert isinstance(stmt, ir.Select)
    assert [a.name for a in stmt.aggregates] == ["count", "m", "median(age)", "quantile(sbp, 0.9)", "corr(age, bmi)"]
    assert stmt.aggregates[2] == ir.Aggregate("QUANTILE", "age", None, 0.5, "median(age)")
    assert stmt.group_by == ("sex", "diabetes")
    assert ir.condition_columns(stmt.where) == {"age", "sex", "smoking", "chol", "bmi"}


def test_crosstab_regression_and_explain() -> None:
    assert parse("CROSSTAB smoking BY diabetes WHERE age < 60") == ir.Crosstab(
        "smoking", "diabetes", ir.Compare("age", "<", 60)
    )
    reg = parse("LOGISTIC outcome ~ age + C(smoking) - 1 WHERE sex != 'M' MAXITER 50 TOL 1e-8")
    assert reg == ir.Regression(
        "LOGISTIC", "outcome", "age + C(smoking) - 1", ("age", "smoking"), ("smoking",),
        ir.Compare("sex", "!=", "M"), 50, 1e-8,
    )
    options_first = parse("LOGISTIC outcome ~ age:np.log(bmi) MAXITER 50 WHERE sex != 'M'")
    assert isinstance(options_first, ir.Regression) and options_first.maxiter == 50
    assert options_first.formula == "age:np.log(bmi)" and options_first.where == ir.Compare("sex", "!=", "M")
    explained = parse("EXPLAIN LINEAR sbp ~ age + bmi")
    assert isinstance(explained, ir.Explain) and isinstance(explained.inner, ir.Regression)


def test_negative_numbers_and_quoted_names() -> None:
    stmt = parse('SELECT SUM("my col") WHERE x > -2.5 AND y IN (-1, 2)')
    assert isinstance(stmt, ir.Select)
    assert stmt.aggregates[0].column == "my col"
    assert stmt.where == ir.And(ir.Compare("x", ">", -2.5), ir.InList("y", (-1, 2)))


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("SELECT", 7, "expected an aggregate"),
        ("SELECT COUNT(*) WHERE age >", 28, "expected a number"),
        ("SELECT AVG(age) GROUP sex", 23, "expected BY"),
        ("SELEC x", 1, "expected SELECT"),
        ("SELECT COUNT(*) WHERE age = 'secret' )", 38, "after the end"),
        ("SELECT foo(x)", 8, "unknown function 'foo'"),
        ("LINEAR y ~ x + 2", 16, "a number alone is not a term"),
        ("SELECT count(*) where a @ 1", 25, "unexpected character"),
        ("SELECT QUANTILE(x, 1.5)", 20, "between 0 and 1"),
        ("LINEAR y ~ x MAXITER 5", 14, "LOGISTIC and POISSON only"),
        ("CROSSTAB a BY a", 15, "two different columns"),
    ],
)
def test_errors_name_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(text)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert info.value.render().splitlines()[-1].index("^") == position + 1  # two-space indent


def test_errors_never_echo_literal_values() -> None:
    with pytest.raises(QueryError) as info:
        parse("SELECT COUNT(*) WHERE name = 'Alice Smith' 'extra'")
    assert "Alice" not in str(info.value)
    with pytest.raises(QueryError) as info:
        parse("SELECT COUNT(*) ~ 'Alice Smith'")  # everything after '~' is a formula token
    assert "Alice" not in str(info.value)


def test_empty_and_duplicate_names() -> None:
    with pytest.raises(QueryError, match="empty"):
        parse("   ")
    with pytest.raises(QueryError, match="named"):
        parse("SELECT AVG(x), AVG(x)")
