"""A plan's dealer material listed before it runs is exactly what the last party then asks for."""

from __future__ import annotations

from typing import Any

import pytest

import queries.engine as engine
from mpc.context import PartyContext
from queries.engine import run_in_process, source_of
from queries.material_plan import _Listing, material_requests, plannable
from queries.synth import cohort


def _real_run(monkeypatch: pytest.MonkeyPatch, query: str, sizes: list[int]) -> tuple[list[str], Any, Any]:
    """The last party's requests in a real in-process run on unequal tables, the plan and a schema."""
    frames = [cohort(rows, seed=i) for i, rows in enumerate(sizes)]
    made = engine.make_contexts
    seen: list[_Listing] = []

    def listing_contexts(n: int, **kw: Any) -> list[PartyContext]:
        contexts = made(n, **kw)
        seen.append(_Listing(contexts[-1].material))
        contexts[-1].material = seen[-1]
        return contexts

    with monkeypatch.context() as patch:
        patch.setattr(engine, "make_contexts", listing_contexts)
        _, plan = run_in_process(frames, query)
    return [r.to_json() for r in seen[0].listed], plan, source_of(frames[0], plan.statement).schema()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT COUNT(*) WHERE age >= 50 AND diabetes = 1",
        "SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking",
        "CROSSTAB sex BY smoking",
        "LINEAR sbp ~ age + bmi + C(smoking)",
    ],
)
@pytest.mark.parametrize("sizes", [[300, 500, 200], [150, 400]])
def test_the_listed_material_is_what_the_last_party_asks_for(
    monkeypatch: pytest.MonkeyPatch, query: str, sizes: list[int]
) -> None:
    real, plan, schema = _real_run(monkeypatch, query, sizes)
    listed = material_requests(plan, schema, len(sizes))
    assert real and listed is not None
    assert [r.to_json() for r in listed] == real


@pytest.mark.parametrize(
    "query", ["SELECT MEDIAN(sbp) GROUP BY sex", "LOGISTIC diabetes ~ age + bmi", "POISSON diabetes ~ age + bmi"]
)
def test_material_that_grows_with_the_data_is_not_listed(monkeypatch: pytest.MonkeyPatch, query: str) -> None:
    _, plan, schema = _real_run(monkeypatch, query, [300, 200])
    assert not plannable(plan) and material_requests(plan, schema, 2) is None
