"""POISSON against statsmodels' Poisson GLM on the pooled rows, with and without an offset, and its refusals.

The reference is `smf.glm(..., family=Poisson(), offset=np.log(person_years))` fitted to a relative
deviance change of 1e-12: at statsmodels' default (1e-8) its own standard errors are still up to
~1e-6 from the optimum, the size of the tolerance checked here.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from queries.engine import run_in_process
from queries.errors import (
    Collinear,
    ModelRefused,
    NoEstimate,
    NotConverged,
    OffsetNotPositive,
    OutcomeNotCount,
    OutOfRange,
    QueryError,
    refusal_error,
)
from queries.plan import Plan
from queries.result import Result
from queries.table import normalize_frame

AGES = ("40-49", "50-59", "60-69", "70+")
EFFECT = {"40-49": 0.0, "50-59": 0.6, "60-69": 1.2, "70+": 1.8}
MODEL = "deaths ~ smoker + C(agegroup) + offset(np.log(person_years))"
WHERE_QUERY = ("POISSON deaths ~ C(agegroup) + smoker + offset(log(person_years)) WHERE bmi < 32 AND person_years > 0 "
               "MAXITER 6")
SHARED_WHERE_RUN = pytest.mark.xdist_group("test_poisson:where-run")


def incidence(rows: int, seed: int, ages: tuple[str, ...] = AGES) -> pd.DataFrame:
    """One site's strata: deaths over person-years by smoking and age group, and a BMI."""
    rng = np.random.default_rng(seed)
    age = rng.choice(ages, rows)
    smoker = rng.integers(0, 2, rows)
    bmi = rng.normal(27, 4, rows).round(1)
    person_years = rng.uniform(50, 4000, rows).round(1)
    rate = np.exp(-6.0 + 0.5 * smoker + 0.03 * (bmi - 27) + np.array([EFFECT[a] for a in age]))
    deaths = rng.poisson(rate * person_years)
    return normalize_frame(pd.DataFrame({"deaths": deaths, "smoker": smoker, "agegroup": age, "bmi": bmi,
                                         "person_years": person_years}))


def sites_for(parties: int, seed: int = 0) -> list[pd.DataFrame]:
    """Unequal sites; the first has no one aged 70+ (the levels are agreed across sites)."""
    sizes = [170, 60, 230, 90, 120][:parties]
    return [incidence(n, seed + i, AGES[:3] if i == 0 else AGES) for i, n in enumerate(sizes)]


def reference(sites: list[pd.DataFrame], formula: str, offset: bool = True) -> object:
    pooled = pd.concat(sites, ignore_index=True).astype({"deaths": float, "smoker": float, "bmi": float,
                                                        "person_years": float})
    extra = {"offset": np.log(pooled.person_years)} if offset else {}
    return smf.glm(formula, data=pooled, family=sm.families.Poisson(), **extra).fit(tol=1e-12, maxiter=100)


def check(result: object, model: object, rel: float = 1e-6) -> pd.DataFrame:
    table = result.to_pandas().set_index("term")  # type: ignore[attr-defined]
    params, bse = model.params, model.bse  # type: ignore[attr-defined]
    assert list(table.index) == list(params.index)
    assert np.allclose(table.coef, params, rtol=rel, atol=0)
    assert np.allclose(table.std_err, bse, rtol=rel, atol=0)
    assert np.allclose(table.z, model.tvalues, rtol=2 * rel)  # type: ignore[attr-defined]
    assert np.allclose(table.p_value, model.pvalues, rtol=1e-4, atol=1e-300)  # type: ignore[attr-defined]
    ci = model.conf_int()  # type: ignore[attr-defined]
    assert np.allclose(table[["ci_low", "ci_high"]], ci, rtol=2 * rel)
    assert np.allclose(table.irr, np.exp(params), rtol=2 * rel)
    assert np.allclose(table[["irr_ci_low", "irr_ci_high"]], np.exp(ci), rtol=2 * rel)
    facts = result.extra["model"]  # type: ignore[attr-defined]
    assert facts["converged"] and facts["n"] == int(model.nobs) and facts["df_resid"] == int(model.df_resid)  # type: ignore[attr-defined]
    assert facts["log_likelihood"] == pytest.approx(model.llf, rel=1e-9)  # type: ignore[attr-defined]
    assert facts["pearson_chi2"] == pytest.approx(model.pearson_chi2, rel=1e-4)  # type: ignore[attr-defined]
    assert facts["dispersion"] == pytest.approx(model.pearson_chi2 / model.df_resid, rel=1e-4)  # type: ignore[attr-defined]
    return table


