"""EXPLAIN's predictions against the counters of real in-process runs, for every statement kind."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from queries.cost import quantile_scales, stand_in_rows, stand_ins
from queries.engine import plan_query, predict_cost, run_in_process
from queries.order_keys import scale_of
from queries.synth import cohort, split
from queries.table import check_schemas, schema_of

KEYS = ("rounds", "bytes_sent", "messages_sent", "dealer_requests", "dealer_bytes")


@pytest.fixture(scope="module")
def sites() -> list[pd.DataFrame]:
    return split(cohort(500, seed=8), 2, seed=8)


@pytest.mark.parametrize(
    "query",
    [
        "CROSSTAB smoking BY diabetes WHERE age > 40",
        "LINEAR sbp ~ age + bmi + C(smoking) + C(diabetes) WHERE sex = 'F'",
        "SELECT COUNT(*) WHERE age >= 50 AND diabetes = 1",
        "SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking",
        "SELECT MIN(bmi), MAX(age), CORR(age, bmi), STDDEV(sbp) GROUP BY sex",
        "SELECT COUNT(*), MEDIAN(sbp), QUANTILE(bmi, 0.25) GROUP BY sex",
    ],
)
def test_prediction_equals_the_counters_of_the_run(sites: list[pd.DataFrame], query: str) -> None:
    result, plan = run_in_process(sites, query)
    assert "refused" not in result.columns
    schema = check_schemas([schema_of(s) for s in sites])
    # the quantiles' slots and the integer columns' opened scales
    sizes = [len(s) for s in sites]
    predicted = predict_cost(plan, schema, len(sites), rows=sizes, scales=quantile_scales(plan, sites))
    assert {k: predicted[k] for k in KEYS} == {k: plan.cost[k] for k in KEYS}
    assert "estimate" not in replace(plan, cost=predicted).text()


def test_quantile_prediction_is_exact_given_the_opened_scales_and_a_bound_without(sites: list[pd.DataFrame]) -> None:
    """The search's steps follow each column's opened scale: given it, the prediction is exact (a derived
    argument and a WHERE included); without it, priced for the widest keys and labelled."""
    query = "SELECT MEDIAN(sbp * 2) AS m, QUANTILE(bmi, 0.2) WHERE age > 40 GROUP BY sex"
    result, plan = run_in_process(sites, query)
    assert "refused" not in result.columns
    schema = check_schemas([schema_of(s) for s in sites])
    kept = pd.concat(sites).query("age > 40")
    scales = {"sbp * 2": scale_of((kept.sbp * 2).dropna().to_numpy(float)),
              "bmi": scale_of(kept.bmi.dropna().to_numpy(float))}
    assert scales == {"sbp * 2": 9, "bmi": 6}
    sizes = [len(s) for s in sites]
    predicted = predict_cost(plan, schema, len(sites), rows=sizes, scales=scales)
    assert {k: predicted[k] for k in KEYS} == {k: plan.cost[k] for k in KEYS} and "column_scale" not in predicted
    bound = predict_cost(plan, schema, len(sites), rows=sizes)
    assert bound["rounds"] > plan.cost["rounds"] and bound["column_scale"] == 45
    assert "priced here for e = 45" in replace(plan, cost=bound).text()


def test_logistic_prediction_is_a_labelled_estimate(sites: list[pd.DataFrame]) -> None:
    schema = check_schemas([schema_of(s) for s in sites])
    domains = {"smoking": ("current", "former", "never")}
    plan = plan_query("EXPLAIN LOGISTIC outcome ~ age + C(smoking) WHERE bmi > 100 MAXITER 6", schema, domains)
    predicted = predict_cost(plan, schema, 2)
    assert 1 <= predicted["iterations"] <= 6 and predicted["rows_per_party"] == 64
    assert predicted["rounds"] > 100  # the fit ran: the stand-ins pass the refusal checks despite the WHERE
    assert "an estimate: " in replace(plan, cost=predicted).text()


def test_poisson_prediction_is_exact_in_rounds(sites: list[pd.DataFrame]) -> None:
    """A fixed schedule of Newton iterations: the stand-ins' rounds are the real run's, whatever the data
    (the stand-ins' exposures are positive, of either kind: the offset reads a float column and an integer
    one, either stand-in at 0 or below would refuse the prediction)."""
    query = "POISSON outcome ~ sbp + C(smoking) + offset(np.log(bmi) + log(age)) WHERE sex = 'F' MAXITER 4"
    result, plan = run_in_process(sites, query)
    assert result.extra["model"]["converged"]
    predicted = predict_cost(plan, check_schemas([schema_of(s) for s in sites]), len(sites))
    assert predicted["rounds"] == plan.cost["rounds"] and predicted["fixed_iterations"] == 4
    assert predicted["rows_per_party"] == 64 and predicted["bytes_sent"] < plan.cost["bytes_sent"]  # 128 rows here
    assert "rounds exact: a fixed schedule of 4 Newton iterations" in replace(plan, cost=predicted).text()


def test_stand_ins_pass_the_refusal_rules_by_construction(sites: list[pd.DataFrame]) -> None:
    schema = check_schemas([schema_of(s) for s in sites])
    plan = plan_query("LINEAR sbp ~ C(smoking) + C(diabetes)", schema, {"smoking": ("a", "b", "c"), "diabetes": (0, 1)},
                      min_cell=40)
    run_plan, frames = stand_ins(plan, schema, 3)
    rows = stand_in_rows(plan, 3)
    assert rows == 256 and all(len(f) == rows for f in frames)  # 2 k x (levels + reference) = 240 -> 256
    pooled = pd.concat(frames)
    assert pooled.smoking.value_counts().min() >= 40 and set(pooled.diabetes) == {0, 1}  # level 1, reference 0
    assert schema_of(frames[0]) == schema


@pytest.mark.parametrize(("query", "rounds"), [
    ("SELECT COUNT(*) WHERE age >= 50 AND diabetes = 1", 7),  # the flags' sign and zero tests side by side, 1 product
    ("SELECT MIN(bmi), MAX(age) GROUP BY sex", 15),  # the first level of the minimum tree rides with the flags
    # so do the quantiles' rank bits: scales 2 (sbp < 2^8: 10-bit keys, 5 search steps), flags 6,
    # slot counts 1, the search 24, the keys to values 1 and interpolation 1, the release 2
    ("SELECT MEDIAN(sbp) GROUP BY sex", 37),
    ("SELECT MEDIAN(sbp) GROUP BY sex, smoking", 37),  # the target of at most 60
    # scales 2; flags with the divisors' exponent 6; one round of products (group scales, release gates,
    # the divisors' table); the divisors prepared 13 and the means 2; centred sums 3; the variances 4;
    # their release normalised 8 (floored at 0 there); the release 1: the target of at most 40
    ("SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking", 40),
])
def test_independent_steps_share_their_rounds(sites: list[pd.DataFrame], query: str, rounds: int) -> None:
    """Rounds counted by the engine for 3 parties; EXPLAIN predicts the same (`test_prediction_equals_...`)."""
    _, plan = run_in_process(sites + sites[:1], query)  # 3 parties: the minimum tree has two levels
    assert plan.cost["rounds"] == rounds
