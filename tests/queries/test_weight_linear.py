"""LINEAR ... WEIGHT w [ROBUST] against statsmodels on the pooled rows, its refusals and its cost."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from queries.engine import plan_query, predict_cost, run_in_process
from queries.errors import BadWeights, QueryError, TooFewCases
from queries.parser import parse
from queries.plan import Plan
from queries.result import Result
from queries.synth import cohort
from queries.table import check_schemas, schema_of

# Tests that share one run land on one pytest-xdist worker, so the run is made once.
SHARED_RUNS = pytest.mark.xdist_group("test_weight_linear:runs")

FORMULA = "sbp ~ age + bmi + C(smoking) + diabetes"
COLUMNS = ["sbp", "age", "bmi", "smoking", "diabetes"]
KEYS = ("rounds", "bytes_sent", "messages_sent", "dealer_requests", "dealer_bytes")


def _sites(parties: int, seed: int) -> list[pd.DataFrame]:
    """Unequal sites (sizes 1 : 2 : ... : parties) with a frequency weight fw (1..4) and an inverse-probability
    weight ipw (1 / a propensity between 0.1 and 0.9)."""
    rng = np.random.default_rng(seed)
    sizes = [150 * (i + 1) for i in range(parties)]
    frame = cohort(sum(sizes), seed=seed)
    frame["fw"] = pd.array(rng.integers(1, 5, len(frame)), dtype="Int64")
    frame["ipw"] = pd.array(1 / rng.uniform(0.1, 0.9, len(frame)), dtype="Float64")
    cuts = np.cumsum([0] + sizes)
    return [frame.iloc[a:b].reset_index(drop=True) for a, b in zip(cuts[:-1], cuts[1:])]


@functools.cache
def _run(query: str, parties: int, seed: int) -> tuple[list[pd.DataFrame], Result, Plan]:
    """One in-process run of `query` on `_sites(parties, seed)`, shared by the test of its estimates and the test
    of EXPLAIN's prediction of its cost (the same fit, run once)."""
    sites = _sites(parties, seed)
    result, plan = run_in_process(sites, query)
    return sites, result, plan


@functools.cache
def _unweighted_rounds() -> int:
    """EXPLAIN's rounds of the unweighted fit on two sites (the schema every `_sites` has), predicted once."""
    schema = check_schemas([schema_of(s) for s in _sites(2, 2)])
    unweighted = plan_query(f"LINEAR {FORMULA}", schema, {"smoking": ("current", "former", "never")})
    return int(predict_cost(unweighted, schema, 2)["rounds"])


def _pooled(sites: list[pd.DataFrame], weight: str) -> pd.DataFrame:
    pooled = pd.concat(sites, ignore_index=True).dropna(subset=COLUMNS + [weight])
    return pooled.astype({c: float for c in COLUMNS + [weight] if c != "smoking"})


def _close(table: pd.DataFrame, params: pd.Series, bse: pd.Series, pvalues: pd.Series) -> None:
    assert set(table.index) == set(params.index)
    for term in params.index:
        assert table.coef[term] == pytest.approx(params[term], rel=1e-6), term
        assert table.std_err[term] == pytest.approx(bse[term], rel=1e-6), term
        assert table.p_value[term] == pytest.approx(pvalues[term], rel=1e-4, abs=1e-300), term


@SHARED_RUNS
def test_frequency_weights_match_ols_on_the_repeated_rows() -> None:
    """Two parties: the weight rides in the local sums; LINEAR's weighted fit over many parties is
    `test_robust_weights_match_wls_with_hc0[5]`."""
    sites, result, _ = _run(f"LINEAR {FORMULA} WEIGHT fw", 2, 2)
    pooled = _pooled(sites, "fw")
    repeated = pooled.loc[pooled.index.repeat(pooled.fw.astype(int))]
    model = smf.ols(FORMULA, data=repeated).fit()
    _close(result.to_pandas().set_index("term"), model.params, model.bse, model.pvalues)
    facts = result.extra["model"]
    assert facts["n"] == len(pooled) and facts["sum_weights"] == pytest.approx(pooled.fw.sum())
    assert facts["df_resid"] == pytest.approx(model.df_resid) and facts["weights"] == "frequency"
    assert facts["r_squared"] == pytest.approx(model.rsquared, rel=1e-6)
    assert facts["residual_std_error"] == pytest.approx(np.sqrt(model.scale), rel=1e-6)
    assert list(result.columns)[3] == "t"


@SHARED_RUNS
@pytest.mark.parametrize("parties", [2, 5])
def test_robust_weights_match_wls_with_hc0(parties: int) -> None:
    """Two parties and five: LINEAR's many-party case, weighted or not (`test_regression.py` shares the path)."""
    sites, result, _ = _run(f"LINEAR {FORMULA} WEIGHT ipw ROBUST", parties, 20 + parties)
    pooled = _pooled(sites, "ipw")
    model = smf.wls(FORMULA, data=pooled, weights=pooled.ipw).fit(cov_type="HC0")
    table = result.to_pandas().set_index("term")
    _close(table, model.params, model.bse, model.pvalues)
    ci = model.conf_int()
    assert np.allclose(table.ci_low[ci.index], ci[0], rtol=1e-6) and np.allclose(table.ci_high[ci.index], ci[1],
                                                                                   rtol=1e-6)
    facts = result.extra["model"]
    assert facts["cov_type"] == "HC0" and facts["n"] == len(pooled) and list(result.columns)[3] == "z"
    assert facts["r_squared"] == pytest.approx(model.rsquared, rel=1e-6)
    assert facts["residual_std_error"] == pytest.approx(np.sqrt(model.scale), rel=1e-6)


