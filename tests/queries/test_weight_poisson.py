"""POISSON ... WEIGHT w [ROBUST] against statsmodels' GLM on the pooled rows, and its rounds."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from queries.engine import predict_cost, run_in_process
from queries.plan import Plan
from queries.result import Result
from queries.table import check_schemas, schema_of

FORMULA = "deaths ~ smoker + C(agegroup)"
QUERY = f"POISSON {FORMULA} + offset(np.log(person_years))"
FREQUENCY = " WEIGHT fw MAXITER 6"
ROBUST = " WEIGHT ipw ROBUST MAXITER 6"
UNWEIGHTED = " MAXITER 6"

# Tests that share one run land on one pytest-xdist worker, so the run is made once.
SHARED_RUNS = pytest.mark.xdist_group("test_weight_poisson:runs")


def _sites(parties: int, seed: int) -> list[pd.DataFrame]:
    """Unequal sites of person-time data with a frequency weight fw and an inverse-probability weight ipw."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(parties):
        n = 90 * (i + 1) + 40
        age = rng.choice(["40-59", "60-79", "80+"], n)
        smoker = rng.integers(0, 2, n)
        years = rng.uniform(100, 3000, n).round(1)
        rate = np.exp(-6 + 0.4 * smoker + np.select([age == "60-79", age == "80+"], [0.9, 1.7], 0.0))
        out.append(pd.DataFrame({"deaths": rng.poisson(rate * years), "smoker": smoker, "agegroup": age,
                                 "person_years": years, "fw": rng.integers(1, 4, n),
                                 "ipw": (1 / rng.uniform(0.2, 0.9, n)).round(4)}))
    return out


@functools.cache
def _run(tail: str) -> tuple[Result, Plan]:
    """`QUERY + tail` on `_sites(2, seed=62)`: the weighted fits' runs are checked against statsmodels and
    their rounds predicted (MAXITER 6: Newton has converged by then, else the fit is refused, as with the
    default 10 in `test_poisson.py`; and it runs every kind of step the default does)."""
    return run_in_process(_sites(2, seed=62), QUERY + tail)


def _glm(pooled: pd.DataFrame, **weights: object) -> sm.GLM:
    return smf.glm(FORMULA, data=pooled, family=sm.families.Poisson(), offset=np.log(pooled.person_years), **weights)


def _close(result: object, model: object) -> None:
    table = result.to_pandas().set_index("term")  # type: ignore[attr-defined]
    assert set(table.index) == set(model.params.index)  # type: ignore[attr-defined]
    for term in model.params.index:  # type: ignore[attr-defined]
        assert table.coef[term] == pytest.approx(model.params[term], rel=1e-6), term  # type: ignore[attr-defined]
        assert table.std_err[term] == pytest.approx(model.bse[term], rel=1e-6), term  # type: ignore[attr-defined]


@SHARED_RUNS
def test_frequency_weights_match_glm_freq_weights() -> None:
    """Two parties: a weight is a column of the counts and offsets, not a step of its own; POISSON's fit over
    many parties is `test_poisson.py::test_rates_with_an_offset_match_statsmodels` (5 parties)."""
    sites = _sites(2, seed=62)
    result, _ = _run(FREQUENCY)
    pooled = pd.concat(sites, ignore_index=True)
    model = _glm(pooled, freq_weights=pooled.fw).fit(tol=1e-12)
    _close(result, model)
    facts = result.extra["model"]
    assert facts["weights"] == "frequency" and facts["n"] == len(pooled) and facts["converged"]
    assert facts["sum_weights"] == pytest.approx(pooled.fw.sum()) and facts["df_resid"] == pytest.approx(model.df_resid)
    assert facts["log_likelihood"] == pytest.approx(model.llf, rel=1e-6)
    assert facts["pearson_chi2"] == pytest.approx(model.pearson_chi2, rel=1e-4)


@SHARED_RUNS
def test_robust_weights_match_glm_var_weights_with_hc0() -> None:
    """Two parties, as the frequency weights above (the many-party fit: `test_poisson.py`, 5 parties)."""
    sites = _sites(2, seed=62)
    result, _ = _run(ROBUST)
    pooled = pd.concat(sites, ignore_index=True)
    model = _glm(pooled, var_weights=pooled.ipw).fit(tol=1e-12, cov_type="HC0")
    _close(result, model)
    facts = result.extra["model"]
    assert facts["cov_type"] == "HC0" and facts["df_resid"] == model.df_resid
    assert facts["log_likelihood"] == pytest.approx(model.llf, rel=1e-6)
    assert facts["pearson_chi2"] == pytest.approx(model.pearson_chi2, rel=1e-4)


@SHARED_RUNS
def test_rounds_are_predicted_exactly_and_weights_add_few() -> None:
    """MAXITER 6 runs every kind of step the default 10 does (the start, two cold Newton steps, warm
    ones, the last with Pearson's terms, the final step): what a weight could change the rounds of. The
    weighted fits (those checked against statsmodels above) have their predictions checked here; the
    unweighted fit's (every kind of step too, at MAXITER 4) is
    `test_cost.py::test_poisson_prediction_is_exact_in_rounds`."""
    schema = check_schemas([schema_of(s) for s in _sites(2, seed=62)])
    counted = {}
    for tail in (UNWEIGHTED, FREQUENCY, ROBUST):
        _, plan = _run(tail)
        if tail != UNWEIGHTED:
            assert predict_cost(plan, schema, 2)["rounds"] == plan.cost["rounds"]
        counted[tail] = plan.cost["rounds"]
    assert counted[FREQUENCY] == counted[UNWEIGHTED]  # the weights ride in the counts and offsets
    # HC0: the meat Z'(y - mu)^2 (10 rounds: the square, its halves, the product and its lift) and the sandwich (6)
    assert counted[ROBUST] == counted[UNWEIGHTED] + 16
