"""A deployed consortium's audit logs against an insider, and its members' start-up checks on keys.

Real processes from `pooled init`'s files (tests/parties/deployment.py): queries leave every
node's signed head in the others' logs, so a log rewritten after the fact (entries dropped,
the whole chain recomputed) is caught by `pooled audit verify --peers`; a log changed while
its node runs stops that node at the next query. Members refuse to start with a loose or
foreign key, and a node without its dealer says so in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parties.audit import GENESIS, _digest, read_entries
from tests.parties.deployment import Deployment, pooled

pytestmark = pytest.mark.network


def _rechain(path: Path, keep: list[dict]) -> None:
    """Rewrite a log as `keep` with every hash recomputed: a chain that verifies on its own."""
    prev, lines = GENESIS, []
    for entry in keep:
        body = {k: v for k, v in entry.items() if k != "hash"} | {"prev": prev}
        prev = _digest(prev, body)
        lines.append(json.dumps({**body, "hash": prev}, sort_keys=True) + "\n")
    path.write_text("".join(lines))


def _one_line(done: object) -> str:
    err = done.stderr.strip()  # type: ignore[attr-defined]
    assert done.returncode != 0 and "\n" not in err and "Traceback" not in err, err  # type: ignore[attr-defined]
    return err


def test_a_log_rewritten_after_the_fact_is_caught_by_the_heads_its_peers_hold(tmp_path: Path) -> None:
    parties = ["hospital-a", "hospital-b", "hospital-c"]
    d = Deployment(tmp_path / "consortium", parties, ["alice"], rows=600)
    queries = ["SELECT COUNT(*)", "SELECT COUNT(*) GROUP BY sex", "SELECT COUNT(*) WHERE age >= 50", "SELECT COUNT(*)"]
    with d:
        for q in queries:
            d.ask("alice", q)
    audit, certs = d.dir / "audit", d.dir / "certs"
    for p in parties:
        ok = pooled("audit", "verify", str(d.audit_file(p)), "--peers", str(audit), "--certs", str(certs))
        assert ok.returncode == 0, ok.stdout
        assert f"all 8 heads of {p} recorded in" in ok.stdout and "signatures checked" in ok.stdout
    victim = d.audit_file("hospital-a")
    entries = list(read_entries(victim))
    dropped = {e["session"] for e in entries if e.get("query") == "SELECT COUNT(*) WHERE age >= 50"}
    _rechain(victim, [e for e in entries if e.get("session") not in dropped])  # the third query never happened
    alone = pooled("audit", "verify", str(victim))
    assert alone.returncode == 0 and "intact" in alone.stdout  # the chain alone cannot tell
    caught = pooled("audit", "verify", str(victim), "--peers", str(audit), "--certs", str(certs))
    assert caught.returncode == 1, caught.stdout
    problems = [line.strip() for line in caught.stdout.splitlines() if "recorded hospital-a at" in line]
    # the heads sent with the third and fourth queries, each held by both other sites
    assert len(problems) == 4, caught.stdout
    for peer in ("hospital-b", "hospital-c"):
        lines = [p for p in problems if p.startswith(str(audit / f"{peer}.audit.jsonl") + ":")]
        assert len(lines) == 2, caught.stdout
        assert "the log was rewritten" in lines[0] and "this log has only 12 entries" in lines[1]
        line = int(lines[0].split(":")[1].split()[0])  # the peer log's line: that query's record of a's head
        recorded = list(read_entries(audit / f"{peer}.audit.jsonl"))[line - 1]
        assert recorded["event"] == "peer_head" and recorded["session"] in dropped


def test_a_log_edited_while_its_node_runs_stops_that_node_before_it_reads_anything(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "consortium", ["s1", "s2"], ["alice"], rows=400)
    with d:
        d.ask("alice", "SELECT COUNT(*)")
        log = d.audit_file("s1")
        entries = list(read_entries(log))
        _rechain(log, entries[:-1])  # the last entry dropped, the chain recomputed
        tampered = log.read_bytes()
        for _ in range(2):  # this query and every later one
            done = d.query_here("alice", "SELECT COUNT(*) GROUP BY sex", "--format", "json")
            assert done.returncode == 1 and done.stdout == ""
            assert "party s1 failed" in done.stderr
            assert "this site's audit log changed outside the node" in done.stderr
            assert "s1 refuses every query until its operator checks the log" in done.stderr
        assert log.read_bytes() == tampered  # s1 wrote nothing more, not even a decision
        after = [e for e in read_entries(d.audit_file("s2")) if e.get("query") == "SELECT COUNT(*) GROUP BY sex"]
        sessions = {e["session"] for e in after}
        s2 = [e for e in read_entries(d.audit_file("s2")) if e.get("session") in sessions]
        assert len(sessions) == 2 and not [e for e in s2 if e["event"] == "release"]  # nothing released
        assert all("s1" in e["error"] for e in s2 if e["event"] in ("abort", "failure"))


def test_members_refuse_a_loose_or_foreign_key_and_a_missing_dealer_in_one_line(tmp_path: Path) -> None:
    d = Deployment(tmp_path / "consortium", ["s1", "s2"], ["alice"], rows=200)  # written, not started
    certs = d.dir / "certs"
    key = certs / "party-s1.key"
    key.chmod(0o644)
    loose = _one_line(pooled("node", "--config", str(d.node_file("s1")), timeout=60))
    assert loose == f"pooled node: the private key {key} is open to group or others (mode 0644): chmod 600 {key}"
    key.chmod(0o600)
    (certs / "dealer.key").chmod(0o640)
    dealer = _one_line(pooled("dealer", "--config", str(d.dir / "dealer.toml"), timeout=60))
    assert dealer.startswith("pooled dealer: the private key") and dealer.endswith(f"chmod 600 {certs / 'dealer.key'}")
    d.edit("s1", "tls", key="certs/party-s2.key")  # another member's key
    foreign = _one_line(pooled("node", "--config", str(d.node_file("s1")), timeout=60))
    assert foreign == f"pooled node: {certs / 'party-s2.key'} is not the private key of {certs / 'party-s1.pem'}" \
        " (it belongs to another certificate)"
    d.edit("s1", "tls", key="certs/party-s1.key")
    alone = _one_line(pooled("node", "--config", str(d.node_file("s1")), timeout=60))  # no dealer is running
    assert alone.startswith(f"pooled node: cannot reach the dealer at 127.0.0.1:{d.base_port}: ")
