"""Errors found after parsing (unknown columns, wrong kinds, duplicates) still point at the
offending name, and never echo a literal."""

from __future__ import annotations

import pytest

from queries.engine import plan_query
from queries.errors import QueryError
from queries.parser import parse
from queries.table import Schema

SCHEMA = Schema((("age", "int"), ("sex", "category"), ("bmi", "float"), ("outcome", "int")))
DOMAINS = {"sex": ("F", "M")}


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("SELECT AVG(weight)", 12, "unknown column 'weight'"),
        ("SELECT COUNT(*) WHERE wt > 1 GROUP BY sex", 23, "unknown column 'wt'"),
        ("SELECT COUNT(*), AVG(sex)", 22, "numeric"),
        ("SELECT COUNT(*) WHERE sex = 3", 23, "compare it with a string"),
        ("SELECT COUNT(*) WHERE age IN (1, 'Alice Smith')", 23, "compare it with a number"),
        ("SELECT COUNT(*) WHERE NOT (bmi BETWEEN 'a' AND 3)", 28, "compare it with a number"),
        ("SELECT COUNT(*) GROUP BY age", 26, "no domain"),
        ("LINEAR bmi ~ age + C(bmi)", 22, "also appears on the right"),
        ("LINEAR outcome ~ age + I(wt / 2)", 26, "unknown column 'wt'"),
        ("LINEAR sex ~ age", 8, "must be numeric"),
        ("SELECT AVG(age), AVG(age)", 18, "named 'avg(age)'"),
    ],
)
def test_positions_of_semantic_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        plan_query(text, SCHEMA, DOMAINS)
    assert fragment in str(info.value)
    assert info.value.position == position
    assert info.value.render().splitlines()[-1].index("^") == position + 1
    assert "Alice" not in str(info.value)


def test_valid_literals_pass_and_positions_are_the_parsed_tokens() -> None:
    plan_query("SELECT COUNT(*) WHERE sex IN ('F') AND age BETWEEN 1 AND 2.5 AND bmi IS NULL", SCHEMA, DOMAINS)
    with pytest.raises(QueryError) as info:  # the string 'wt' comes first in the text; the column is blamed
        plan_query("SELECT COUNT(*) WHERE sex = 'wt' AND wt > 1", SCHEMA, DOMAINS)
    assert info.value.position == 38
    assert parse('SELECT AVG("a b"), AVG("a b") AS other') is not None


def test_a_value_out_of_range_fails_without_naming_it() -> None:
    import pandas as pd

    from queries.engine import run_in_process
    from queries.table import normalize_frame

    a = normalize_frame(pd.DataFrame({"v": [1.2345e30, 2.0]}))
    b = normalize_frame(pd.DataFrame({"v": [1.0, 2.0]}))
    with pytest.raises(QueryError, match="beyond the supported range") as info:
        run_in_process([a, b], "SELECT SUM(v)", min_cell=1)
    assert "1.23" not in str(info.value) and "e+30" not in str(info.value)
