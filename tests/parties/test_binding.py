"""The session binding: what makes two requests or two plans the same, and the mismatch message."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parties.binding import SessionMismatch, check_agreement, plan_digest, request_digest
from queries.engine import plan_query
from queries.parser import parse
from queries.table import Schema

ROSTER = ["a", "b", "c"]
SCHEMA = Schema((("age", "float"), ("sbp", "float"), ("sex", "category")))


def _req(text: str, analyst: str = "alice", roster: list[str] = ROSTER, session: str = "s1", k: int = 0) -> str:
    return request_digest(parse(text), analyst, roster, session, k)


def test_a_request_is_its_meaning_not_its_spelling() -> None:
    assert _req("SELECT AVG(age) GROUP BY sex") == _req("select avg( age )\n  group by sex")


@pytest.mark.parametrize("other", [
    {"text": "SELECT AVG(age) WHERE age < 0 GROUP BY sex"},
    {"text": "EXPLAIN SELECT AVG(age) GROUP BY sex"},
    {"analyst": "bob"},
    {"roster": ["b", "a", "c"]},
    {"session": "s2"},
    {"k": 10},
])
def test_any_difference_in_what_was_asked_changes_the_request(other: dict) -> None:
    base = {"text": "SELECT AVG(age) GROUP BY sex", "analyst": "alice", "roster": ROSTER, "session": "s1", "k": 0}
    assert _req(**base) != _req(**{**base, **other})


def test_the_plan_digest_covers_the_disclosure_terms() -> None:
    plan = plan_query("SELECT AVG(age) GROUP BY sex", SCHEMA, {"sex": ("F", "M")}, 5)
    same = plan_digest(plan, "alice", ROSTER, "s1")
    assert same == plan_digest(plan_query("SELECT AVG(age) GROUP BY sex", SCHEMA, {"sex": ("F", "M")}, 5),
                               "alice", ROSTER, "s1")
    for changed in (replace(plan, min_cell=6), replace(plan, release_zero=False), replace(plan, param_fraction=0.5),
                    plan_query("SELECT AVG(age) GROUP BY sex", SCHEMA, {"sex": ("F", "M", "X")}, 5)):
        assert plan_digest(changed, "alice", ROSTER, "s1") != same


def test_a_mismatch_names_the_parties_that_differ_and_no_data() -> None:
    check_agreement(["d1", "d1", "d1"], ROSTER, 1, "plans")
    with pytest.raises(SessionMismatch, match=r"different plans: b, c disagree with a; .*nothing is released"):
        check_agreement(["d1", "d2", "d3"], ROSTER, 0, "plans")
