"""Each site's policy: roles per query kind, daily limits, allowed columns, and k (never lowered)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from parties.audit import AuditLog
from parties.policy import (
    QUERY_KINDS,
    ROLE_FOR_KIND,
    Decision,
    PolicyError,
    QueryCounter,
    SitePolicy,
    decide,
    decide_query,
    effective_min_cell,
    query_kind,
)
from queries.parser import parse

POLICY = SitePolicy.from_table(
    {
        "min_cell": 10,
        "max_queries_per_day": 3,
        "allowed_columns": ["age", "sex", "bmi", "smoking", "outcome"],
        "analysts": {"alice": ["counts", "statistics", "regression"], "bob": ["counts"], "carol": []},
    }
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("SELECT COUNT(*) GROUP BY sex", "count"),
        ("SELECT COUNT(bmi), COUNT(*) WHERE age > 40", "count"),
        ("CROSSTAB smoking BY outcome", "crosstab"),
        ("SELECT COUNT(*), AVG(bmi)", "aggregate"),
        ("SELECT MEDIAN(age)", "aggregate"),
        ("LINEAR bmi ~ age + C(sex)", "linear"),
        ("LOGISTIC outcome ~ age + bmi", "logistic"),
        ("POISSON deaths ~ age + offset(np.log(years))", "poisson"),
        ("COX months, died ~ age + C(sex)", "cox"),
        ("EXPLAIN SELECT AVG(bmi)", "explain"),
    ],
)
def test_query_kinds_of_parsed_statements(text: str, kind: str) -> None:
    assert query_kind(parse(text)) == kind


def test_roles_needed_by_each_kind() -> None:
    assert dict(ROLE_FOR_KIND) == {"count": "counts", "crosstab": "counts", "aggregate": "statistics",
                                   "linear": "regression", "logistic": "regression", "poisson": "regression",
                                   "cox": "regression", "explain": None}
    bob = {k: decide_query(POLICY, "bob", k, {"age"}, 0).allowed for k in QUERY_KINDS}
    assert bob == {"count": True, "crosstab": True, "aggregate": False, "linear": False, "logistic": False,
                   "poisson": False, "cox": False, "explain": True}
    assert all(decide_query(POLICY, "alice", k, {"age"}, 0).allowed for k in QUERY_KINDS)
    carol = {k for k in QUERY_KINDS if decide_query(POLICY, "carol", k, {"age"}, 0).allowed}
    assert carol == {"explain"}  # listed without roles: may only ask for plans
    assert decide_query(POLICY, "bob", "linear", {"age"}, 0) == Decision(
        False, "analyst 'bob' lacks the 'regression' role at this site"
    )


def test_an_unlisted_analyst_may_do_nothing_not_even_explain() -> None:
    for kind in QUERY_KINDS:
        d = decide_query(POLICY, "mallory", kind, set(), 0)
        assert d == (False, "analyst 'mallory' is not authorised at this site")


def test_without_an_analyst_table_every_authenticated_analyst_may_ask() -> None:
    open_site = SitePolicy()
    assert all(decide_query(open_site, "anyone", k, {"x"}, 0).allowed for k in QUERY_KINDS)
    assert not decide_query(open_site, "anyone", "count", set(), open_site.max_queries_per_day).allowed


def test_daily_limit() -> None:
    assert decide_query(POLICY, "alice", "aggregate", {"bmi"}, 2).allowed
    d = decide_query(POLICY, "alice", "aggregate", {"bmi"}, 3)
    assert not d.allowed and "limit of 3 queries per day" in d.reason
    assert not decide_query(POLICY, "alice", "explain", {"bmi"}, 3).allowed  # EXPLAIN counts too


def test_allowed_columns_cover_where_grouping_and_explain() -> None:
    assert decide(POLICY, "alice", parse("SELECT AVG(bmi) GROUP BY sex"), 0).allowed
    for text, column in [
        ("SELECT AVG(sbp)", "sbp"),
        ("SELECT COUNT(*) WHERE sbp > 140", "sbp"),
        ("SELECT COUNT(*) GROUP BY site", "site"),
        ("CROSSTAB smoking BY diabetes", "diabetes"),
        ("LINEAR bmi ~ age + sbp", "sbp"),
        ("EXPLAIN SELECT COUNT(*) GROUP BY diabetes", "diabetes"),
    ]:
        assert decide(POLICY, "alice", parse(text), 0) == (
            False, f"this site does not allow queries on column {column!r}"
        ), text


def test_decide_is_pure_and_rejects_unknown_kinds() -> None:
    args = (POLICY, "bob", "count", frozenset({"sex"}), 1)
    assert decide_query(*args) == decide_query(*args) == (True, "allowed by site policy")
    with pytest.raises(ValueError, match="unknown query kind"):
        decide_query(POLICY, "alice", "delete", set(), 0)


def test_min_cell_is_never_lowered() -> None:
    assert POLICY.min_cell == 10
    assert effective_min_cell(POLICY) == 10
    assert effective_min_cell(POLICY, 3) == 10
    assert effective_min_cell(POLICY, 25) == 25


def test_the_parameter_fraction_defaults_to_a_third() -> None:
    assert SitePolicy.from_table({}).max_param_fraction == 0.33
    assert SitePolicy.from_table({"max_param_fraction": 0.1}).max_param_fraction == 0.1


def test_a_policy_file_loads_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('min_cell = 11\nallowed_columns = ["age"]\n[analysts]\nbob = ["counts"]\n')
    policy = SitePolicy.load(path)
    assert (policy.min_cell, policy.allowed_columns, dict(policy.analysts or {})) == (
        11, frozenset({"age"}), {"bob": frozenset({"counts"})}
    )
    assert SitePolicy.from_table(policy.to_table()) == policy
    with pytest.raises(TypeError):
        policy.analysts["eve"] = frozenset()  # type: ignore[index]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"min_cells": 5}, "unknown key 'min_cells'"),
        ({"min_cell": 0}, "min_cell must be an integer >= 1"),
        ({"min_cell": "5"}, "min_cell must be an integer"),
        ({"min_cell": True}, "min_cell must be an integer"),
        ({"max_param_fraction": 1.5}, "max_param_fraction must be a number in (0, 1]"),
        ({"max_queries_per_day": -1}, "max_queries_per_day must be an integer >= 0"),
        ({"allowed_columns": "age"}, "allowed_columns must be a list"),
        ({"analysts": {"eve": ["admin"]}}, "unknown roles ['admin']"),
        ({"analysts": {"eve": "counts"}}, "analysts.eve must be a list of roles"),
        ({"analysts": ["eve"]}, "analysts must be a table"),
    ],
)
def test_malformed_policies_name_source_and_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError) as info:
        SitePolicy.from_table(table, "site.toml [policy]")
    assert str(info.value).startswith("site.toml [policy]: ") and message in str(info.value)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _admit(counter: QueryCounter, analyst: str, policy: SitePolicy = POLICY) -> Decision:
    return counter.admit(analyst, lambda today: decide_query(policy, analyst, "count", {"age"}, today))


def test_counter_enforces_the_limit_per_analyst_and_resets_at_utc_midnight() -> None:
    clock = Clock(datetime(2026, 6, 1, 23, 59, tzinfo=UTC))
    counter = QueryCounter(clock=clock)
    assert [_admit(counter, "alice").allowed for _ in range(4)] == [True, True, True, False]
    assert _admit(counter, "bob").allowed and counter.today("bob") == 1 and counter.today("alice") == 3
    clock.now += timedelta(minutes=2)  # 00:01 UTC: a new day
    assert counter.today("alice") == 0 and _admit(counter, "alice").allowed


def test_counter_survives_a_restart_through_the_audit_log(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 6, 1, 20, 0, tzinfo=UTC))
    log = AuditLog(tmp_path / "audit.jsonl", "hospital-a", clock=clock)
    counter = QueryCounter.from_audit(log.path, clock=clock)
    for _ in range(4):
        d = _admit(counter, "alice")
        log.decision("alice", session="s", query="SELECT COUNT(*)", allowed=d.allowed, reason=d.reason)
    assert counter.today("alice") == 3
    restarted = QueryCounter.from_audit(log.path, clock=clock)  # refusals are not counted
    assert restarted.today("alice") == 3 and not _admit(restarted, "alice").allowed
    clock.now += timedelta(hours=5)  # 01:00 UTC next day
    assert QueryCounter.from_audit(log.path, clock=clock).today("alice") == 0


def test_counter_admits_exactly_the_limit_under_concurrency() -> None:
    counter = QueryCounter()
    results: list[bool] = []
    barrier = threading.Barrier(12)

    def ask() -> None:
        barrier.wait()
        results.append(_admit(counter, "alice").allowed)

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 9 + [True] * 3 and counter.today("alice") == 3
