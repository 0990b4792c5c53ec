"""Differential privacy in a deployed consortium (`pooled init` + real node processes): one site on dp makes the
query DP, with the widest of the bounds the sites declare (policy or data file); each site's privacy budget
refuses the first query past it, naming the site and what is left, before any data is read, and still refuses
after the node restarts; `pooled init --disclosure dp` writes the policy."""

from __future__ import annotations

import tomllib
from fractions import Fraction
from pathlib import Path

import pytest

from parties.audit import read_entries
from parties.budget import BudgetLimits, PrivacyBudget
from queries.synth import write_synthetic
from tests.parties.deployment import Deployment, pooled_here, run_here


@pytest.mark.network
def test_the_budget_refuses_past_a_sites_limit_and_after_a_restart(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "dp", ["s1", "s2"], ["alice"], rows=300)
    d.edit_policy("s1", disclosure="dp", bounds={"bmi": [10, 60]})
    d.edit_policy("s2", epsilon_per_day=1.5)  # s2 is on threshold: s1 makes the query DP
    d.edit("s2", "data", domains={"bmi": {"min": 5, "max": 55}})  # s2 declares its range with its data
    with d:
        for _ in range(2):  # asking the same query again spends again
            done = d.query_here("alice", "SELECT COUNT(*) AS n, AVG(bmi)", "--epsilon", "0.5")
            assert done.returncode == 0, done.stderr
            assert "n_ci95_low" in done.stdout and "avg(bmi)_noise_sd" in done.stdout
            assert "differential privacy: epsilon 0.5000" in done.stdout
            assert "SUM(bmi - centre): epsilon 0.1667, sensitivity 27.50" in done.stdout  # the widest: [5, 60]

        over = d.query_here("alice", "SELECT COUNT(*)", "--epsilon", "1")
        assert over.returncode == 1
        assert "s2 refuses: analyst 'alice' has epsilon 0.5 left of s2's daily privacy budget" in over.stderr
        assert "nothing was read or released" in over.stderr and "Traceback" not in over.stderr

        explain = d.query_here("alice", "EXPLAIN SELECT COUNT(*)", "--epsilon", "0.5")  # shows epsilon, spends none
        assert explain.returncode == 0 and "epsilon 0.5 for this query" in explain.stdout
        last = d.query_here("alice", "SELECT COUNT(*)", "--epsilon", "0.5", "--format", "json")
        assert last.returncode == 0, last.stderr
        assert '"noise"' in last.stdout

        d.kill("s2")
        d.start_node("s2")  # the spending is rebuilt from the audit log
        after = d.query_here("alice", "SELECT COUNT(*)", "--epsilon", "0.1")
        assert after.returncode == 1 and "has epsilon 0 left of s2's daily privacy budget" in after.stderr

    for site in ("s1", "s2"):  # both sites charged the three queries that ran; the refused ones were refunded
        replayed = PrivacyBudget.from_audit(d.audit_file(site), site, BudgetLimits())
        assert replayed.spent("alice")[1] == Fraction(3, 2), site
    s1 = list(read_entries(d.audit_file("s1")))
    assert len([e for e in s1 if e["event"] == "budget" and e["decision"] == "allow"]) == 5
    assert len([e for e in s1 if e.get("refunded") is True]) == 2
    refused = [e for e in read_entries(d.audit_file("s2")) if e["event"] == "budget" and e["decision"] == "refuse"]
    assert len(refused) == 2 and "cost" not in refused[0]


def test_pooled_init_writes_every_sites_dp_policy(tmp_path: Path) -> None:
    pooled_here("init", "--parties", "a,b", "--analysts", "alice", "--out", str(tmp_path), "--disclosure", "dp",
                "--epsilon-per-day", "2", "--epsilon-total", "10", "--bound", "bmi=10:60", "--bound", "age=0:120")
    for party in ("a", "b"):
        policy = tomllib.loads((tmp_path / f"node-{party}.toml").read_text())["policy"]
        assert policy["disclosure"] == "dp" and policy["epsilon_per_day"] == 2 and policy["epsilon_total"] == 10
        assert policy["bounds"] == {"bmi": [10, 60], "age": [0, 120]}


@pytest.mark.network
def test_pooled_local_runs_every_site_on_dp_and_refuses_a_column_without_bounds(tmp_path: Path) -> None:
    files = [str(f) for f in write_synthetic(400, 2, tmp_path / "data", seed=4)]
    done = run_here(["local", "--disclosure", "dp", "--epsilon", "2", "--bound", "sbp=60:250", "--format", "csv",
                     "--data", *files, "SELECT sex, COUNT(*), AVG(sbp) GROUP BY sex"])
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    assert header.startswith("sex,count,count_noise_sd,count_ci95_low,count_ci95_high,avg(sbp),avg(sbp)_noise_sd")
    assert "# privacy epsilon,2.0" in done.stdout
    refused = run_here(["local", "--disclosure", "dp", "--data", *files, "SELECT SUM(bmi)"])
    assert refused.returncode == 1 and "needs bounds declared for 'bmi' at every site" in refused.stderr
