"""LOGISTIC ... WEIGHT w [ROBUST] against statsmodels' GLM on the pooled rows, and its rounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from queries.engine import run_in_process
from queries.errors import BadWeights, QueryError
from tests.queries.test_weight_linear import _sites

FORMULA = "outcome ~ age + bmi + sbp + C(sex)"
COLUMNS = ["outcome", "age", "bmi", "sbp", "sex"]
WARM = 44


def _pooled(sites: list[pd.DataFrame]) -> pd.DataFrame:
    pooled = pd.concat(sites, ignore_index=True).dropna(subset=COLUMNS + ["fw", "ipw"])
    return pooled.astype({c: float for c in COLUMNS + ["fw", "ipw"] if c != "sex"})


def _close(result: object, model: object, se_rel: float) -> None:
    table = result.to_pandas().set_index("term")  # type: ignore[attr-defined]
    params, bse = model.params, model.bse  # type: ignore[attr-defined]
    assert set(table.index) == set(params.index)
    for term in params.index:  # LOGISTIC's row-level fixed point: as its unweighted tests
        assert table.coef[term] == pytest.approx(params[term], rel=1e-4, abs=1e-6), term
        assert table.std_err[term] == pytest.approx(bse[term], rel=se_rel), term


def test_frequency_weights_match_glm_freq_weights() -> None:
    """Two parties: the fit has no case beyond "2 or more"; weighted LOGISTIC over 3 parties is
    `test_unit_weights_are_the_unweighted_fit_with_one_more_round`."""
    sites = _sites(2, seed=32)
    result, _ = run_in_process(sites, f"LOGISTIC {FORMULA} WEIGHT fw")
    pooled = _pooled(sites)
    model = smf.glm(FORMULA, data=pooled, family=sm.families.Binomial(), freq_weights=pooled.fw).fit()
    _close(result, model, 1e-5)
    facts = result.extra["model"]
    assert facts["converged"] and facts["weights"] == "frequency" and facts["n"] == len(pooled)
    assert facts["log_likelihood"] == pytest.approx(model.llf, rel=1e-6)


def test_robust_weights_match_glm_var_weights_with_hc0() -> None:
    """The standard IPW estimate: GLM(var_weights=w).fit(cov_type="HC0"), whose meat is sum w^2 r^2 x x'
    (GLM(freq_weights=w) with HC0 would count each row w times: sum w r^2 x x'). Two parties, as above; HC0
    over 3 parties: `test_unit_weights_are_the_unweighted_fit_with_one_more_round`."""
    sites = _sites(2, seed=42)
    result, _ = run_in_process(sites, f"LOGISTIC {FORMULA} WEIGHT ipw ROBUST")
    pooled = _pooled(sites)
    model = smf.glm(FORMULA, data=pooled, family=sm.families.Binomial(), var_weights=pooled.ipw).fit(cov_type="HC0")
    _close(result, model, 1e-5)
    facts = result.extra["model"]
    assert facts["cov_type"] == "HC0" and facts["weights"] == "inverse-probability"
    table = result.to_pandas().set_index("term")
    assert table.p_value["age"] == pytest.approx(model.pvalues["age"], rel=1e-2)


def test_unit_weights_are_the_unweighted_fit_with_one_more_round() -> None:
    """Over 3 parties (LOGISTIC's many-party case, weighted or not: one fitting path): unit weights give the
    unweighted fit, both statsmodels' GLM on the pooled rows, and with ROBUST its fit(cov_type="HC0")."""
    sites = _sites(3, seed=50)
    for s in sites:
        s["one"] = pd.array(np.ones(len(s)), dtype="Float64")
    plain, plain_plan = run_in_process(sites, f"LOGISTIC {FORMULA}")
    weighted, plan = run_in_process(sites, f"LOGISTIC {FORMULA} WEIGHT one")
    robust, robust_plan = run_in_process(sites, f"LOGISTIC {FORMULA} WEIGHT one ROBUST")
    its = [r.extra["model"]["iterations"] for r in (plain, weighted, robust)]  # equal but for a borderline decrement
    assert np.allclose(weighted.to_pandas().coef, plain.to_pandas().coef, rtol=1e-5)
    assert np.allclose(weighted.to_pandas().std_err, plain.to_pandas().std_err, rtol=1e-5)
    glm = smf.glm(FORMULA, data=_pooled(sites), family=sm.families.Binomial())
    _close(plain, glm.fit(), 1e-5)
    _close(weighted, glm.fit(), 1e-5)
    _close(robust, glm.fit(cov_type="HC0"), 1e-5)
    # the weighted log-likelihood w't rides with the information's product; only its truncation adds a round
    # (a warm Newton iteration is 44 rounds: `tests/queries/test_logistic_rounds.py`)
    assert plan.cost["rounds"] == plain_plan.cost["rounds"] + 1 + WARM * (its[1] - its[0])
    # HC0: W^2 Z published (1), mu from the final pass's reciprocal and sign (1), r^2 (2), the meat's product (1),
    # its lift (5) and low part (1), the sandwich (6)
    assert robust_plan.cost["rounds"] == plan.cost["rounds"] + 17 + WARM * (its[2] - its[1])


def test_bad_weights_are_refused() -> None:
    sites = _sites(2, seed=51)
    sites[1].loc[3, "ipw"] = -0.5
    with pytest.raises(BadWeights, match="'ipw' must be a finite number >= 0"):
        run_in_process(sites, f"LOGISTIC {FORMULA} WEIGHT ipw ROBUST")
    with pytest.raises(QueryError, match="the weight 'ipw' must be a finite number >= 0 in every row"):
        run_in_process(sites, "SELECT sex, AVG(bmi) GROUP BY sex WEIGHT ipw")
