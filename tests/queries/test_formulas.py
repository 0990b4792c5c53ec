"""LINEAR and LOGISTIC formulas mean what statsmodels.formula.api means: the same terms, in the
same order, with the same names, and the same coefficients and standard errors on the pooled rows;
a POISSON offset() is cut out of the design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from queries import ir
from queries.design import build, complete, local_matrix
from queries.engine import grouping_columns, local_domains, plan_query, run_in_process
from queries.errors import QueryError, RareLevel
from queries.offset import offset_columns
from queries.parser import parse
from queries.synth import cohort, split
from queries.table import Schema, normalize_frame, schema_of

INTEGER = ["age", "diabetes", "sbp", "outcome"]
NUMERIC = [*INTEGER, "bmi", "chol"]


@pytest.fixture(scope="module")
def sites() -> list[pd.DataFrame]:
    return split(cohort(700, seed=21), 2, seed=21)


def _reference(sites: list[pd.DataFrame], kind: str, outcome: str, formula: str, columns: tuple[str, ...]) -> object:
    pooled = pd.concat(sites, ignore_index=True)
    used = [outcome, *columns]
    data = pooled.dropna(subset=used).astype({c: "int64" if c in INTEGER else float for c in used if c in NUMERIC})
    data = data.astype({c: str for c in used if c not in NUMERIC})
    fit = smf.ols if kind == "LINEAR" else smf.logit
    return fit(f"{outcome} ~ {formula}", data).fit(**({} if kind == "LINEAR" else {"disp": 0}))


LINEAR = [
    "(age + bmi + C(sex))**2",
    "C(smoking, Treatment('never')) * C(sex) + I(age / 10) + np.log(bmi)",
    "smoking + sex + C(diabetes) + np.sqrt(chol) + chol",
    "C(sex, Treatment(reference='M')) + C(smoking) + bmi - 1",
    "age:C(smoking) + bmi - 1",
    "age + bmi - 1",
]
"""Fitted in MPC against statsmodels' OLS, each holding several of LINEAR_DESIGNS' term kinds: interactions of
numbers and categoricals, with and without main effects and intercept; reference levels; transforms; bare
categorical columns and an integer one in C(); the first categorical's full coding without intercept."""
LINEAR_DESIGNS = [
    *LINEAR,
    "age + bmi + C(smoking)",
    "age * C(sex)",
    "age + bmi + age:bmi",
    "C(smoking, Treatment('never')) + age",
    "I(age / 10) + np.log(bmi)",
    "bmi + C(smoking) - 1",
    "C(smoking) + C(sex) + age",
    "C(smoking) * C(sex)",
    "age + C(diabetes) + chol",
    "smoking + sex + np.sqrt(chol)",
    "C(sex, Treatment(reference='M')) + C(smoking) - 1",
]
"""Design matrices checked against statsmodels'; the fits of their term kinds are LINEAR's."""
LOGISTIC = [
    "age * C(sex) + bmi:age + C(diabetes) + sbp",
    "I(age / 10) + np.log(bmi) + C(smoking, Treatment('never'))",
    "C(smoking) + C(sex) - 1 + age",
]
"""Fitted in MPC against statsmodels' Logit: interactions (with and without their main effects), transforms
and a reference level, a design without intercept. age + bmi + C(smoking) with sbp and C(sex) is
`test_regression.py::test_logistic_matches_statsmodels`."""
LOGISTIC_DESIGNS = [*LOGISTIC, "age + bmi + C(smoking)", "age * C(sex) + sbp", "bmi:age + C(diabetes)"]


def _fit_both(sites: list[pd.DataFrame], kind: str, outcome: str, formula: str, rtol: float,
              atol: float) -> tuple[dict, tuple[str, ...], object]:
    """Fit `kind outcome ~ formula` in MPC and in statsmodels, check that the terms, coefficients
    and standard errors agree; the model facts, the plan's terms and statsmodels' fit."""
    result, plan = run_in_process(sites, f"{kind} {outcome} ~ {formula}")
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    ref = _reference(sites, kind, outcome, formula, stmt.columns)
    table = result.to_pandas()
    assert list(table.term) == list(ref.params.index)  # type: ignore[attr-defined]
    np.testing.assert_allclose(table.coef, ref.params, rtol=rtol, atol=atol)  # type: ignore[attr-defined]
    np.testing.assert_allclose(table.std_err, ref.bse, rtol=rtol)  # type: ignore[attr-defined]
    return result.extra["model"], plan.terms, ref


