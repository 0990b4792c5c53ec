"""Snapshots of compiled plans (EXPLAIN's text): an accidental change to what runs locally, what
runs in MPC, or what it costs fails here. After an intended change, regenerate with
`POOLED_UPDATE_SNAPSHOTS=1 python -m pytest tests/queries/test_plan_snapshots.py` and review
the diff."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from queries.engine import plan_query, predict_cost
from queries.table import Schema

SNAPSHOTS = Path(__file__).parent / "snapshots"

SCHEMA = Schema(
    (
        ("age", "int"),
        ("sex", "category"),
        ("bmi", "float"),
        ("smoking", "category"),
        ("diabetes", "int"),
        ("sbp", "int"),
        ("outcome", "int"),
    )
)
DOMAINS = {"sex": ("F", "M"), "smoking": ("current", "former", "never"), "diabetes": (0, 1), "outcome": (0, 1)}

PLANS = {
    "select_every_aggregate": "SELECT COUNT(*), COUNT(bmi), SUM(sbp), AVG(bmi) AS mean_bmi, VAR(age), STDDEV(sbp), "
    "MIN(bmi), MAX(age), MEDIAN(age), QUANTILE(bmi, 0.9), CORR(age, bmi) "
    "WHERE age BETWEEN 18 AND 65 AND smoking IN ('current', 'former') GROUP BY sex, diabetes",
    "select_no_group": "select count(*), avg(bmi) where bmi is not null",
    "crosstab": "CROSSTAB smoking BY outcome WHERE NOT sex = 'M'",
    "explain_linear": "EXPLAIN LINEAR sbp ~ age + bmi + C(smoking)",
    "logistic": "LOGISTIC outcome ~ age + C(sex) MAXITER 20 TOL 1e-6",
    "poisson": "EXPLAIN POISSON outcome ~ age + C(sex) + offset(np.log(bmi)) WHERE diabetes = 1 MAXITER 8",
}

COSTED = {
    "cost_select_avg": "SELECT COUNT(*), AVG(bmi) GROUP BY sex",
    "cost_crosstab": "CROSSTAB sex BY diabetes",
    "cost_select_median": "SELECT COUNT(*), MEDIAN(sbp) GROUP BY sex",
    "cost_select_var": "SELECT VAR(bmi), STDDEV(sbp) GROUP BY sex",
    "cost_poisson": "POISSON outcome ~ age + C(smoking) + offset(log(bmi)) MAXITER 6",
    "cost_survival": "SURVIVAL sbp, outcome BY smoking EVERY 10 WHERE age > 40",
}


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("POOLED_UPDATE_SNAPSHOTS"):
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with POOLED_UPDATE_SNAPSHOTS=1"
    assert text + "\n" == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(PLANS))
def test_plan_text_matches_snapshot(name: str) -> None:
    plan = plan_query(PLANS[name], SCHEMA, DOMAINS, min_cell=5)
    _check(name, f"query: {PLANS[name]}\nhash: {plan.hash()}\n{plan.text()}")


@pytest.mark.parametrize("name", sorted(COSTED))
def test_predicted_rounds_match_snapshot(name: str) -> None:
    """Rounds and messages are the plan's shape; bytes move with every protocol optimisation and
    are checked against the real counters instead (test_queries_in_process)."""
    plan = plan_query(COSTED[name], SCHEMA, DOMAINS, min_cell=5)
    cost = predict_cost(plan, SCHEMA, 3)
    assert f"{cost['rounds']} rounds, {cost['bytes_sent']} bytes sent" in replace(plan, cost=cost).text()
    _check(name, f"query: {COSTED[name]} (3 parties)\nrounds: {cost['rounds']}, messages: {cost['messages_sent']}")


def test_plan_is_frozen_and_hash_ignores_cost() -> None:
    plan = plan_query(COSTED["cost_select_avg"], SCHEMA, DOMAINS, min_cell=5)
    with pytest.raises(AttributeError):
        plan.min_cell = 3  # type: ignore[misc]
    costed = replace(plan, cost={"rounds": 1})
    assert costed.hash() == plan.hash() and costed == plan
    assert plan_query(COSTED["cost_select_avg"], SCHEMA, DOMAINS, min_cell=6).hash() != plan.hash()


@pytest.mark.parametrize("name", sorted(PLANS))
def test_explain_compiles_exactly_the_inner_plan(name: str) -> None:
    text = PLANS[name].removeprefix("EXPLAIN ")
    inner = plan_query(text, SCHEMA, DOMAINS, min_cell=5)
    explained = plan_query("EXPLAIN " + text, SCHEMA, DOMAINS, min_cell=5)
    assert explained == replace(inner, explain=True)
    assert explained.terms == inner.terms  # the regression's design survives EXPLAIN
