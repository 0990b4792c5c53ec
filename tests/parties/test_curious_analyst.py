"""A curious analyst against a deployed consortium: each attack is stopped and nothing is released.

Real processes from `pooled init` (mutual TLS on 127.0.0.1). The analyst holds a valid
certificate and every role; what it tries:
- a different request per node in one session (another text, another minimum cell size,
  EXPLAIN at one node), hoping to read one site's own aggregates;
- a query one site refuses, repeated to use up the other sites' daily limits (and see that
  a refused query does not count where it never ran);
- MIN/MAX, which release one patient's value, under the default policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from parties import messages
from parties.audit import read_entries
from parties.client import ConsortiumClient, ConsortiumError
from parties.config import load_analyst
from parties.records import JobCall, JobFailure, JobOutcome
from parties.tls import TlsMaterial
from tests.parties.deployment import Deployment

PARTIES = ["hospital-a", "hospital-b", "hospital-c"]
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("curious"), PARTIES, ["alice"], rows=600)
    with d:
        yield d
    assert d.forced == [] and d.alive() == []


def _split_session(d: Deployment, params_by_party: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Send each node its own request in ONE session (what an honest client never does); every node's answer."""
    s = load_analyst(d.analyst_file("alice"))
    roster, session = list(s.roster), uuid.uuid4().hex
    with ConsortiumClient(TlsMaterial.load(s.tls.cert_files), dict(s.parties)) as client:
        stubs = client._stubs  # the attack needs the raw per-node call

        def one(party: str) -> Any:
            call = JobCall(session, "query", params_by_party[party], roster)
            return messages.outcome_from_chunks(stubs[party].RunJob(messages.job_call_to_pb(call), timeout=120))

        with ThreadPoolExecutor(len(roster)) as pool:
            answers = dict(zip(roster, pool.map(one, roster)))
    answers["_session"] = session
    return answers


def _assert_stopped_everywhere(d: Deployment, answers: dict[str, Any], what: str) -> None:
    session = answers.pop("_session")
    for party, answer in answers.items():
        assert isinstance(answer, JobFailure), f"{party} answered {answer}"
        assert what in answer.message or answer.kind == "peer_failure", (party, answer)
    assert any(what in a.message for a in answers.values())
    for party in PARTIES:
        entries = [e for e in read_entries(d.audit_file(party)) if e.get("session") == session]
        assert not [e for e in entries if e["event"] == "release"], f"{party} released something"
        failures = [e for e in entries if e["event"] in ("failure", "abort")]
        assert failures and failures[-1].get("refunded") is True, (party, entries)


def test_a_different_query_per_node_is_stopped_before_any_data_step(deployment: Deployment) -> None:
    real = {"query": "SELECT COUNT(*), AVG(bmi)", "min_cell": 0}
    decoy = {"query": "SELECT COUNT(*), AVG(bmi) WHERE age < 0", "min_cell": 0}
    answers = _split_session(deployment, {"hospital-a": real, "hospital-b": decoy, "hospital-c": decoy})
    _assert_stopped_everywhere(deployment, answers, "different requests")


def test_a_different_minimum_cell_per_node_is_stopped(deployment: Deployment) -> None:
    asks = {p: {"query": "SELECT COUNT(*) GROUP BY smoking", "min_cell": 5} for p in PARTIES}
    asks["hospital-b"] = {"query": "SELECT COUNT(*) GROUP BY smoking", "min_cell": 50}
    _assert_stopped_everywhere(deployment, _split_session(deployment, asks), "different requests")


def test_explain_at_one_node_and_the_query_at_the_others_is_stopped(deployment: Deployment) -> None:
    asks = {p: {"query": "SELECT AVG(sbp) GROUP BY sex", "min_cell": 0} for p in PARTIES}
    asks["hospital-c"] = {"query": "EXPLAIN SELECT AVG(sbp) GROUP BY sex", "min_cell": 0}
    _assert_stopped_everywhere(deployment, _split_session(deployment, asks), "different requests")


def test_the_same_query_written_differently_is_one_request(deployment: Deployment) -> None:
    asks = {p: {"query": "SELECT COUNT(*) GROUP BY sex", "min_cell": 0} for p in PARTIES}
    asks["hospital-b"] = {"query": "select   count( * )\n group by sex", "min_cell": 0}
    answers = _split_session(deployment, asks)
    answers.pop("_session")
    assert all(isinstance(a, JobOutcome) for a in answers.values()), answers
    assert len({a.public["binding"] for a in answers.values()}) == 1


def test_extremes_are_refused_by_default_with_the_policy_named(deployment: Deployment) -> None:
    done = deployment.query_here("alice", "SELECT MAX(sbp)")
    assert done.returncode == 1
    assert "does not release extremes" in done.stderr and "allow_extremes = false" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_query_refused_at_one_site_does_not_count_where_it_never_ran(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "limits", ["s1", "s2"], ["alice"], rows=300)
    d.edit_policy("s1", allowed_columns=["age", "sex", "smoking"])
    d.edit_policy("s2", max_queries_per_day=2)
    with d:  # the Python client with alice's file: `pooled query` itself is tested in test_deployment.py
        for _ in range(3):
            with pytest.raises(ConsortiumError, match="s1 refuses"):
                d.ask("alice", "SELECT AVG(bmi)")
        for _ in range(2):
            assert d.ask("alice", "SELECT COUNT(*)").rows[0][0] > 0
        with pytest.raises(ConsortiumError, match="reached this site's limit of 2 queries per day"):
            d.ask("alice", "SELECT COUNT(*)")
        d.kill("s2")
        d.start_node("s2")  # the count is kept across a restart: rebuilt from the audit log, refunds included
        with pytest.raises(ConsortiumError, match="limit of 2"):
            d.ask("alice", "SELECT COUNT(*)")

    def refunds(party: str) -> int:
        return len([e for e in read_entries(d.audit_file(party)) if e.get("refunded") is True])

    assert refunds("s2") == 3  # the three queries s1 refused never ran at s2
    assert refunds("s1") == 2  # the two s2 refused over its limit never ran at s1
