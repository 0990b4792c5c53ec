"""Signed audit heads, the node's guard on its own file, and the cross-check against peers' records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parties.audit import GENESIS, AuditError, AuditLog, _digest, read_entries, verify
from parties.audit_heads import HeadError, HeadSigner, check_head
from parties.audit_peers import cross_check
from parties.certs import CertFiles, Identity, create_consortium

PARTIES = ["a", "b", "c"]


@pytest.fixture()
def certs(tmp_path: Path) -> Path:
    create_consortium(tmp_path / "certs", PARTIES, dealer=False, ca_key=tmp_path / "ca-private" / "ca.key")
    return tmp_path / "certs"


def _signer(certs: Path, party: str) -> HeadSigner:
    return HeadSigner.load(CertFiles.in_dir(certs, Identity.party(party)))


def _logs(tmp_path: Path, certs: Path) -> dict[str, AuditLog]:
    return {p: AuditLog.open(tmp_path / "audit" / f"{p}.audit.jsonl", p, signer=_signer(certs, p)) for p in PARTIES}


def _query(logs: dict[str, AuditLog], session: str) -> None:
    """What the query job does at every node: decide, exchange signed heads, record the others', release."""
    for log in logs.values():
        log.decision("alice", session=session, query="SELECT COUNT(*)", allowed=True, reason="ok")
    heads = {p: log.signed_head() for p, log in logs.items()}
    for p, log in logs.items():
        log.record_peer_heads("alice", session, {q: h for q, h in heads.items() if q != p})
    for log in logs.values():
        log.release("alice", session=session, plan_hash="ab" * 32, what="a count", cost={"rounds": 1})


def _rechain(path: Path, keep: list[dict]) -> None:
    """Rewrite a log as `keep`, every hash recomputed: a chain that verifies."""
    prev, lines = GENESIS, []
    for entry in keep:
        body = {k: v for k, v in entry.items() if k != "hash"} | {"prev": prev}
        prev = _digest(prev, body)
        lines.append(json.dumps({**body, "hash": prev}, sort_keys=True))
    path.write_text("".join(line + "\n" for line in lines))


def test_a_signed_head_verifies_and_names_the_log_state(tmp_path: Path, certs: Path) -> None:
    log = _logs(tmp_path, certs)["a"]
    log.decision("alice", session="s1", query="SELECT COUNT(*)", allowed=True, reason="ok")
    head = log.signed_head()
    assert (head["node"], head["count"], head["hash"]) == ("a", 1, verify(log.path).head)
    record = check_head(json.loads(json.dumps(head)), "a", (certs / "ca.pem").read_bytes())  # survives JSON
    assert (record["peer"], record["peer_count"], record["peer_hash"]) == ("a", 1, head["hash"])


@pytest.mark.parametrize("forgery", ["count", "hash", "signature", "other key", "wrong name", "foreign CA"])
def test_record_peer_heads_rejects_a_forged_head_and_writes_nothing(
    tmp_path: Path, certs: Path, forgery: str
) -> None:
    logs = _logs(tmp_path, certs)
    logs["a"].decision("alice", session="s1", query="SELECT COUNT(*)", allowed=True, reason="ok")
    head = logs["a"].signed_head()
    if forgery == "count":
        head["count"] = 0
    elif forgery == "hash":
        head["hash"] = "f" * 64
    elif forgery == "signature":
        head["signature"] = logs["a"].signed_head()["signature"][:-8] + "AAAAAAA="
    elif forgery == "other key":  # b signs a head in a's name with its own key, shipping a's certificate
        head = _signer(certs, "b").sign("a", head["count"], head["hash"]) | {"cert": head["cert"]}
    elif forgery == "wrong name":  # b's genuine head, presented as a's
        head = logs["b"].signed_head() | {"node": "a"}
    else:
        other = create_consortium(tmp_path / "other", ["a"], dealer=False)
        head = HeadSigner.load(other[Identity.party("a")]).sign("a", head["count"], head["hash"])
    logs["b"].decision("alice", session="s1", query="SELECT COUNT(*)", allowed=True, reason="ok")
    before = logs["b"].path.read_bytes()
    with pytest.raises(HeadError, match="audit head"):
        logs["b"].record_peer_heads("alice", "s1", {"a": head})
    assert logs["b"].path.read_bytes() == before


