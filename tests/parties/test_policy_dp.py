"""A site's differential privacy policy: its keys, and how the sites agree on a query's DP terms and
charge their budgets (in process; the deployed consortium is tests/parties/test_dp_network.py)."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from mpc.context import PartyContext
from mpc.inprocess import run_parties
from parties.budget import BudgetLimits, PrivacyBudget, charges_from_entries
from parties.policy import PolicyError, SitePolicy
from parties.privacy_terms import BudgetRefusal, agree_privacy, site_terms
from queries.errors import QueryError
from queries.parser import parse


def test_the_dp_keys_load_and_write_back() -> None:
    raw = {"disclosure": "dp", "epsilon_per_query": 0.5, "epsilon_per_day": 2, "epsilon_total": 10,
           "bounds": {"bmi": [10, 60]}}
    policy = SitePolicy.from_table(raw)
    assert policy.disclosure == "dp" and policy.epsilon_per_query == 0.5
    assert policy.budget == BudgetLimits(Fraction(2), Fraction(10)) and dict(policy.bounds) == {"bmi": (10.0, 60.0)}
    assert SitePolicy.from_table(policy.to_table()) == policy
    assert SitePolicy().disclosure == "threshold" and "disclosure" not in SitePolicy().to_table()


@pytest.mark.parametrize(("raw", "words"), [
    ({"disclosure": "noise"}, "disclosure must be one of threshold, dp"),
    ({"epsilon_per_day": 0}, "epsilon_per_day must be a positive number"),
    ({"epsilon_total": -1}, "epsilon_total must be a positive number"),
    ({"epsilon_per_query": "1"}, "epsilon_per_query must be a positive number"),
    ({"bounds": {"bmi": [60, 10]}}, "bounds.bmi must be [min, max]"),
    ({"bounds": {"bmi": [1]}}, "bounds.bmi must be [min, max]"),
    ({"bounds": [1, 2]}, "bounds must be a table"),
])
def test_a_malformed_dp_key_is_named(raw: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(words)):
        SitePolicy.from_table(raw, "site.toml: policy")


def test_a_budget_entry_in_the_audit_log_is_replayed() -> None:
    entries = [
        {"event": "budget", "decision": "allow", "session": "s1", "analyst": "a", "time": "2026-01-01T10:00:00+00:00",
         "cost": {"epsilon": 0.7}},
        {"event": "budget", "decision": "refuse", "session": "s2", "analyst": "a", "time": "2026-01-01T10:01:00+00:00"},
        {"event": "budget", "decision": "allow", "session": "s3", "analyst": "a", "time": "2026-01-01T10:02:00+00:00",
         "cost": {"epsilon": 0.2}},
        {"event": "failure", "session": "s3", "analyst": "a", "time": "2026-01-01T10:02:01+00:00", "refunded": True},
    ]
    assert [(c.session, c.epsilon) for c in charges_from_entries(entries)] == [("s1", Fraction(7, 10))]


def _agree(policies: list[SitePolicy], query: str, asked: float | None,
           budgets: list[PrivacyBudget | None]) -> list[Any]:
    """agree_privacy at every party, each with its own policy and budget: its answer or its error."""
    roster = [f"site{i + 1}" for i in range(len(policies))]
    everyone = [{"terms": site_terms(p)} for p in policies]

    def party(ctx: PartyContext) -> Any:
        budget = budgets[ctx.rank]

        def charge(epsilon: float) -> tuple[bool, str]:
            verdict = budget.charge("alice", epsilon, "session-1")
            return verdict.allowed, verdict.reason

        try:
            return agree_privacy(ctx, everyone, parse(query), asked, roster, charge if budget else None)
        except (BudgetRefusal, QueryError) as exc:
            return exc

    return run_parties(len(policies), party)


DP = SitePolicy(disclosure="dp", epsilon_per_query=0.5, bounds={"x": (0.0, 10.0)})
PLAIN = SitePolicy(bounds={"x": (-5.0, 8.0)}, epsilon_per_query=0.25)


def test_one_dp_site_makes_the_query_dp_with_the_widest_bounds_and_the_smallest_default() -> None:
    answers = _agree([DP, PLAIN], "SELECT SUM(x)", None, [None, None])
    assert answers[0] == answers[1]
    assert answers[0].epsilon == 0.25 and answers[0].bounds == (("x", -5.0, 10.0),)
    assert _agree([PLAIN, PLAIN], "SELECT SUM(x)", None, [None, None]) == [None, None]
    assert _agree([DP, PLAIN], "SELECT SUM(x)", 2.0, [None, None])[0].epsilon == 2.0


def test_a_refusal_by_one_sites_budget_stops_every_site_naming_it_and_what_is_left() -> None:
    roomy = PrivacyBudget("site1", BudgetLimits(total=Fraction(5)))
    tight = PrivacyBudget("site2", BudgetLimits(per_day=Fraction(1, 2)))
    answers = _agree([DP, DP], "SELECT COUNT(*)", 1.0, [roomy, tight])
    for answer in answers:
        assert isinstance(answer, BudgetRefusal)
        assert str(answer).startswith("site2 refuses: analyst 'alice' has epsilon 0.5 left of site2's daily")
    assert tight.spent("alice") == (0, 0)
    assert roomy.spent("alice")[1] == 1  # charged here; the query job refunds it when the session fails


def test_explain_charges_nothing_and_a_column_without_bounds_is_refused_before_any_charge() -> None:
    budget = PrivacyBudget("site1", BudgetLimits(total=Fraction(1)))
    answers = _agree([DP, DP], "EXPLAIN SELECT AVG(x)", 1.0, [budget, budget])
    assert answers[0].epsilon == 1.0 and budget.spent("alice") == (0, 0)
    no_bounds = SitePolicy(disclosure="dp")
    answers = _agree([DP, no_bounds], "SELECT AVG(x)", 1.0, [budget, budget])
    assert all("needs bounds declared for 'x' at every site" in str(a) for a in answers)
    assert budget.spent("alice") == (0, 0)


@pytest.mark.parametrize("command", ["local", "query"])
@pytest.mark.parametrize("epsilon", ["0", "-1", "nan"])
def test_a_non_positive_epsilon_is_refused_before_anything_starts(
    command: str, epsilon: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from parties.cli import main

    args = ["--data", "a.csv", "b.csv"] if command == "local" else ["--config", str(tmp_path / "none.toml")]
    assert main([command, "--epsilon", epsilon, *args, "SELECT COUNT(*)"]) == 2
    assert f"pooled {command}: --epsilon must be a positive number" in capsys.readouterr().err