def test_robust_without_intercept_and_with_large_weights() -> None:
    sites = _sites(2, seed=7)
    for s in sites:
        s["ipw"] = s["ipw"] * 1e4  # survey weights in the thousands: the public weight scale keeps them in range
    result, _ = run_in_process(sites, "LINEAR sbp ~ 0 + age + bmi WEIGHT ipw ROBUST")
    pooled = _pooled(sites, "ipw")
    model = sm.WLS(pooled.sbp, pooled[["age", "bmi"]], weights=pooled.ipw).fit(cov_type="HC0")
    _close(result.to_pandas().set_index("term"), model.params, model.bse, model.pvalues)


def test_null_and_zero_weights_drop_the_row_and_are_not_counted() -> None:
    sites = _sites(2, seed=3)
    sites[0].loc[:9, "fw"] = pd.NA
    sites[1].loc[:19, "fw"] = 0
    result, _ = run_in_process(sites, f"LINEAR {FORMULA} WEIGHT fw")
    pooled = _pooled(sites, "fw")
    kept = pooled[pooled.fw > 0]
    model = smf.ols(FORMULA, data=kept.loc[kept.index.repeat(kept.fw.astype(int))]).fit()
    _close(result.to_pandas().set_index("term"), model.params, model.bse, model.pvalues)
    zeros = int((pooled.fw == 0).sum())
    assert zeros > 0 and result.extra["model"]["n"] == len(kept) == len(pooled) - zeros


@pytest.mark.parametrize("bad", [-1.0, np.inf])
def test_a_negative_or_infinite_weight_refuses_the_model(bad: float) -> None:
    sites = _sites(3, seed=4)
    sites[2].loc[5, "ipw"] = bad
    with pytest.raises(BadWeights, match="the weight 'ipw' must be a finite number >= 0") as info:
        run_in_process(sites, f"LINEAR {FORMULA} WEIGHT ipw ROBUST")
    assert info.value.reason == "bad_weights"


def test_the_minimum_cell_counts_contributors_not_weights() -> None:
    """Three patients of weight 50 each are three complete cases, not 150: below k = 5, refused."""
    sites = _sites(2, seed=5)
    for s in sites:
        s["w"] = pd.array(np.where(np.arange(len(s)) < 2, 50.0, 0.0), dtype="Float64")
    sites[1].loc[2:, "w"] = 0.0
    sites[1].loc[1, "w"] = 0.0  # 2 + 1 contributors in all
    with pytest.raises(TooFewCases, match="fewer than 5 complete cases"):
        run_in_process(sites, "LINEAR sbp ~ age WEIGHT w", min_cell=5)


def test_a_categorical_weight_is_a_query_error() -> None:
    sites = _sites(2, seed=6)
    with pytest.raises(QueryError, match="the weight 'smoking' must be a numeric column"):
        run_in_process(sites, "LINEAR sbp ~ age WEIGHT smoking")


def test_the_weight_clause_is_read_apart_from_a_column_named_weight() -> None:
    stmt = parse("LINEAR sbp ~ age + weight WHERE weight > 50 WEIGHT w ROBUST FROM t")
    assert (stmt.formula, stmt.weight, stmt.robust, stmt.source) == ("age + weight", "w", True, "t")
    plain = parse("LINEAR sbp ~ weight + age")
    assert (plain.formula, plain.weight, plain.robust) == ("weight + age", None, False)
    with pytest.raises(QueryError, match="WEIGHT appears twice"):
        parse("LINEAR sbp ~ age WEIGHT w FROM t WEIGHT v")
    with pytest.raises(QueryError, match="the weight must not be the outcome"):
        parse("LINEAR sbp ~ age WEIGHT sbp")
    assert parse("SELECT AVG(bmi) FROM t WEIGHT w").weight == "w"
    ordered = parse("SELECT weight, COUNT(*) GROUP BY weight ORDER BY weight DESC")  # a column named weight
    assert ordered.order_by[0].column == "weight" and ordered.order_by[0].descending


@SHARED_RUNS
@pytest.mark.parametrize(("query", "seed"), [(f"LINEAR {FORMULA} WEIGHT fw", 2),
                                            (f"LINEAR {FORMULA} WEIGHT ipw ROBUST", 22)])
def test_explain_predicts_the_cost_exactly(query: str, seed: int) -> None:
    """The counters of the two-party runs whose estimates the tests above check."""
    sites, _, plan = _run(query, 2, seed)
    schema = check_schemas([schema_of(s) for s in sites])
    predicted = predict_cost(plan, schema, len(sites))
    assert {k: predicted[k] for k in KEYS} == {k: plan.cost[k] for k in KEYS}
    assert schema == check_schemas([schema_of(s) for s in _sites(2, 2)])
    assert predicted["rounds"] - _unweighted_rounds() == (10 if "ROBUST" in query else 0)
    assert "sum(w)" in plan.text()


def test_a_weighted_model_under_differential_privacy_is_refused_naming_the_mode() -> None:
    sites = _sites(2, seed=9)
    with pytest.raises(QueryError, match="differential privacy") as info:
        run_in_process(sites, f"LINEAR {FORMULA} WEIGHT ipw ROBUST", epsilon=1.0)
    assert "LINEAR" in str(info.value)