@pytest.mark.parametrize(("kind", "outcome", "formula"), [("LINEAR", "sbp", f) for f in LINEAR_DESIGNS]
                         + [("LOGISTIC", "outcome", f) for f in LOGISTIC_DESIGNS])
def test_design_matrix_is_statsmodels_design_matrix(sites: list[pd.DataFrame], kind: str, outcome: str,
                                                    formula: str) -> None:
    """What every party feeds the fit (`queries.design.build` and `local_matrix`, as `queries.regression` calls
    them) on the pooled rows is statsmodels' design matrix: the same columns, names, order and values."""
    pooled = normalize_frame(pd.concat(sites, ignore_index=True))
    schema = schema_of(pooled)
    text = f"{kind} {outcome} ~ {formula}"
    plan = plan_query(text, schema, local_domains([pooled], grouping_columns(parse(text), schema)))
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    design = build(stmt, {c: v for c, v in plan.levels if c != stmt.outcome})
    x, keep, _ = local_matrix(design, complete(stmt, pooled, design.columns))
    ref = _reference(sites, kind, outcome, formula, stmt.columns)
    assert list(design.names) == list(plan.terms) == list(ref.params.index)  # type: ignore[attr-defined]
    assert keep.all() and x.shape == ref.model.exog.shape  # type: ignore[attr-defined]
    np.testing.assert_allclose(x, ref.model.exog, rtol=1e-12, atol=0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("formula", LINEAR)
def test_linear_formula_matches_statsmodels(sites: list[pd.DataFrame], formula: str) -> None:
    model, terms, ref = _fit_both(sites, "LINEAR", "sbp", formula, rtol=1e-6, atol=1e-9)
    assert list(terms) == list(ref.params.index)  # type: ignore[attr-defined]
    assert model["n"] == int(ref.nobs)  # type: ignore[attr-defined]
    assert model["r_squared"] == pytest.approx(ref.rsquared, rel=1e-6)  # type: ignore[attr-defined]


@pytest.mark.parametrize("formula", LOGISTIC)
def test_logistic_formula_matches_statsmodels(sites: list[pd.DataFrame], formula: str) -> None:
    model, _, ref = _fit_both(sites, "LOGISTIC", "outcome", formula, rtol=1e-4, atol=1e-6)
    assert model["log_likelihood"] == pytest.approx(ref.llf, rel=1e-6)  # type: ignore[attr-defined]


def test_a_covariate_of_ten_million_is_fitted_exactly() -> None:
    frame = cohort(500, seed=4)
    rng = np.random.default_rng(4)
    frame["income"] = pd.array(np.round(rng.normal(1.2e7, 3e6, len(frame))), dtype="Float64")
    sites = split(frame, 3, seed=4)
    result, _ = run_in_process(sites, "LINEAR bmi ~ income + age")
    pooled = pd.concat(sites).dropna(subset=["bmi", "income", "age"]).astype({"age": float, "bmi": float})
    ref = smf.ols("bmi ~ income + age", pooled.astype({"income": float})).fit()
    table = result.to_pandas()
    np.testing.assert_allclose(table.coef, ref.params, rtol=1e-7)
    np.testing.assert_allclose(table.std_err, ref.bse, rtol=1e-7)
    np.testing.assert_allclose(table.p_value, ref.pvalues, rtol=1e-5)


def test_a_level_no_row_keeps_is_dropped_as_statsmodels_does(sites: list[pd.DataFrame]) -> None:
    query = "LINEAR sbp ~ age + C(smoking) WHERE smoking != 'never'"
    result, plan = run_in_process(sites, query)
    assert "C(smoking)[T.never]" in plan.terms  # the plan is made before any row is read
    pooled = pd.concat(sites)
    kept = pooled[pooled.smoking != "never"].dropna(subset=["sbp", "age"]).astype({"sbp": float, "age": float})
    ref = smf.ols("sbp ~ age + C(smoking)", kept.astype({"smoking": str})).fit()
    table = result.to_pandas()
    assert list(table.term) == list(ref.params.index)
    np.testing.assert_allclose(table.coef, ref.params, rtol=1e-6)
    assert result.extra["model"]["dropped_levels"] == {"smoking": ["never"]}
    with pytest.raises(RareLevel, match="fewer than 5"):  # without released zeros, an empty level is a small one
        run_in_process(sites, query, release_zero=False)


def test_a_two_level_categorical_outcome_is_coded_in_sorted_order(sites: list[pd.DataFrame]) -> None:
    result, plan = run_in_process(sites, "LOGISTIC sex ~ age + bmi")
    pooled = pd.concat(sites).dropna(subset=["age", "bmi"]).astype({"age": float, "bmi": float})
    pooled["male"] = (pooled.sex == "M").astype(float)
    ref = smf.logit("male ~ age + bmi", pooled).fit(disp=0)
    np.testing.assert_allclose(result.to_pandas().coef, ref.params, rtol=1e-4, atol=1e-6)
    assert result.extra["model"]["outcome_coding"] == "1 = 'M', 0 = 'F' (its levels in sorted order)"
    assert "outcome coding: 1 = 'M', 0 = 'F'" in plan.text()


SCHEMA = Schema((("age", "int"), ("sex", "category"), ("bmi", "float"), ("y", "float"), ("k", "int")))
DOMAINS = {"sex": ("F", "M"), "k": (0, 1, 2)}


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("LINEAR y ~ age + I(__import__('os').getcwd())", 18, "only columns, numbers"),
        ("LINEAR y ~ age + os.system('ls')", 18, "'os.system' is not allowed"),
        ("LINEAR y ~ __import__('os').system('ls')", 12, "bad formula"),
        ("LINEAR y ~ age | bmi", 12, "operator '|'"),
        ("LINEAR y ~ .", 12, "operator '.'"),
        ("LINEAR y ~ age + 2", 18, "a number alone"),
        ("LINEAR y ~ I(age ** 9 ** 9)", 12, "a power must be"),
        ("LINEAR y ~ age + (bmi", 18, "bad formula"),
        ("LINEAR y ~ C(sex, Sum)", 12, "Treatment(level)"),
        ("LINEAR y ~ age + y", 18, "also appears on the right"),
        ("LINEAR y ~ WHERE age > 1", 12, "at least one covariate"),
        ("LINEAR y ~ (age + bmi + k + sex + a + b + c + d + e + f)**9", 12, "more than 256 terms"),
    ],
)
def test_formula_errors_name_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(text)
    assert fragment in str(info.value) and info.value.position == position


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("LINEAR y ~ age + C(bmi)", "C(bmi) needs a categorical or integer column"),
        ("LINEAR y ~ k + C(k)", "both as a number and inside C()"),
        ("LINEAR y ~ C(sex, Treatment('X'))", "reference level"),
        ("LINEAR sex ~ age", "must be numeric"),
        ("LINEAR y ~ np.log(sex)", "cannot build the model's design"),
        ("LINEAR y ~ weight", "unknown column 'weight'"),
    ],
)
def test_plan_errors(text: str, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        plan_query(text, SCHEMA, DOMAINS)
    assert fragment in str(info.value)
    assert "'X'" not in str(info.value)  # a literal is never echoed


def test_the_policy_sees_every_column_a_formula_reads() -> None:
    stmt = parse("LOGISTIC y ~ I(age / 10) + np.log(bmi):C(k, Treatment(2)) + sex WHERE k > 0 MAXITER 9")
    assert ir.statement_columns(stmt) == {"y", "age", "bmi", "k", "sex"}
    assert isinstance(stmt, ir.Regression) and stmt.maxiter == 9 and stmt.categorical == ("k",)


def test_explain_lists_the_design_in_statsmodels_order() -> None:
    plan = plan_query("EXPLAIN LINEAR y ~ age * C(sex) + C(k, Treatment(2)) - 1", SCHEMA, DOMAINS)
    assert plan.terms == ("C(sex)[F]", "C(sex)[M]", "C(k, Treatment(2))[T.0]", "C(k, Treatment(2))[T.1]", "age",
                          "age:C(sex)[T.M]")
    assert "design (6 columns): C(sex)[F], C(sex)[M]" in plan.text()


def test_an_infinite_transformed_value_fails_with_a_clear_error() -> None:
    sites = [s.assign(bmi=s.bmi.fillna(20.0)) for s in split(cohort(200, seed=8), 2, seed=8)]
    sites[1].loc[3, "bmi"] = 0.0
    with pytest.raises(QueryError, match="infinite .e.g. np.log of 0."):
        run_in_process(sites, "LINEAR sbp ~ np.log(bmi)")
    result, _ = run_in_process(sites, "LINEAR sbp ~ np.log(bmi) WHERE bmi > 0")
    pooled = pd.concat(sites)
    assert result.extra["model"]["n"] == int((pooled.sbp.notna() & (pooled.bmi > 0)).sum())


NAMES_ONLY = [
    "x + C(a)", "C(a) + x - 1", "x*C(a)", "a + b + x:b", "I(x/10) + np.log(np.abs(x))", 'C(a, Treatment("q")) + x',
    "C(a, Treatment('q')) + x", "C(a):C(b)", "x:C(a) - 1", "a:b + x", "x + z + x:z + C(k)", "a*b",
    "x + C(a) + C(b) - 1", "np.log(x) + I(x**2)", "(x+z+a)**2", "z + x:z + x", "C(a):x", "a:x + a", "np.log(x):a",
    "a/b", "x/a", "(a+b)**2 - 1", "a + x + a:x - 1", "(x + z + a + b)**3", "I((x-1)*2) + I(-x)", "a*b*x",
    "x:z:a + a", "0 + a + x", "C(k, Treatment(2)):x + C(k, Treatment(2))", "x + I(x ** 2) + I(x ** 3)",
    "np.exp(z) + np.sqrt(x) + np.log1p(x)", 'C(a, Treatment(reference="r"))*C(b)',
]


@pytest.mark.parametrize("formula", NAMES_ONLY)
def test_design_names_and_order_match_statsmodels(formula: str) -> None:
    """The plan's design columns (made before any row is read) are statsmodels' columns, in its order."""
    import warnings

    rng = np.random.default_rng(0)
    n = 60
    raw = pd.DataFrame({"y": rng.normal(size=n), "x": rng.uniform(1, 3, n), "z": rng.normal(size=n),
                        "a": rng.choice(["p", "q", "r"], n), "b": rng.choice(["u", "v"], n),
                        "k": rng.integers(0, 3, n)})
    frame = normalize_frame(raw)
    schema = schema_of(frame)
    text = f"LINEAR y ~ {formula}"
    plan = plan_query(text, schema, local_domains([frame], grouping_columns(parse(text), schema)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = list(smf.ols(f"y ~ {formula}", raw).fit().params.index)
    assert list(plan.terms) == want


@pytest.mark.parametrize(
    ("formula", "design", "code"),
    [
        ("smoker + C(agegroup) + offset(np.log(person_years))", "smoker + C(agegroup)", "np.log(person_years)"),
        ("offset(log(py)) + a", "a", "log(py)"),
        ("a + offset( np.log(py) ) + b - 1", "a + b - 1", "np.log(py)"),
        ("a + offset(py / 1000)", "a", "py / 1000"),
    ],
)
def test_an_offset_is_cut_out_of_the_design(formula: str, design: str, code: str) -> None:
    stmt = parse(f"POISSON y ~ {formula}")
    assert isinstance(stmt, ir.Regression)
    assert (stmt.formula, stmt.offset) == (design, code)
    assert stmt.model_text() == f"y ~ {design} + offset({code})"
    assert set(offset_columns(code)) <= set(stmt.columns)  # the policy sees the exposure column
