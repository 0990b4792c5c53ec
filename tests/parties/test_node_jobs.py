"""What a node runs: queries only, unless started from flags with `--bench-jobs`; every job through the site's gate.

Real processes on 127.0.0.1 (mutual TLS): a consortium from `pooled init` started with
`--config`, and local consortia started from flags (`LocalConsortium`), with and without
the demo and benchmark jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from parties.audit import read_entries, verify
from parties.certs import CertFiles, Identity, create_consortium
from parties.client import ConsortiumClient, ConsortiumError
from parties.config import load_analyst
from parties.jobs import bench_inputs
from parties.local import LocalConsortium
from parties.tls import TlsMaterial
from queries.synth import write_synthetic
from tests.parties.deployment import Deployment, pooled

pytestmark = pytest.mark.network
SITES = ["s1", "s2"]
CORE = {"secure_sum": {"size": 10}, "product": {"size": 10}, "repeat_mul": {"size": 10, "repeat": 2},
        "bench_mul": {"size": 10}}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("deployed"), SITES, ["alice"], rows=400)
    with d:
        yield d
    assert d.forced == []


def _sessions_with(path: Path, event: str) -> set[str]:
    return {e["session"] for e in read_entries(path) if e["event"] == event}


def test_a_configured_node_answers_queries_and_nothing_else(deployed: Deployment) -> None:
    done = deployed.query_here("alice", "SELECT COUNT(*)")
    assert done.returncode == 0, done.stderr
    explain = deployed.query_here("alice", "EXPLAIN SELECT COUNT(*) GROUP BY sex")
    assert explain.returncode == 0, explain.stderr
    assert explain.stdout.splitlines()[0] == "plan for: SELECT"  # plain text, left-aligned
    settings = load_analyst(deployed.analyst_file("alice"))
    with ConsortiumClient(TlsMaterial.load(settings.tls.cert_files), dict(settings.parties)) as client:
        assert all(client.status(site).jobs == ["query"] for site in SITES)
        for job, params in CORE.items():
            with pytest.raises(ConsortiumError) as info:
                client.run(job, params, session=f"core-{job}")
            first = str(info.value).splitlines()[0]
            assert f"unknown job {job!r}; this node runs ['query']" in first, str(info.value)
            assert all("\n" not in message for message in info.value.failures.values())
    for site in SITES:
        log = deployed.audit_file(site)
        assert verify(log).ok
        refused = [e for e in read_entries(log) if e.get("session", "").startswith("core-")]
        assert sorted(e["job"] for e in refused) == sorted(CORE)  # each refusal is logged ...
        assert {e["event"] for e in refused} == {"decision"} and {e["decision"] for e in refused} == {"refuse"}
        assert not {f"core-{job}" for job in CORE} & _sessions_with(log, "release")  # ... and nothing released


def test_a_configured_node_refuses_the_bench_jobs_flag(deployed: Deployment) -> None:
    done = pooled("node", "--config", str(deployed.node_file("s1")), "--bench-jobs", timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--bench-jobs is refused with --config" in lines[0]
    assert "runs queries only" in lines[0]


def test_no_configuration_file_can_turn_the_bench_jobs_on(deployed: Deployment, tmp_path: Path) -> None:
    text = deployed.node_file("s1").read_text()
    for where, edited in (("bench_jobs", "bench_jobs = true\n" + text),
                          ("node.bench_jobs", text.replace("[node]\n", "[node]\nbench_jobs = true\n"))):
        path = deployed.dir / "node-edited.toml"  # beside the original: its relative paths still hold
        path.write_text(edited)
        done = pooled("node", "--config", str(path), timeout=60)
        assert done.returncode != 0 and f"{where}: unknown key" in done.stderr, done.stderr
    (deployed.dir / "node-edited.toml").unlink()


def test_a_node_started_from_flags_runs_queries_only_by_default(tmp_path: Path) -> None:
    files = write_synthetic(60, 2, tmp_path / "data", seed=4)
    with LocalConsortium(SITES, data=dict(zip(SITES, files))) as lc, lc.client() as client:
        assert client.status("s1").jobs == ["query"]
        with pytest.raises(ConsortiumError, match="unknown job 'bench_mul'; this node runs \\['query'\\]"):
            client.run("bench_mul", {"size": 10})
        assert lc.query("SELECT COUNT(*)").rows[0][0] == 60


def test_bench_jobs_pass_the_sites_gate(tmp_path: Path) -> None:
    files = write_synthetic(60, 2, tmp_path / "data", seed=5)
    policy = tmp_path / "policy.toml"
    policy.write_text('max_queries_per_day = 3\n[analysts]\nalice = ["counts"]\n')
    audit = tmp_path / "audit"
    with LocalConsortium(SITES, analyst="alice", data=dict(zip(SITES, files)), bench_jobs=True,
                         node_args=["--policy", str(policy)], audit_dir=audit) as lc:
        create_consortium(lc.certs_dir, [], dealer=False, analysts=["eve"], ca_key=lc.ca_key)  # same CA, listed nowhere
        eve = ConsortiumClient(TlsMaterial.load(CertFiles.in_dir(lc.certs_dir, Identity.analyst("eve"))),
                               lc.addresses)
        with eve, pytest.raises(ConsortiumError, match="analyst 'eve' is not authorised at this site"):
            eve.run("bench_mul", {"size": 10, "seed": 1}, session="eve-1")
        with lc.client() as alice:
            result = alice.run("bench_mul", {"size": 10, "seed": 1}, session="alice-1")
            assert np.abs(result.outputs()[0] - bench_inputs(1, 10) * bench_inputs(2, 10)).max() < 1e-3
            with pytest.raises(ConsortiumError, match="asks for 10,000,001 elements in one input; this site allows"):
                alice.run("bench_mul", {"size": 10_000_001}, session="alice-big")
            with pytest.raises(ConsortiumError, match="repeat must be between 1 and 1000"):
                alice.run("repeat_mul", {"size": 10, "repeat": 5000}, session="alice-long")
            assert lc.query("SELECT COUNT(*)").rows[0][0] == 60  # a query draws on the same daily limit
            alice.run("secure_sum", {"size": 5}, session="alice-2")
            with pytest.raises(ConsortiumError, match="reached this site's limit of 3 queries and jobs per day"):
                alice.run("bench_mul", {"size": 10}, session="alice-3")
    for site in SITES:
        log = audit / f"{site}.audit.jsonl"
        assert verify(log).ok
        jobs = {e["session"]: e for e in read_entries(log) if "job" in e and e["event"] == "decision"}
        assert {s: (e["analyst"], e["job"], e["decision"]) for s, e in jobs.items()} == {
            "eve-1": ("eve", "bench_mul", "refuse"),
            "alice-1": ("alice", "bench_mul", "allow"),
            "alice-big": ("alice", "bench_mul", "refuse"),
            "alice-long": ("alice", "repeat_mul", "refuse"),
            "alice-2": ("alice", "secure_sum", "allow"),
            "alice-3": ("alice", "bench_mul", "refuse"),
        }
        assert _sessions_with(log, "release") >= {"alice-1", "alice-2"}
        assert not _sessions_with(log, "release") & {"eve-1", "alice-big", "alice-long", "alice-3"}
        release = next(e for e in read_entries(log) if e["event"] == "release" and e["session"] == "alice-1")
        assert release["job"] == "bench_mul" and release["released"]["shape"] == [[10]]
