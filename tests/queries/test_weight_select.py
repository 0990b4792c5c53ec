"""SELECT ... WEIGHT w against statsmodels' DescrStatsW and pandas on the pooled rows, and its refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.weightstats import DescrStatsW

from queries.engine import predict_cost, run_in_process
from queries.errors import QueryError
from queries.parser import parse
from queries.table import check_schemas, schema_of
from tests.queries.test_weight_linear import _sites

QUERY = "SELECT sex, COUNT(*) AS n, COUNT(bmi) AS nb, SUM(bmi), AVG(bmi), VAR(bmi), STDDEV(chol) GROUP BY sex WEIGHT fw"
KEYS = ("rounds", "bytes_sent", "messages_sent", "dealer_requests", "dealer_bytes")


def _with_gaps(parties: int, seed: int) -> list[pd.DataFrame]:
    sites = _sites(parties, seed)
    rng = np.random.default_rng(seed)
    for s in sites:
        s.loc[rng.choice(len(s), 8, replace=False), "fw"] = pd.NA  # NULL weight: the row is left out
        s.loc[rng.choice(len(s), 8, replace=False), "fw"] = 0  # weight 0: the row is left out
        s.loc[rng.choice(len(s), 8, replace=False), "bmi"] = pd.NA
    return sites


def _stats(values: pd.Series, weights: pd.Series) -> DescrStatsW:
    keep = values.notna() & weights.notna() & (weights > 0)
    return DescrStatsW(values[keep].astype(float).to_numpy(), weights=weights[keep].astype(float).to_numpy(), ddof=1)


@pytest.mark.parametrize("parties", [2, 3, 5])
def test_weighted_aggregates_match_descrstatsw(parties: int) -> None:
    sites = _with_gaps(parties, seed=90 + parties)
    result, _ = run_in_process(sites, QUERY)
    table = result.to_pandas().set_index("sex")
    assert list(result.columns) == ["sex", "n", "nb", "sum(bmi)", "avg(bmi)", "var(bmi)", "stddev(chol)"]
    pooled = pd.concat(sites, ignore_index=True)
    for sex, g in pooled.groupby("sex"):
        bmi, chol = _stats(g.bmi, g.fw), _stats(g.chol, g.fw)
        row = table.loc[sex]
        assert row["n"] == pytest.approx(g.fw.sum())
        assert row["nb"] == pytest.approx(bmi.sum_weights)
        assert row["sum(bmi)"] == pytest.approx(bmi.sum, rel=1e-9)
        assert row["avg(bmi)"] == pytest.approx(bmi.mean, rel=1e-9)
        assert row["var(bmi)"] == pytest.approx(bmi.var, rel=1e-6)
        assert row["stddev(chol)"] == pytest.approx(chol.std, rel=1e-6)


def test_weighted_avg_ci_matches_descrstatsw_tconfint_mean() -> None:
    sites = _with_gaps(3, seed=94)
    result, _ = run_in_process(sites, "SELECT sex, AVG_CI(bmi) AS b, COUNT(*) AS n GROUP BY sex WEIGHT fw")
    assert list(result.columns) == ["sex", "b", "b_ci95_low", "b_ci95_high", "n"]
    table = result.to_pandas().set_index("sex")
    pooled = pd.concat(sites, ignore_index=True)
    for sex, g in pooled.groupby("sex"):
        stats = _stats(g.bmi, g.fw)
        low, high = stats.tconfint_mean()
        assert table.loc[sex, "b"] == pytest.approx(stats.mean, rel=1e-9)
        assert table.loc[sex, "b_ci95_low"] == pytest.approx(low, rel=1e-7)
        assert table.loc[sex, "b_ci95_high"] == pytest.approx(high, rel=1e-7)


def test_weighted_proportion_is_wilson_on_the_rows_repeated() -> None:
    from statsmodels.stats.proportion import proportion_confint

    sites = _sites(2, seed=93)
    result, _ = run_in_process(sites, "SELECT PROPORTION(bmi > 30) AS obese WEIGHT fw")
    pooled = pd.concat(sites, ignore_index=True).dropna(subset=["bmi"])
    repeated = pooled.loc[pooled.index.repeat(pooled.fw.astype(int))]
    count, nobs = int((repeated.bmi > 30).sum()), len(repeated)
    low, high = proportion_confint(count, nobs, method="wilson")
    assert result.rows[0] == pytest.approx([count / nobs, low, high], rel=1e-9)


def test_frequency_weights_equal_the_rows_repeated() -> None:
    sites = _sites(2, seed=95)
    result, _ = run_in_process(sites, "SELECT AVG(sbp), STDDEV(sbp) WEIGHT fw")
    pooled = pd.concat(sites, ignore_index=True)
    repeated = pooled.loc[pooled.index.repeat(pooled.fw.astype(int))].sbp.astype(float)
    assert result.rows[0][0] == pytest.approx(repeated.mean(), rel=1e-9)
    assert result.rows[0][1] == pytest.approx(repeated.std(ddof=1), rel=1e-6)


def test_the_threshold_counts_contributors_not_weights() -> None:
    """One patient of weight 50 is one contributor: her group is withheld, the others released."""
    sites = _sites(2, seed=96)
    for s in sites:
        s["w"] = pd.array(np.where(s.smoking == "current", 0.0, 1.0), dtype="Float64")
    sites[0].loc[sites[0].index[sites[0].smoking == "current"][0], "w"] = 50.0
    result, _ = run_in_process(sites, "SELECT smoking, COUNT(*) AS n, AVG(bmi) GROUP BY smoking WEIGHT w", min_cell=5)
    table = result.to_pandas().set_index("smoking")
    assert pd.isna(table.loc["current", "n"]) and pd.isna(table.loc["current", "avg(bmi)"])
    assert result.extra.get("suppressed") or any(result.suppressed)
    assert table.loc["never", "n"] == pytest.approx(sum(((s.smoking == "never") * s.w).sum() for s in sites))


@pytest.mark.parametrize("bad", [-2.0, np.inf])
def test_a_negative_or_infinite_weight_fails_the_query(bad: float) -> None:
    sites = _sites(3, seed=97)
    sites[1].loc[4, "ipw"] = bad
    with pytest.raises(QueryError, match="the weight 'ipw' must be a finite number >= 0"):
        run_in_process(sites, "SELECT AVG(bmi) WEIGHT ipw")


@pytest.mark.parametrize(("query", "message"), [
    ("SELECT MIN(bmi) WEIGHT fw", "MIN is not available with WEIGHT"),
    ("SELECT MEDIAN(bmi) WEIGHT fw", "MEDIAN and QUANTILE are not available with WEIGHT"),
    ("SELECT sex, AVG(bmi) AS a GROUP BY sex HAVING a > 20 WEIGHT fw", "HAVING is not available with WEIGHT"),
    ("SELECT RATE(diabetes, age) WEIGHT fw", "RATE is not available with WEIGHT"),
    ("SELECT AVG(bmi) WEIGHT fw ROBUST", "ROBUST applies to a model"),
    ("SELECT AVG(bmi) WEIGHT sex", "the weight 'sex' must be a numeric column"),
])
def test_what_cannot_be_weighted_is_a_query_error(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        run_in_process(_sites(2, seed=98), query)


def test_crosstab_and_survival_take_no_weight() -> None:
    with pytest.raises(QueryError, match="WEIGHT applies to SELECT, LINEAR, LOGISTIC and POISSON"):
        parse("CROSSTAB sex BY smoking WEIGHT fw")
    with pytest.raises(QueryError, match="WEIGHT applies to SELECT, LINEAR, LOGISTIC and POISSON"):
        parse("SURVIVAL months, died WEIGHT fw")


def test_weight_under_differential_privacy_is_refused_naming_the_mode() -> None:
    with pytest.raises(QueryError, match="WEIGHT is not available under disclosure = dp"):
        run_in_process(_sites(2, seed=99), "SELECT COUNT(*) WEIGHT fw", epsilon=1.0)


def test_explain_predicts_the_cost_exactly() -> None:
    sites = _sites(2, seed=100)
    _, plan = run_in_process(sites, QUERY)
    schema = check_schemas([schema_of(s) for s in sites])
    predicted = predict_cost(plan, schema, 2, rows=[len(s) for s in sites])
    assert {k: predicted[k] for k in KEYS} == {k: plan.cost[k] for k in KEYS}
    assert "weighted avg" in plan.text()


def test_a_weighted_variance_is_exact_or_withheld_at_any_magnitude() -> None:
    """Costs near 1e7 with an sd of 3: w x^2 in float64 cancels, so VAR is withheld (NULL) rather than
    off in its fourth digit; the same spread near 100 matches DescrStatsW to 1e-9, and AVG stays."""
    rng = np.random.default_rng(7)
    centres = {"far": (1e7, False), "near": (100.0, True)}  # one column each, one query

    def site(rows: int) -> pd.DataFrame:
        costs = {f"cost_{name}": pd.array(np.round(centre + rng.normal(0, 3, rows), 2))
                 for name, (centre, _) in centres.items()}
        return pd.DataFrame({**costs, "w": pd.array(rng.integers(1, 5, rows), dtype="Int64")})

    sites = [site(400), site(300)]
    query = "SELECT " + ", ".join(f"AVG(cost_{n}) AS mean_{n}, VAR(cost_{n}), AVG_CI(cost_{n})" for n in centres)
    result, _ = run_in_process(sites, query + " FROM cohort WEIGHT w")
    pooled = pd.concat(sites)
    for i, (name, (_, released)) in enumerate(centres.items()):
        ref = DescrStatsW(pooled[f"cost_{name}"].astype(float), weights=pooled.w.astype(float), ddof=1)
        row = result.rows[0][5 * i : 5 * i + 5]  # mean, var, and AVG_CI's estimate, lower and upper
        assert row[0] == pytest.approx(ref.mean, rel=1e-12)
        if released:
            assert row[1] == pytest.approx(ref.var, rel=1e-9)
            assert row[3:5] == pytest.approx(list(ref.tconfint_mean()), rel=1e-9)
        else:
            assert row[1] is None and row[3:5] == [None, None]
            assert row[2] == pytest.approx(ref.mean, rel=1e-12)
