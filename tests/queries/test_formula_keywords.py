"""A column named like a clause keyword (every, tol, maxiter, from, where) stays in a model's formula when it
follows an operator; after a term the keyword starts its clause."""

from __future__ import annotations

import pytest

from queries import ir
from queries.errors import QueryError
from queries.parser import parse


@pytest.mark.parametrize(("query", "columns", "every", "maxiter", "source"), [
    ("LOGISTIC y ~ every + age", ("every", "age"), 1.0, 35, None),
    ("LOGISTIC y ~ age + every", ("age", "every"), 1.0, 35, None),
    ("COX t, e ~ age + every EVERY 2 FROM d", ("age", "every"), 2.0, 6, "d"),
    ("LOGISTIC y ~ age + tol MAXITER 5", ("age", "tol"), 1.0, 5, None),
    ("LINEAR y ~ age * maxiter FROM t", ("age", "maxiter"), 1.0, 35, "t"),
    ("LINEAR y ~ age + from", ("age", "from"), 1.0, 35, None),
])
def test_a_keyword_after_an_operator_is_a_column(query: str, columns: tuple[str, ...], every: float, maxiter: int,
                                                 source: str | None) -> None:
    stmt = parse(query)
    assert isinstance(stmt, ir.Regression)
    assert (stmt.columns, stmt.every, stmt.maxiter, stmt.source) == (columns, every, maxiter, source)


@pytest.mark.parametrize(("query", "message"), [
    ("COX t, e ~ age EVERY", "expected a number"),
    ("LINEAR y ~ WHERE x > 1", "at least one covariate"),
])
def test_a_keyword_after_a_term_or_alone_is_its_clause(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse(query)
