"""A column missing at one site blocks only the queries that read it, with one message naming the site."""

from __future__ import annotations

import pandas as pd
import pytest

from parties.client import ConsortiumError
from queries.engine import run_in_process
from queries.errors import QueryError, SchemaError
from queries.table import Schema, check_schemas, normalize_frame


def _sites() -> list[pd.DataFrame]:
    a = normalize_frame(pd.DataFrame({"g": ["u", "v"] * 4, "x": [1.0, 2, 3, 4, 5, 6, 7, 8], "chol": [5.0] * 8}))
    b = normalize_frame(pd.DataFrame({"g": ["u", "v"] * 3, "x": [9.0, 10, 11, 12, 13, 14]}))
    return [a, b]


def test_a_query_that_does_not_read_the_column_runs() -> None:
    result, _ = run_in_process(_sites(), "SELECT COUNT(*), AVG(x) GROUP BY g", min_cell=1)
    assert result.rows == [["u", 7, pytest.approx(7.0)], ["v", 7, pytest.approx(8.0)]]


@pytest.mark.parametrize("query", ["SELECT AVG(chol)", "SELECT COUNT(*) WHERE chol > 1",
                                   "SELECT COUNT(*) GROUP BY chol", "CROSSTAB g BY chol", "LINEAR x ~ chol"])
def test_a_query_that_reads_it_names_the_site(query: str) -> None:
    with pytest.raises(QueryError, match=r"column 'chol' is not in the table at party 2"):
        run_in_process(_sites(), query, min_cell=1)


def test_the_merged_schema_records_who_lacks_what() -> None:
    merged = check_schemas([Schema((("a", "int"), ("b", "float"))), Schema((("a", "float"),)),
                            Schema((("a", "int"), ("c", "category")))], ["h1", "h2", "h3"])
    assert merged.columns == (("a", "float"),)
    assert dict(merged.missing) == {"b": ("h2", "h3"), "c": ("h1", "h2")}
    with pytest.raises(SchemaError, match="column 'c' is not in the table at h1, h2"):
        merged.kind("c")


def test_the_same_failure_at_every_node_is_said_once() -> None:
    why = "error: QueryError: column 'chol' is not in the table at b"
    err = ConsortiumError("a", why, {"a": why, "b": why, "c": why})
    assert str(err) == f"party a failed: {why} (the same at b, c)"
    mixed = ConsortiumError("a", why, {"a": why, "b": "peer_failure: a stopped", "c": why})
    assert str(mixed).splitlines() == [f"party a failed: {why} (the same at c)", "  b: peer_failure: a stopped"]