def test_rates_with_an_offset_match_statsmodels() -> None:
    """Five parties: POISSON's many-party case, for the weighted fits too (`test_weight_poisson.py` shares this
    fitting path), with the default MAXITER. The same model on two parties is
    `test_offset_written_as_r_writes_it_and_a_where_and_maxiter`'s."""
    sites = sites_for(5, seed=5)
    result, plan = run_in_process(sites, f"POISSON {MODEL}")
    check(result, reference(sites, "deaths ~ smoker + C(agegroup)"))
    facts = result.extra["model"]
    assert facts["iterations"] == 10 and facts["formula"] == MODEL
    assert facts["method"] == "Poisson GLM, log link (MLE, Newton-Raphson)"
    assert plan.cost["rounds"] > 0


def test_counts_without_an_offset_and_a_continuous_covariate() -> None:
    """Two parties: what differs here is the design, not the parties (five: the test above); MAXITER 6, as the
    offset written as R writes it: Newton has converged by then (else the fit is refused)."""
    sites = sites_for(2, seed=11)
    result, _ = run_in_process(sites, "POISSON deaths ~ smoker + bmi + C(agegroup) WHERE person_years > 1000 MAXITER 6")
    pooled = [s[s.person_years > 1000] for s in sites]
    check(result, reference(pooled, "deaths ~ smoker + bmi + C(agegroup)", offset=False))


def exposure_sites() -> list[pd.DataFrame]:
    """Two sites; the first has a person-time of 0 in a row with a BMI below 32."""
    sites = sites_for(2, seed=21)
    first = sites[0]
    zero = first.index[first.bmi < 32][0]
    sites[0] = normalize_frame(first.assign(person_years=first.person_years.where(first.index != zero, 0.0)))
    return sites


@functools.cache
def where_run() -> tuple[Result, Plan]:
    """`WHERE_QUERY` on `exposure_sites()`: one run shared by the tests of the offset and of the exposure."""
    return run_in_process(exposure_sites(), WHERE_QUERY)


@SHARED_WHERE_RUN
def test_offset_written_as_r_writes_it_and_a_where_and_maxiter() -> None:
    result, _ = where_run()
    pooled = [s[(s.bmi < 32) & (s.person_years > 0)] for s in exposure_sites()]
    check(result, reference(pooled, "deaths ~ C(agegroup) + smoker"))
    assert result.extra["model"]["iterations"] == 6  # a fixed schedule: exactly MAXITER


@pytest.mark.parametrize(
    ("recode", "fragment"),
    [
        (lambda f: f.assign(deaths=f.deaths.where(f.index != 3, -1)), "negative or fractional"),
        (lambda f: f.assign(deaths=f.deaths.astype(float).where(f.index != 5, 2.5)), "negative or fractional"),
    ],
    ids=["negative", "fractional"],
)
def test_the_outcome_must_be_counts(recode: object, fragment: str) -> None:
    sites = sites_for(2, seed=3)
    sites[1] = normalize_frame(recode(sites[1]))  # type: ignore[operator]
    with pytest.raises(OutcomeNotCount, match=fragment) as info:
        run_in_process(sites, f"POISSON {MODEL}")
    assert "'deaths'" in str(info.value) and info.value.reason == "outcome_not_count"
    assert refusal_error("outcome_not_count", "m").__class__ is OutcomeNotCount


@SHARED_WHERE_RUN
def test_a_non_positive_exposure_is_refused_and_nothing_is_released() -> None:
    """The rows excluded with WHERE are fitted: the run (`WHERE_QUERY`, checked against statsmodels by
    `test_offset_written_as_r_writes_it_and_a_where_and_maxiter`) counts every row with a BMI below 32 but the one
    of person-time 0."""
    sites = exposure_sites()
    with pytest.raises(OffsetNotPositive, match="the exposure person_years in offset") as info:
        run_in_process(sites, f"POISSON {MODEL}")
    assert "must be positive at every complete case" in str(info.value)
    assert info.value.plan.cost["rounds"] < 100  # type: ignore[attr-defined]  # refused before the fit
    with pytest.raises(OffsetNotPositive, match="must be a finite number below 512"):
        run_in_process(sites, "POISSON deaths ~ smoker + offset(1 / (person_years - person_years))")
    kept, _ = where_run()  # excluded with WHERE: fitted
    assert kept.extra["model"]["n"] == sum(int((s.bmi < 32).sum()) for s in sites) - 1


def test_a_level_without_events_has_no_estimate() -> None:
    """statsmodels' GLM returns a coefficient running off to minus infinity with a huge standard
    error for such a level; POISSON refuses."""
    sites = sites_for(2, seed=5)
    sites = [normalize_frame(s.assign(deaths=s.deaths.where(s.agegroup != "50-59", 0))) for s in sites]
    with pytest.raises(NoEstimate, match="has no events"):
        run_in_process(sites, f"POISSON {MODEL}")
    ref = reference(sites, "deaths ~ smoker + C(agegroup)")
    assert ref.params["C(agegroup)[T.50-59]"] < -15 and ref.bse["C(agegroup)[T.50-59]"] > 100  # type: ignore[attr-defined]


