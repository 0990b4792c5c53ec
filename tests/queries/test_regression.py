"""LINEAR and LOGISTIC against statsmodels on the pooled rows, and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from queries.engine import run_in_process
from queries.errors import (
    Collinear,
    ModelRefused,
    NoEstimate,
    NotConverged,
    OutcomeNotBinary,
    RareLevel,
    TooFewCases,
    TooManyParameters,
    refusal_error,
)
from queries.synth import cohort, split
from queries.table import normalize_frame


def _reference(sites: list[pd.DataFrame], formula: str, columns: list[str], logit: bool) -> object:
    pooled = pd.concat(sites, ignore_index=True).dropna(subset=columns)
    numeric = {c: float for c in columns if c not in ("sex", "smoking")}
    data = pooled.astype(numeric)
    return (smf.logit if logit else smf.ols)(formula, data=data).fit(**({"disp": 0} if logit else {}))


def _check(result: object, model: object, coef_rel: float = 1e-3) -> None:
    table = result.to_pandas().set_index("term")  # type: ignore[attr-defined]
    params, bse = model.params, model.bse  # type: ignore[attr-defined]
    assert set(table.index) == set(params.index)
    for term in params.index:
        tol = max(coef_rel * abs(params[term]), 1e-4)
        assert abs(table.coef[term] - params[term]) <= tol, term
        assert abs(table.std_err[term] - bse[term]) <= max(coef_rel * bse[term], 1e-4), term
        p_ref = model.pvalues[term]  # type: ignore[attr-defined]
        assert table.p_value[term] == pytest.approx(p_ref, rel=0.01, abs=1e-12), term  # two significant figures


def test_linear_matches_statsmodels() -> None:
    """Two parties; LINEAR's many-party case is `test_weight_linear.py::test_robust_weights_match_wls_with_hc0[5]`
    (the same fitting path, with a weight and HC0, to a tighter tolerance)."""
    sites = split(cohort(1500, seed=2), 2, seed=2)
    result, _ = run_in_process(sites, "LINEAR sbp ~ age + bmi + chol + C(smoking) + diabetes")
    model = _reference(sites, "sbp ~ age + bmi + chol + C(smoking) + diabetes",
                       ["sbp", "age", "bmi", "chol", "smoking", "diabetes"], logit=False)
    _check(result, model)
    facts = result.extra["model"]
    assert facts["n"] == int(model.nobs)
    assert facts["r_squared"] == pytest.approx(model.rsquared, rel=1e-6)
    assert facts["residual_std_error"] == pytest.approx(np.sqrt(model.scale), rel=1e-6)


def test_logistic_matches_statsmodels() -> None:
    """Two parties; LOGISTIC over three against statsmodels is
    `test_weight_logistic.py::test_unit_weights_are_the_unweighted_fit_with_one_more_round` (unweighted and
    unit-weighted: one fitting path)."""
    sites = split(cohort(2500, seed=12), 2, seed=2)
    result, _ = run_in_process(sites, "LOGISTIC outcome ~ age + bmi + sbp + C(sex) + C(smoking) WHERE chol IS NOT NULL")
    pooled = [s[s.chol.notna()] for s in sites]
    model = _reference(pooled, "outcome ~ age + bmi + sbp + C(sex) + C(smoking)",
                       ["outcome", "age", "bmi", "sbp", "sex", "smoking"], logit=True)
    _check(result, model)
    facts = result.extra["model"]
    assert facts["converged"] and facts["n"] == int(model.nobs)
    assert facts["log_likelihood"] == pytest.approx(model.llf, rel=1e-5)
    table = result.to_pandas().set_index("term")
    assert table.odds_ratio["age"] == pytest.approx(np.exp(model.params["age"]), rel=1e-3)


def test_too_few_complete_cases_is_refused_with_the_reason_only() -> None:
    sites = split(cohort(60, seed=1), 2, seed=1)
    with pytest.raises(TooFewCases, match="fewer than 5 complete cases") as info:
        run_in_process(sites, "LINEAR sbp ~ age WHERE age > 88", min_cell=5)
    assert info.value.reason == "too_few_cases" and isinstance(info.value, ModelRefused)


def test_too_many_parameters_is_refused() -> None:
    rng = np.random.default_rng(3)
    sites = [normalize_frame(pd.DataFrame(rng.normal(size=(6, 6)), columns=list("yabcde"))) for _ in range(2)]
    with pytest.raises(TooManyParameters, match="6 parameters is more than 0.33 of the complete cases"):
        run_in_process(sites, "LINEAR y ~ a + b + c + d + e", min_cell=3)  # 6 parameters, 12 rows


def test_a_rare_dummy_level_is_refused() -> None:
    rng = np.random.default_rng(0)
    def site(n: int, rare: int) -> pd.DataFrame:
        group = ["common"] * (n - rare) + ["rare"] * rare
        return normalize_frame(pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "g": group}))
    with pytest.raises(RareLevel, match="a level of 'g' has fewer than 5 complete cases"):
        run_in_process([site(60, 1), site(60, 2)], "LINEAR y ~ x + C(g)", min_cell=5)


def test_a_rare_cell_of_two_categoricals_is_refused() -> None:
    rng = np.random.default_rng(2)
    def site(n: int) -> pd.DataFrame:
        a = rng.choice(["p", "q"], n)
        b = np.where(a == "q", "u", rng.choice(["u", "v"], n))  # the cell (q, v) is empty
        b[:2] = "v"
        a[:2] = "q"  # ... but for two rows per site
        return normalize_frame(pd.DataFrame({"y": rng.normal(size=n), "a": a, "b": b}))
    with pytest.raises(RareLevel, match="a level or a cell of categorical terms"):
        run_in_process([site(60), site(60)], "LINEAR y ~ C(a) * C(b)", min_cell=5)


def test_collinear_covariates_are_refused() -> None:
    sites = split(cohort(300, seed=2), 2, seed=2)
    with pytest.raises(Collinear, match="collinear"):
        run_in_process(sites, "LINEAR sbp ~ age + I(2 * age + 1)")


def test_perfect_separation_is_refused() -> None:
    rng = np.random.default_rng(1)
    def site(n: int) -> pd.DataFrame:
        x = rng.normal(size=n)
        return normalize_frame(pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": (x > 0).astype(int)}))
    with pytest.raises((NoEstimate, NotConverged), match="separation"):
        run_in_process([site(80), site(70)], "LOGISTIC y ~ x + z")


def test_non_convergence_is_refused() -> None:
    sites = split(cohort(800, seed=4), 2, seed=4)
    with pytest.raises(NotConverged, match="did not converge in 2 iterations"):
        run_in_process(sites, "LOGISTIC outcome ~ age + bmi MAXITER 2")


@pytest.mark.parametrize(
    ("recode", "fragment"),
    [
        (lambda f: f.assign(outcome=f.outcome + 1), "has other values"),  # coded 1/2
        (lambda f: f.assign(outcome=f.bmi), "has other values"),  # continuous
        (lambda f: f.assign(outcome=f.smoking), "has 3 levels"),  # a 3-level categorical
    ],
    ids=["coded-1-2", "continuous", "three-levels"],
)
def test_logistic_needs_a_binary_outcome(recode: object, fragment: str) -> None:
    sites = [recode(s) for s in split(cohort(300, seed=6), 2, seed=6)]  # type: ignore[operator]
    with pytest.raises(OutcomeNotBinary) as info:
        run_in_process(sites, "LOGISTIC outcome ~ age + C(sex)")
    assert fragment in str(info.value) and "0/1" in str(info.value)
    assert info.value.reason == "outcome_not_binary"
    assert refusal_error("outcome_not_binary", "m").__class__ is OutcomeNotBinary
