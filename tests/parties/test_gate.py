"""The gate in front of every job: site policy, daily count, size limit and audit (no processes)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from mpc.ring import Ring
from mpc.share import Share
from mpc.stats import CommStats
from parties.audit import AuditLog, read_entries, verify
from parties.bench_jobs import bench_op_job
from parties.commands.node import registry
from parties.gate import MAX_ELEMENTS, JobGate, decide_job, size_problem
from parties.jobs import Job, core_jobs
from parties.policy import QueryCounter, SitePolicy
from parties.query_job import query_job
from parties.records import JobCall, JobOutcome

LISTED = SitePolicy(max_queries_per_day=2, analysts={"alice": frozenset({"counts"})})


def _call(job: str, analyst: str = "alice", session: str = "s1", **params: Any) -> JobCall:
    return JobCall(session, job, {**params, "_analyst": analyst}, ["a", "b"])


def _outcome(size: int) -> JobOutcome:
    ring = Ring(64)
    return JobOutcome(0, [Share(ring.zeros((size,)), ring, 20)], CommStats(bytes_sent=8 * size), 0.0, 0.25)


def test_every_core_and_benchmark_job_declares_its_size_and_only_the_query_polices_itself() -> None:
    jobs = registry(query_job(), bench=True)
    assert set(jobs) == {"query", "product", "secure_sum", "bench_mul", "repeat_mul", "bench_matmul", "bench_open",
                         "bench_op"}
    assert [name for name, job in jobs.items() if job.checks_policy] == ["query"]
    assert all(job.elements is not None for name, job in jobs.items() if name != "query")


def test_a_node_without_the_flag_registers_the_query_job_only() -> None:
    assert list(registry(query_job())) == ["query"]
    from parties.commands import node

    parser = argparse.ArgumentParser()
    node.register(parser.add_subparsers())
    assert parser.parse_args(["node", "--certs", "c", "--name", "a", "--dealer", "h:1"]).bench_jobs is False


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("bench_mul", {"size": MAX_ELEMENTS}, None),
        ("bench_mul", {"size": MAX_ELEMENTS + 1}, "asks for 10,000,001 elements in one input"),
        ("secure_sum", {"size": 20_000_000}, "at most 10,000,000"),
        ("product", {"size": 0}, "size must be positive"),
        ("bench_matmul", {"rows": 4000, "cols": 4000}, "asks for 16,000,000 elements"),
        ("bench_open", {}, "needs the parameter 'size'"),
        ("repeat_mul", {"size": 10, "repeat": 1001}, "repeat must be between 1 and 1000"),
        ("product", {"size": "many"}, "invalid literal"),
    ],
)
def test_the_size_of_a_core_job_is_bounded(name: str, params: dict[str, Any], problem: str | None) -> None:
    found = size_problem(core_jobs()[name], params)
    assert found is None if problem is None else problem in found  # type: ignore[operator]


def test_the_size_of_a_nonlinear_benchmark_is_bounded_and_its_op_known() -> None:
    job = bench_op_job()
    assert size_problem(job, {"op": "exp", "size": 100}) is None
    assert "unknown op 'cube'" in str(size_problem(job, {"op": "cube", "size": 100}))
    assert "10,000,000" in str(size_problem(job, {"op": "exp", "size": 10**8}))


def test_a_job_that_does_not_declare_its_size_is_refused() -> None:
    job = Job("mystery", lambda ctx, params, site: None, lambda ctx, prepared: [])
    assert "does not declare its input size" in str(size_problem(job, {}))


def test_decide_job_checks_the_listing_then_the_size_then_the_daily_limit() -> None:
    assert decide_job(LISTED, "eve", 0, None).reason == "analyst 'eve' is not authorised at this site"
    assert decide_job(LISTED, "eve", 0, "too big").reason == "analyst 'eve' is not authorised at this site"
    assert decide_job(LISTED, "alice", 0, "too big") == (False, "too big")
    assert decide_job(LISTED, "alice", 1, None).allowed
    assert "limit of 2 queries and jobs per day" in decide_job(LISTED, "alice", 2, None).reason
    assert decide_job(SitePolicy(), "anyone", 0, None).allowed  # no list: every analyst of the consortium


def test_the_gate_counts_audits_and_refuses(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.audit.jsonl", "a")
    counter = QueryCounter()
    gate = JobGate(LISTED, audit, counter)
    job = core_jobs()["bench_mul"]
    assert not gate.admit(job, _call("bench_mul", "eve", "s-eve", size=10)).allowed
    assert not gate.admit(job, _call("bench_mul", "alice", "s-big", size=MAX_ELEMENTS + 1)).allowed
    assert counter.today("alice") == 0 and counter.today("eve") == 0  # refusals are not counted
    assert gate.admit(job, _call("bench_mul", "alice", "s-ok", size=10)).allowed
    gate.released(job, _call("bench_mul", "alice", "s-ok", size=10), _outcome(10))
    assert counter.today("alice") == 1
    gate.failed(job, _call("bench_mul", "alice", "s-ok", size=10), RuntimeError("peer b died"), aborted=True)
    gate.unknown(_call("secure_sum", "alice", "s-unknown"), "unknown job 'secure_sum'")
    entries = list(read_entries(audit.path))
    assert [(e["session"], e["event"], e.get("decision")) for e in entries] == [
        ("s-eve", "decision", "refuse"),
        ("s-big", "decision", "refuse"),
        ("s-ok", "decision", "allow"),
        ("s-ok", "release", None),
        ("s-ok", "abort", None),
        ("s-unknown", "decision", "refuse"),
    ]
    assert entries[0]["job"] == "bench_mul" and entries[0]["analyst"] == "eve"
    assert "10,000,001" in entries[1]["reason"]
    assert entries[3]["released"]["shape"] == [[10]] and entries[3]["cost"]["bytes_sent"] == 80
    assert entries[5]["job"] == "secure_sum"
    assert verify(audit.path).ok
    assert QueryCounter.from_audit(audit.path).today("alice") == 1  # a restart keeps the job's count


def test_the_query_job_and_the_gate_share_one_daily_limit(tmp_path: Path) -> None:
    counter = QueryCounter()
    gate = JobGate(LISTED, None, counter)
    counter.record("alice")  # as the query job does when it admits a query
    assert gate.admit(core_jobs()["secure_sum"], _call("secure_sum", size=3)).allowed
    refused = gate.admit(core_jobs()["secure_sum"], _call("secure_sum", size=3))
    assert not refused.allowed and "limit of 2" in refused.reason


def test_the_gate_lets_the_query_job_through_untouched(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.audit.jsonl", "a")
    counter = QueryCounter()
    gate = JobGate(LISTED, audit, counter)
    query = query_job(LISTED, audit, counter=counter)
    call = _call("query", "eve", query="SELECT COUNT(*)")
    assert gate.admit(query, call).allowed  # the query job decides (and refuses eve) itself
    gate.released(query, call, _outcome(1))
    gate.failed(query, call, RuntimeError("x"), aborted=False)
    assert counter.today("eve") == 0 and not audit.path.exists()