def test_collinear_covariates_are_refused() -> None:
    sites = sites_for(2, seed=6)
    with pytest.raises(Collinear, match="collinear"):
        run_in_process(sites, "POISSON deaths ~ bmi + I(2 * bmi + 1) + offset(np.log(person_years))")
    with pytest.raises(Collinear, match="collinear"):
        run_in_process(sites, f"POISSON {MODEL} WHERE smoker = 1")  # smoker is the intercept here


def test_too_few_newton_iterations_are_refused() -> None:
    """Rates spanning e^-12 to e^6 and exposures e^-2 to e^12: two iterations are not enough."""
    rng = np.random.default_rng(7)
    sites = []
    for n in (300, 120):
        x = rng.normal(0, 1, n).round(3)
        g = rng.choice(list("abcd"), n)
        py = np.exp(rng.uniform(-2, 12, n)).round(3)
        rate = np.exp(-10 + 1.5 * x + np.array([{"a": 0, "b": 2, "c": -2, "d": 4}[v] for v in g]))
        sites.append(normalize_frame(pd.DataFrame({"y": rng.poisson(np.minimum(rate * py, 1e5)), "x": x, "g": g,
                                                   "py": py})))
    with pytest.raises(NotConverged, match="did not converge in 2 iterations .*raise it"):
        run_in_process(sites, "POISSON y ~ x + C(g) + offset(np.log(py)) MAXITER 2")


def test_counts_and_fitted_counts_beyond_the_range_are_refused_naming_the_bound() -> None:
    sites = sites_for(2, seed=8)
    big = [normalize_frame(s.assign(deaths=s.deaths.where(s.index != 0, 2**25))) for s in sites]
    with pytest.raises(OutOfRange, match=r"a count above 2\^24 \(16777216\)"):
        run_in_process(big, f"POISSON {MODEL}")
    # 2 x 1024 rows with 255 events per unit of exposure, and one of 10^4 units without an event:
    # the rate's MLE gives that row ~4e5 expected events, above 2^21 / 2048 rows x 2^8. The bit is opened
    # in the final pass, after the fixed schedule, whatever its length: MAXITER 2 reaches the same refusal
    # (the same bound) as the default 10 with half the rounds.
    rng = np.random.default_rng(8)
    def site(n: int, huge: bool) -> pd.DataFrame:
        exposure = np.ones(n)
        deaths = np.full(n, 255)
        if huge:
            exposure[0], deaths[0] = 1e4, 0
        return normalize_frame(pd.DataFrame({"deaths": deaths, "x": rng.uniform(0, 1, n), "e": exposure}))
    with pytest.raises(OutOfRange, match=r"a fitted count reaches 262144, the fixed-point range .*2048 padded rows"):
        run_in_process([site(1024, True), site(1024, False)], "POISSON deaths ~ x + offset(np.log(e)) MAXITER 2")


@pytest.mark.parametrize(
    ("query", "fragment", "at"),
    [
        ("LINEAR deaths ~ smoker + offset(np.log(person_years))", "offset() applies to POISSON only", "offset"),
        ("POISSON deaths ~ smoker * offset(np.log(person_years))", "a term of its own", "offset"),
        ("POISSON deaths ~ smoker - offset(np.log(person_years))", "a term of its own", "offset"),
        ("POISSON deaths ~ smoker + offset(person_years) + offset(bmi)", "one offset()", "offset(bmi)"),
        ("POISSON deaths ~ smoker + offset(np.log(2))", "must read a column", "offset"),
        ("POISSON deaths ~ smoker + offset(foo(person_years))", "only columns, numbers", "offset"),
        ("POISSON deaths ~ smoker + offset(np.log(deaths))", "also appears on the right", "deaths))"),
    ],
)
def test_misplaced_offsets_are_parse_errors(query: str, fragment: str, at: str) -> None:
    sites = sites_for(2)
    with pytest.raises(QueryError, match=re.escape(fragment)) as info:
        run_in_process(sites, query)
    assert info.value.position == query.index(at) + 1


def test_plan_time_refusals_name_the_column() -> None:
    sites = sites_for(2)
    with pytest.raises(QueryError, match="the outcome 'agegroup' of POISSON must be numeric"):
        run_in_process(sites, "POISSON agegroup ~ smoker")
    with pytest.raises(QueryError, match="offset\\(\\) needs numeric columns; 'agegroup' is categorical"):
        run_in_process(sites, "POISSON deaths ~ smoker + offset(agegroup)")


def test_refusals_are_model_refusals_with_their_reasons() -> None:
    for cls, reason in ((OutcomeNotCount, "outcome_not_count"), (OffsetNotPositive, "offset_not_positive"),
                        (OutOfRange, "out_of_range")):
        assert issubclass(cls, ModelRefused) and cls.reason == reason
        assert type(refusal_error(reason, "why")) is cls
