"""A plan's dealer material listed before it runs is exactly what the last party then asks for; the
last party lists it when the dealer is far, in a thread the MPC steps do not wait for."""

from __future__ import annotations

from typing import Any

import pytest

import queries.engine as engine
from mpc.context import PartyContext
from mpc.dealer import PhaseTraces, SeededMaterial
from mpc.inprocess import InProcessNetwork
from mpc.prg import fresh_seed
from parties.material_ahead import material_ahead
from protocols.material import KINDS
from queries.engine import grouping_columns, local_domains, plan_query, run_in_process, source_of
from queries.material_plan import _Listing, material_requests, plannable
from queries.parser import parse
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


def _planned(query: str, sizes: list[int]) -> tuple[Any, Any]:
    """The plan of `query` on the tables `_real_run` makes, planned as `run_in_process` plans it, and a schema."""
    frames = [cohort(rows, seed=i) for i, rows in enumerate(sizes)]
    stmt = parse(query)
    schema = source_of(frames[0], stmt).schema()
    return plan_query(stmt, schema, local_domains(frames, grouping_columns(stmt, schema))), schema


@pytest.mark.parametrize(
    "query", ["SELECT MEDIAN(sbp) GROUP BY sex", "LOGISTIC diabetes ~ age + bmi", "POISSON diabetes ~ age + bmi"]
)
def test_material_that_grows_with_the_data_is_not_listed(query: str) -> None:
    """Decided from the plan alone, before anything runs."""
    plan, schema = _planned(query, [300, 200])
    assert not plannable(plan) and material_requests(plan, schema, 2) is None


@pytest.mark.parametrize(("rtt_s", "listed"), [(0.05, True), (0.001, False), (None, True)])
def test_a_plan_is_listed_for_the_dealer_when_it_is_far(rtt_s: float | None, listed: bool) -> None:
    """On the plan `run_in_process` would run (no run needed: what is listed equals what is asked for is the
    test above)."""
    plan, schema = _planned("SELECT COUNT(*) GROUP BY sex", [40, 30])
    told: list[tuple[int, int]] = []
    material = SeededMaterial(1, 2, fresh_seed(), "s", KINDS, lambda c, r: {}, None,
                              lambda start, requests: told.append((start, len(requests))) or len(requests),
                              PhaseTraces())
    material.dealer_rtt_s = rtt_s
    ctx = PartyContext(1, 2, InProcessNetwork(2, 5.0).transport(1), material, "s")  # no step runs: only what is told
    with material_ahead(ctx, plan, schema) as lister:
        assert (lister is not None) == listed
        if lister is not None:
            lister.join(60)
    assert told == ([(0, len(material_requests(plan, schema, 2) or []))] if listed else [])
    with material_ahead(ctx, plan, schema) as lister:  # the phase is remembered now (empty: no step ran)
        assert lister is None
