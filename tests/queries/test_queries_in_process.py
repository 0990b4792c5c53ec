"""Pooled results against pandas on the pooled frame, run by in-process parties."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from queries.cost import quantile_scales
from queries.engine import predict_cost, run_in_process
from queries.errors import QueryError, SchemaError
from queries.synth import cohort, split
from queries.table import check_schemas, normalize_frame, schema_of


@pytest.fixture(scope="module")
def sites() -> list[pd.DataFrame]:
    return split(cohort(900, seed=3), 3, seed=3)


def _close(got: object, want: float, rel: float = 1e-6) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    return got is not None and abs(float(got) - want) <= rel * max(1.0, abs(want))  # type: ignore[arg-type]


def test_every_aggregate_grouped_matches_pandas(sites: list[pd.DataFrame]) -> None:
    query = ("SELECT COUNT(*), COUNT(bmi), SUM(sbp), AVG(bmi), VAR(chol), STDDEV(sbp), MIN(bmi), MAX(chol), "
             "MEDIAN(age), QUANTILE(bmi, 0.25), CORR(age, sbp) GROUP BY sex, smoking")
    result, plan = run_in_process(sites, query)
    pooled = pd.concat(sites, ignore_index=True)
    for row in result.to_pandas().itertuples(index=False):
        part = pooled[(pooled.sex == row[0]) & (pooled.smoking == row[1])]
        want = [len(part), part.bmi.count(), part.sbp.sum(), part.bmi.mean(), part.chol.var(), part.sbp.std(),
                part.bmi.min(), part.chol.max(), part.age.median(), part.bmi.quantile(0.25),
                part.age.astype(float).corr(part.sbp.astype(float))]
        for got, w in zip(row[2:], want):
            assert _close(got, float(w)), (row, want)
    assert len(result.rows) == pooled.groupby(["sex", "smoking"]).ngroups


def test_where_and_no_grouping(sites: list[pd.DataFrame]) -> None:
    result, _ = run_in_process(sites, "SELECT COUNT(*), AVG(age) WHERE bmi > 30 AND smoking != 'never'")
    pooled = pd.concat(sites, ignore_index=True)
    sub = pooled[(pooled.bmi > 30) & (pooled.smoking != "never")]
    assert result.rows == [[len(sub), pytest.approx(sub.age.mean(), rel=1e-9)]]


def test_counts_are_exact_integers(sites: list[pd.DataFrame]) -> None:
    result, _ = run_in_process(sites, "SELECT COUNT(*), COUNT(chol) GROUP BY diabetes")
    pooled = pd.concat(sites, ignore_index=True)
    for d, n, nc in result.rows:
        part = pooled[pooled.diabetes == d]
        assert (n, nc) == (len(part), part.chol.count())
        assert isinstance(n, int)


def _frame(values: dict[str, list[object]]) -> pd.DataFrame:
    return normalize_frame(pd.DataFrame(values))


def test_pooled_cell_of_seven_from_two_three_two_is_released_and_six_is_not() -> None:
    def site(n_a: int, n_b: int) -> pd.DataFrame:
        return _frame({"g": ["a"] * n_a + ["b"] * n_b, "x": list(range(n_a + n_b))})

    result, _ = run_in_process([site(2, 2), site(3, 2), site(2, 2)], "SELECT COUNT(*), AVG(x) GROUP BY g", min_cell=7)
    rows = {r[0]: r for r in result.rows}
    flags = dict(zip([r[0] for r in result.rows], result.suppressed))
    assert rows["a"][1] == 7 and not flags["a"]
    assert rows["b"][1] is None and rows["b"][2] is None and flags["b"]  # pooled 6 < 7


@pytest.mark.parametrize(("size", "hidden"), [(4, True), (5, False)])
def test_suppression_boundary_at_k(size: int, hidden: bool) -> None:
    left = _frame({"g": ["a"] * 2 + ["b"] * 9, "x": [1.0] * 11})
    right = _frame({"g": ["a"] * (size - 2) + ["b"] * 9, "x": [2.0] * (size + 7)})
    result, _ = run_in_process([left, right], "SELECT COUNT(*), AVG(x) GROUP BY g", min_cell=5)
    assert result.suppressed[0] is hidden
    assert (result.rows[0][1] is None) is hidden


def test_nulls_and_empty_groups() -> None:
    a = _frame({"g": ["x", "x", "y"], "v": [1.0, None, None]})
    b = _frame({"g": ["x", "y", "y"], "v": [None, None, None]})
    result, _ = run_in_process([a, b], "SELECT COUNT(*), COUNT(v), SUM(v), AVG(v), VAR(v) GROUP BY g", min_cell=1)
    rows = {r[0]: r[1:] for r in result.rows}
    assert rows["x"][:3] == [3, 1, 1.0] and rows["x"][3] == pytest.approx(1.0, rel=1e-9)
    assert rows["x"][4] is None  # one value: the variance is NULL, as in pandas
    assert rows["y"] == [3, 0, 0.0, None, None]
    empty, _ = run_in_process([a, b], "SELECT COUNT(*) WHERE v > 100 GROUP BY g", min_cell=1)
    assert empty.rows == []  # no rows in any group: no groups, as pandas shows none


def test_crosstab_matches_pandas_and_scipy(sites: list[pd.DataFrame]) -> None:
    from scipy import stats

    result, _ = run_in_process(sites, "CROSSTAB sex BY diabetes")
    pooled = pd.concat(sites, ignore_index=True)
    table = pd.crosstab(pooled.sex, pooled.diabetes)
    cells = np.array([r[1:3] for r in result.rows[:-1]])
    assert (cells == table.to_numpy()).all()
    chi2, p, dof, _ = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert result.extra["chi2"] == pytest.approx(chi2) and result.extra["p_value"] == pytest.approx(p)
    (f0, f1), (m0, m1) = table.to_numpy()  # exposure sex=M against F, outcome diabetes=1
    odds = next(m for m in result.extra["measures"] if m["measure"] == "OR")
    assert odds["label"] == "OR (sex=M vs F, diabetes=1)" and odds["estimate"] == pytest.approx(m1 * f0 / (m0 * f1))


def test_crosstab_with_a_small_interior_cell_releases_no_cells_nor_statistics() -> None:
    a = _frame({"r": ["p"] * 20 + ["q"] * 2, "c": ["u"] * 10 + ["v"] * 10 + ["u", "v"]})
    b = _frame({"r": ["p"] * 10 + ["q"] * 10, "c": ["u"] * 5 + ["v"] * 5 + ["u"] * 10})
    result, _ = run_in_process([a, b], "CROSSTAB r BY c", min_cell=5)
    assert all(v is None for row in result.rows[:-1] for v in row[1:3])
    assert "chi2" not in result.extra and "withheld" in result.extra["statistics"]
    assert result.rows[-1][-1] == 42  # the grand total passes and is released


def test_schema_mismatch_names_the_column_only() -> None:
    a = schema_of(_frame({"age": [1, 2], "sex": ["F", "M"]}))
    b = schema_of(_frame({"age": ["old", "young"], "sex": ["F", "M"]}))
    with pytest.raises(SchemaError, match="'age'") as info:
        check_schemas([a, b])
    assert "old" not in str(info.value)
    c = schema_of(_frame({"age": [1, 2]}))
    with pytest.raises(SchemaError, match="'sex' is not in the table at party 2"):
        check_schemas([a, c]).kind("sex")  # only a query that reads it fails


def test_unknown_columns_and_wrong_types_are_clear_errors(sites: list[pd.DataFrame]) -> None:
    with pytest.raises(QueryError, match="unknown column 'weight'"):
        run_in_process(sites, "SELECT AVG(weight)")
    with pytest.raises(QueryError, match="numeric"):
        run_in_process(sites, "SELECT AVG(sex)")


def test_explain_predicts_the_counters_exactly(sites: list[pd.DataFrame]) -> None:
    query = "SELECT COUNT(*), AVG(bmi), STDDEV(age), MEDIAN(sbp) GROUP BY sex"
    result, plan = run_in_process(sites, query)
    schema = check_schemas([schema_of(s) for s in sites])
    sizes = [len(s) for s in sites]
    predicted = predict_cost(plan, schema, len(sites), rows=sizes, scales=quantile_scales(plan, sites))
    for key in ("rounds", "bytes_sent", "messages_sent", "dealer_requests", "dealer_bytes"):
        assert predicted[key] == plan.cost[key], key
    text = replace(plan, cost=predicted).text()
    assert f"{predicted['rounds']} rounds, {predicted['bytes_sent']} bytes sent" in text and "in MPC" in text
    assert "estimate" not in text
    # Without the parties' table sizes the quantile search is priced for 64-row tables, and says so; without
    # the opened column scale, for the widest integer keys (sbp < 2^8 here: 5 steps of 5 rounds, not 23).
    guess = predict_cost(plan, schema, len(sites))
    assert guess["rounds"] == plan.cost["rounds"] + 18 * 5 and guess["bytes_sent"] < plan.cost["bytes_sent"]
    assert "an estimate for tables of at most 64 rows" in replace(plan, cost=guess).text()
    assert "rounds at most: MEDIAN/QUANTILE takes" in replace(plan, cost=guess).text()
    sized = predict_cost(plan, schema, len(sites), scales=quantile_scales(plan, sites))
    assert sized["rounds"] == plan.cost["rounds"] and "column_scale" not in sized