def test_peer_heads_are_recorded_as_entries_that_chain(tmp_path: Path, certs: Path) -> None:
    logs = _logs(tmp_path, certs)
    _query(logs, "s1")
    recorded = [e for e in read_entries(logs["b"].path) if e["event"] == "peer_head"]
    assert [(e["peer"], e["peer_count"], e["session"]) for e in recorded] == [("a", 1, "s1"), ("c", 1, "s1")]
    assert all(verify(log.path).ok for log in logs.values())
    with pytest.raises(HeadError, match="in the name of this node"):
        logs["b"].record_peer_heads("alice", "s2", {"b": logs["b"].signed_head()})


def test_a_log_can_only_be_signed_with_its_own_node_key(tmp_path: Path, certs: Path) -> None:
    with pytest.raises(AuditError, match="cannot be signed with the key of pooled://party/b"):
        AuditLog.open(tmp_path / "a.jsonl", "a", signer=_signer(certs, "b"))


@pytest.mark.parametrize("change", ["appended by another writer", "same-size edit", "rechained", "deleted"])
def test_a_node_refuses_for_good_once_its_file_changed_outside_it(tmp_path: Path, certs: Path, change: str) -> None:
    log = _logs(tmp_path, certs)["a"]
    for i in range(3):
        log.decision("alice", session=f"s{i}", query="SELECT COUNT(*)", allowed=True, reason="ok")
    log.check()  # its own appends are fine
    original = log.path.read_bytes()
    if change == "appended by another writer":
        AuditLog(log.path, "a").decision("mallory", session="x", query="q", allowed=True, reason="ok")
    elif change == "same-size edit":
        log.path.write_bytes(original.replace(b'"s1"', b'"s9"'))
    elif change == "rechained":
        _rechain(log.path, list(read_entries(log.path))[1:])
    else:
        log.path.unlink()
    with pytest.raises(AuditError, match="this site's audit log changed outside the node") as info:
        log.check()
    assert "\n" not in str(info.value)
    log.path.write_bytes(original)  # even put back, the node keeps refusing until restarted
    with pytest.raises(AuditError, match="changed outside the node"):
        log.decision("alice", session="s9", query="SELECT COUNT(*)", allowed=True, reason="ok")
    assert log.path.read_bytes() == original
    assert AuditLog.open(log.path, "a").entries() == list(read_entries(log.path))  # a restart takes it again


def test_cross_check_names_every_recorded_head_a_rechained_log_lost(tmp_path: Path, certs: Path) -> None:
    logs = _logs(tmp_path, certs)
    for i in range(3):
        _query(logs, f"s{i}")
    audit = tmp_path / "audit"
    for p in PARTIES:
        check = cross_check(audit / f"{p}.audit.jsonl", audit, certs=certs)
        assert check.ok and check.heads == 6 and check.signatures_checked, check.problems
    entries = list(read_entries(logs["a"].path))
    _rechain(logs["a"].path, [e for e in entries if e.get("session") != "s1"])  # drop the second query
    assert verify(logs["a"].path).ok  # the chain alone cannot tell
    check = cross_check(logs["a"].path, audit, certs=certs)
    assert not check.ok
    # heads taken at or after the dropped query no longer match (s1 and s2, in b's and c's logs)
    assert len(check.problems) == 4
    for problem in check.problems:
        assert ("b.audit.jsonl:" in problem or "c.audit.jsonl:" in problem) and "recorded a at" in problem
    assert any("session s1" in p and "this log's entry 5 has" in p for p in check.problems)


def test_cross_check_catches_a_cut_tail_and_a_forged_record(tmp_path: Path, certs: Path) -> None:
    logs = _logs(tmp_path, certs)
    for i in range(2):
        _query(logs, f"s{i}")
    audit = tmp_path / "audit"
    a_entries = list(read_entries(logs["a"].path))
    _rechain(logs["a"].path, a_entries[:3])
    cut = cross_check(logs["a"].path, audit)
    assert not cut.signatures_checked
    assert any("this log has only 3 entries" in p for p in cut.problems)
    _rechain(logs["a"].path, a_entries)  # a's log restored; now b invents a record of a state a's log holds
    b_entries = list(read_entries(logs["b"].path))
    fake = next(e for e in b_entries if e["event"] == "peer_head" and e["peer"] == "a")
    fake["peer_count"], fake["peer_hash"] = 3, a_entries[2]["hash"]
    _rechain(logs["b"].path, b_entries)
    assert cross_check(logs["a"].path, audit).ok  # consistent: only the signature tells it is not a's
    signed = cross_check(logs["a"].path, audit, certs=certs)
    assert len(signed.problems) == 1
    assert "b.audit.jsonl" in signed.problems[0] and "signature does not verify" in signed.problems[0]
