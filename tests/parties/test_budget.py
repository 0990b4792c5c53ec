"""The privacy budget accountant: exact basic composition per analyst, daily and total limits,
refusals that name the site and what is left, refunds, bad epsilons, and spending that
survives a restart by replaying the node's audit log."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from parties.audit import AuditLog
from parties.budget import (
    BudgetError,
    BudgetLimits,
    Charge,
    PrivacyBudget,
    audit_fields,
    charges_from_entries,
)

DAY1 = datetime(2025, 3, 4, 23, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = DAY1) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _budget(per_day: Any = None, total: Any = None, clock: Clock | None = None) -> PrivacyBudget:
    limits = BudgetLimits.from_table({"epsilon_per_day": per_day, "epsilon_total": total})
    return PrivacyBudget("site-a", limits, clock=clock or Clock())


def test_ten_charges_of_a_tenth_spend_exactly_one() -> None:
    budget = _budget(per_day=1.0)
    assert all(budget.charge("alice", 0.1, f"s{i}").allowed for i in range(10))
    assert budget.spent("alice") == (Fraction(1), Fraction(1))
    assert budget.remaining("alice") == 0
    refused = budget.charge("alice", 0.1, "s10")
    assert not refused.allowed
    assert refused.reason == ("analyst 'alice' has epsilon 0 left of site-a's daily privacy budget "
                              "(epsilon 1 per UTC day); this query needs 0.1")


def test_an_overrun_is_refused_naming_the_site_and_what_is_left_and_charges_nothing() -> None:
    budget = _budget(per_day=1.0, total=5)
    first = budget.charge("alice", 0.7, "s1")
    assert first == (True, "charged epsilon 0.7 at site-a; epsilon 0.3 left")
    refused = budget.charge("alice", 0.5, "s2")
    assert not refused.allowed
    assert "epsilon 0.3 left of site-a's daily privacy budget" in refused.reason
    assert "needs 0.5" in refused.reason
    assert budget.spent("alice") == (Fraction(7, 10), Fraction(7, 10))
    assert budget.charge("alice", 0.3, "s2").allowed  # the refused session was not recorded
    assert budget.charge("bob", 1.0, "s3").allowed  # each analyst has a budget of their own


def test_the_daily_budget_renews_at_utc_midnight_and_the_total_does_not() -> None:
    clock = Clock()
    budget = _budget(per_day=1.0, total=1.5, clock=clock)
    assert budget.charge("alice", 1.0, "s1").allowed
    assert not budget.charge("alice", 0.25, "s2").allowed
    clock.now = DAY1 + timedelta(hours=1)  # 00:30 the next day
    assert budget.spent("alice") == (0, 1)
    assert budget.charge("alice", 0.25, "s2").allowed
    refused = budget.charge("alice", 0.5, "s3")
    assert not refused.allowed
    assert refused.reason == ("analyst 'alice' has epsilon 0.25 left of site-a's total privacy budget "
                              "(epsilon 1.5); this query needs 0.5")
    assert budget.remaining("alice") == Fraction(1, 4)


def test_a_refund_returns_the_charge_to_the_day_it_was_made() -> None:
    clock = Clock()
    budget = _budget(per_day=1.0, total=2.0, clock=clock)
    assert budget.charge("alice", 0.6, "yesterday").allowed
    clock.now = DAY1 + timedelta(hours=2)
    assert budget.charge("alice", 0.9, "today").allowed
    assert budget.refund("yesterday")
    assert budget.spent("alice") == (Fraction(9, 10), Fraction(9, 10))  # today's unchanged, the total less
    assert not budget.refund("yesterday") and not budget.refund("never-charged")
    assert budget.refund("today")
    assert budget.spent("alice") == (0, 0)
    assert budget.charge("alice", 1.0, "today").allowed  # a refunded session may be charged again


@pytest.mark.parametrize("epsilon", [0, 0.0, -0.5, float("nan"), float("inf"), True, "0.5", None])
def test_a_non_positive_or_non_numeric_epsilon_is_refused_and_charges_nothing(epsilon: Any) -> None:
    budget = _budget(per_day=1.0)
    with pytest.raises(BudgetError, match="epsilon must be a positive number"):
        budget.charge("alice", epsilon, "s1")
    assert budget.spent("alice") == (0, 0)


def test_a_charge_needs_a_session_of_its_own() -> None:
    budget = _budget(per_day=1.0)
    with pytest.raises(BudgetError, match="needs the query's session"):
        budget.charge("alice", 0.1, "")
    assert budget.charge("alice", 0.1, "s1").allowed
    with pytest.raises(BudgetError, match="session 's1' was already charged at site-a"):
        budget.charge("alice", 0.1, "s1")
    assert budget.spent("alice") == (Fraction(1, 10), Fraction(1, 10))


def test_no_limits_allows_every_charge_and_still_counts() -> None:
    budget = PrivacyBudget("site-a", BudgetLimits())
    assert budget.charge("alice", 100, "s1") == (True, "charged epsilon 100 at site-a")
    assert budget.remaining("alice") is None
    assert budget.spent("alice") == (100, 100)


def test_limits_from_a_policy_table() -> None:
    limits = BudgetLimits.from_table({"epsilon_per_day": 1, "epsilon_total": 10.5, "min_cell": 5})
    assert limits == BudgetLimits(Fraction(1), Fraction(21, 2))
    assert BudgetLimits.from_table(limits.to_table()) == limits
    assert BudgetLimits.from_table({}) == BudgetLimits()
    for bad in (0, -1, "1", True, float("nan")):
        with pytest.raises(BudgetError, match=r"site\.toml: epsilon_total must be a positive number"):
            BudgetLimits.from_table({"epsilon_total": bad}, "site.toml")


def test_concurrent_charges_cannot_both_take_the_last_of_a_budget() -> None:
    budget = _budget(per_day=1.0)
    results: list[bool] = []
    barrier = threading.Barrier(40)

    def ask(i: int) -> None:
        barrier.wait()
        results.append(budget.charge("alice", 0.1, f"s{i}").allowed)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [False] * 30 + [True] * 10
    assert budget.spent("alice")[0] == 1


def _allow(log: AuditLog, analyst: str, session: str, epsilon: float | None) -> None:
    extra = audit_fields(epsilon) if epsilon is not None else {}
    log.append(analyst, "decision", session=session, query="SELECT COUNT(*)", decision="allow",
               reason="allowed by site policy", **extra)


def test_spending_survives_a_restart_through_the_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    clock = Clock()
    log = AuditLog.open(path, "site-a", clock=clock)
    limits = BudgetLimits(per_day=Fraction(1), total=Fraction(2))
    budget = PrivacyBudget.from_audit(path, "site-a", limits, clock)  # no log yet: nothing spent
    for session, epsilon in (("s1", 0.4), ("s2", 0.3), ("s3", 0.2)):
        assert budget.charge("alice", epsilon, session).allowed
        _allow(log, "alice", session, epsilon)
    assert budget.refund("s2")
    log.failure("alice", session="s2", error="site-b refused: its policy", aborted=True, refunded=True)
    _allow(log, "alice", "s4", None)  # a query without noise spends nothing
    log.decision("alice", session="s5", query="SELECT COUNT(*)", allowed=False, reason="refused")
    log.failure("bob", session="s1", error="not a refund of alice's s1")  # refunded absent: no refund

    restarted = PrivacyBudget.from_audit(path, "site-a", limits, clock)
    assert restarted.spent("alice") == budget.spent("alice") == (Fraction(3, 5), Fraction(3, 5))
    assert restarted.refund("s3")  # the replayed charges keep their sessions
    assert [c.session for c in charges_from_entries(log.entries())] == ["s1", "s3"]

    clock.now = DAY1 + timedelta(days=1)
    tomorrow = PrivacyBudget.from_audit(path, "site-a", limits, clock)
    assert tomorrow.spent("alice") == (0, Fraction(3, 5))
    assert not tomorrow.charge("alice", 1.5, "s6").allowed  # 1.4 left in total


def test_a_log_whose_charge_is_not_a_positive_epsilon_fails_the_start(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog.open(path, "site-a")
    log.append("alice", "decision", session="s1", query="q", decision="allow", reason="r", cost={"epsilon": -1.0})
    with pytest.raises(BudgetError, match="audit entry of session 's1': cost.epsilon must be a positive number"):
        PrivacyBudget.from_audit(path, "site-a", BudgetLimits(per_day=Fraction(1)))


def test_charges_replay_in_order_of_the_log() -> None:
    entries: list[dict[str, Any]] = [
        {"time": "2025-03-04T10:00:00.000+00:00", "event": "decision", "decision": "allow", "analyst": "a",
         "session": "s1", "cost": {"epsilon": 0.5}},
        {"time": "2025-03-05T10:00:00.000+00:00", "event": "abort", "analyst": "a", "session": "s1",
         "refunded": True},
        {"time": "2025-03-05T11:00:00.000+00:00", "event": "decision", "decision": "allow", "analyst": "a",
         "session": "s2", "cost": {"epsilon": 0.25, "rounds": 7}},
    ]
    assert charges_from_entries(entries) == [Charge("a", "s2", Fraction(1, 4), DAY1.date() + timedelta(days=1))]
