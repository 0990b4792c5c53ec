"""COX over MPC against the pooled plaintext: statsmodels' PHReg with Breslow ties on tied (whole-month)
times, and lifelines' CoxPHFitter where no two events share a time (lifelines handles ties by Efron's
method, which equals Breslow's without ties); coefficients, standard errors, z, p, CIs and hazard ratios."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from queries.engine import predict_cost, run_in_process
from queries.plan import Plan
from queries.result import Result
from queries.synth import cohort, follow_up
from queries.table import check_schemas, schema_of

# Tests that share one run land on one pytest-xdist worker, so the run is made once.
SHARED_SIX_PARAMETERS = pytest.mark.xdist_group("test_cox:six-parameters")

lifelines = pytest.importorskip("lifelines")
phreg = pytest.importorskip("statsmodels.duration.hazard_regression")

TOL = 1e-4
QUERY = "COX months, died ~ age + C(smoking)"


def sites(sizes: tuple[int, ...], seed: int = 0) -> list[pd.DataFrame]:
    return [follow_up(cohort(n, seed=seed + i), seed=seed + i) for i, n in enumerate(sizes)]


def design(frame: pd.DataFrame) -> pd.DataFrame:
    """age and the smoking dummies (reference 'current', as formulaic's first level), as floats."""
    out = pd.DataFrame({"age": frame["age"].astype(float).to_numpy()})
    for level in ("former", "never"):
        out[f"C(smoking)[T.{level}]"] = (frame["smoking"].astype(str).to_numpy() == level).astype(float)
    return out


def assert_table(table: pd.DataFrame, coef: np.ndarray, se: np.ndarray) -> None:
    from scipy import stats

    np.testing.assert_allclose(table["coef"], coef, rtol=TOL)
    np.testing.assert_allclose(table["std_err"], se, rtol=TOL)
    np.testing.assert_allclose(table["z"], coef / se, rtol=TOL)
    np.testing.assert_allclose(table["p_value"], 2 * stats.norm.sf(np.abs(coef / se)), rtol=10 * TOL)
    lo, hi = coef - 1.959963984540054 * se, coef + 1.959963984540054 * se
    np.testing.assert_allclose(table[["ci_low", "ci_high"]], np.column_stack([lo, hi]), rtol=TOL, atol=TOL * se.max())
    np.testing.assert_allclose(table["hazard_ratio"], np.exp(coef), rtol=TOL)
    np.testing.assert_allclose(table[["hr_ci_low", "hr_ci_high"]], np.exp(np.column_stack([lo, hi])), rtol=TOL)


@pytest.mark.parametrize("sizes", [(260, 140), (120, 60, 90, 150, 80)])
def test_matches_breslow_partial_likelihood_on_tied_months(sizes: tuple[int, ...]) -> None:
    """Two parties and five (COX's many-party case); the six-parameter test runs three."""
    frames = sites(sizes)
    result, plan = run_in_process(frames, QUERY)
    pooled = pd.concat(frames, ignore_index=True)
    x = design(pooled)
    ref = phreg.PHReg(pooled["months"].astype(float).to_numpy(), x.to_numpy(),
                      status=pooled["died"].astype(float).to_numpy(), ties="breslow").fit()
    table = result.to_pandas().set_index("term").loc[list(x.columns)]
    assert_table(table, np.asarray(ref.params), np.asarray(ref.bse))
    model = result.extra["model"]
    assert model["n"] == len(pooled) and model["events"] == int(pooled["died"].sum()) and model["converged"]


@functools.cache
def six_parameters() -> tuple[list[pd.DataFrame], Result, Plan]:
    """Three sites and the run of the benchmark's model with a WHERE: the fit whose estimates
    `test_six_parameters_with_decimal_and_binary_covariates` checks and whose rounds
    `test_explain_predicts_the_rounds_exactly` does (the same run, made once)."""
    frames = sites((400, 250, 300), seed=5)
    query = "COX months, died ~ age + C(sex) + C(smoking) + bmi + diabetes WHERE age > 25"
    result, plan = run_in_process(frames, query)
    return frames, result, plan


@SHARED_SIX_PARAMETERS
def test_six_parameters_with_decimal_and_binary_covariates() -> None:
    """The benchmark's model: age, sex, smoking (two dummies), bmi (decimals) and diabetes, on the rows of
    age > 25."""
    frames, result, _ = six_parameters()
    pooled = pd.concat(frames, ignore_index=True)
    pooled = pooled[pooled["age"] > 25].reset_index(drop=True)
    x = design(pooled)
    x["C(sex)[T.M]"] = (pooled["sex"].astype(str).to_numpy() == "M").astype(float)
    x["bmi"] = pooled["bmi"].astype(float).to_numpy()
    x["diabetes"] = pooled["diabetes"].astype(float).to_numpy()
    ref = phreg.PHReg(pooled["months"].astype(float).to_numpy(), x.to_numpy(),
                      status=pooled["died"].astype(float).to_numpy(), ties="breslow").fit()
    table = result.to_pandas().set_index("term").loc[list(x.columns)]
    assert len(result.rows) == 6
    assert_table(table, np.asarray(ref.params), np.asarray(ref.bse))


def test_a_covariate_far_from_zero_is_centred_not_refused() -> None:
    """year = age + 1000: x'beta is about 21 at every row, beyond exp's range, yet the fit is that of the
    centred linear predictor (the partial likelihood does not change when a constant is added to it).
    The standard error of such a column is held to 1e-3: its pairwise products keep 20 bits of year / 2048.
    Two parties: the centring is one party-independent step (three and five: the tests above)."""
    frames = [f.assign(year=f["age"].astype(float) + 1000.0) for f in sites((240, 200))]
    result, _ = run_in_process(frames, "COX months, died ~ year + C(smoking)")
    pooled = pd.concat(frames, ignore_index=True)
    x = design(pooled).rename(columns={"age": "year"})
    x["year"] = pooled["year"].to_numpy()
    ref = phreg.PHReg(pooled["months"].astype(float).to_numpy(), x.to_numpy(),
                      status=pooled["died"].astype(float).to_numpy(), ties="breslow").fit()
    table = result.to_pandas().set_index("term").loc[list(x.columns)]
    assert float(np.asarray(ref.params)[0]) * 1000 > 11.8  # uncentred, exp(x'beta) would be beyond the cap
    np.testing.assert_allclose(table["coef"], np.asarray(ref.params), rtol=TOL)
    np.testing.assert_allclose(table["std_err"], np.asarray(ref.bse), rtol=1e-3)


def distinct_times(sizes: tuple[int, ...], seed: int) -> list[pd.DataFrame]:
    """Follow-up in whole days where no two rows share a time: Breslow's and Efron's likelihoods agree."""
    rng = np.random.default_rng(seed)
    frames = sites(sizes, seed)
    days = rng.permutation(np.arange(1, sum(sizes) + 1))
    start = 0
    out = []
    for f in frames:
        age = f["age"].astype(float).to_numpy()
        risk = np.exp(0.03 * (age - 50) + 0.5 * (f["smoking"].astype(str).to_numpy() == "current"))
        order = np.argsort(-risk + rng.normal(0, 1.0, len(f)))  # higher risk, earlier on average
        mine = np.sort(days[start : start + len(f)])
        t = np.empty(len(f), dtype=np.int64)
        t[order] = mine
        start += len(f)
        out.append(f.assign(days=pd.array(t, dtype="Int64")))
    return out


def test_matches_lifelines_without_tied_times() -> None:
    """Two parties: what differs here is the ties, not the parties (three and five: the tests above)."""
    frames = distinct_times((100, 70), seed=7)  # 170 distinct days: a grid point per row
    result, _ = run_in_process(frames, "COX days, died ~ age + C(smoking)")
    pooled = pd.concat(frames, ignore_index=True)
    x = design(pooled).assign(days=pooled["days"].astype(float).to_numpy(),
                              died=pooled["died"].astype(float).to_numpy())
    cph = lifelines.CoxPHFitter(penalizer=0).fit(x, "days", "died")
    table = result.to_pandas().set_index("term").loc[list(cph.params_.index)]
    assert_table(table, cph.params_.to_numpy(), cph.standard_errors_.to_numpy())
    np.testing.assert_allclose(table["hazard_ratio"], cph.hazard_ratios_.to_numpy(), rtol=TOL)


@SHARED_SIX_PARAMETERS
def test_explain_predicts_the_rounds_exactly() -> None:
    """The stand-ins pass the WHERE; the counted rounds are those of the six-parameter fit's run."""
    frames, _, plan = six_parameters()
    predicted = predict_cost(plan, check_schemas([schema_of(f) for f in frames]), len(frames))
    assert predicted["rounds"] == plan.cost["rounds"] and predicted["fixed_iterations"] == 6
    assert "rounds exact" in replace(plan, cost=predicted).text()


@pytest.mark.network
def test_cox_through_real_nodes(tmp_path) -> None:  # noqa: ANN001
    from parties.local import LocalConsortium

    frames = sites((150, 110), seed=11)
    files = {}
    for name, frame in zip(("a", "b"), frames):
        files[name] = tmp_path / f"{name}.csv"
        frame.to_csv(files[name], index=False)
    with LocalConsortium(["a", "b"], data=files) as consortium:
        result = consortium.query(QUERY, min_cell=5)
    pooled = pd.concat(frames, ignore_index=True)
    x = design(pooled)
    ref = phreg.PHReg(pooled["months"].astype(float).to_numpy(), x.to_numpy(),
                      status=pooled["died"].astype(float).to_numpy(), ties="breslow").fit()
    table = result.to_pandas().set_index("term").loc[list(x.columns)]
    assert_table(table, np.asarray(ref.params), np.asarray(ref.bse))
    assert result.extra["model"]["method"].startswith("Cox proportional hazards")
