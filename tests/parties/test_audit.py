"""The audit log: one hash chain, the first broken line named, no data values ever written."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from parties.audit import (
    GENESIS,
    AuditError,
    AuditLog,
    _digest,
    admitted_per_day,
    check_entry,
    read_entries,
    released,
    show,
    verify,
)


def _log(tmp_path: Path, n: int = 6) -> AuditLog:
    log = AuditLog(tmp_path / "audit" / "a.jsonl", "hospital-a")
    for i in range(n):
        log.decision("alice", session=f"s{i}", query=f"SELECT COUNT(*) -- {i}", allowed=True, reason="ok")
    return log


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines()


def _write(log: AuditLog, lines: list[str], newline: bool = True) -> None:
    log.path.write_text("\n".join(lines) + ("\n" if newline else ""))


def test_entries_follow_the_schema_and_chain_from_genesis(tmp_path: Path) -> None:
    clock = iter([datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))] * 3)
    log = AuditLog(tmp_path / "x.jsonl", "hospital-a", clock=lambda: next(clock))
    first = log.decision("alice", session="s1", query="SELECT AVG(bmi)", allowed=True, reason="allowed by site policy",
                         plan_hash="ab" * 32)
    second = log.release("alice", session="s1", plan_hash="ab" * 32, what=released([(2, 3)], suppressed=1),
                         cost={"rounds": 12, "bytes_sent": 4096, "seconds": 0.25})
    third = log.failure("alice", session="s2", error="PeerFailure: party hospital-b died", aborted=True)
    assert first["prev"] == GENESIS and second["prev"] == first["hash"] and third["prev"] == second["hash"]
    assert first["time"] == "2026-03-02T01:30:00.000+00:00"  # stored in UTC
    assert (first["decision"], first["node"], first["analyst"]) == ("allow", "hospital-a", "alice")
    assert second["released"] == {"shape": [[2, 3]], "suppressed": 1} and second["outcome"] == "ok"
    assert (third["event"], third["outcome"]) == ("abort", "aborted")
    assert list(read_entries(log.path)) == [first, second, third]
    report = verify(log.path)
    assert report.ok and report.entries == 3 and report.head == third["hash"]


def test_show_is_readable(tmp_path: Path) -> None:
    log = _log(tmp_path, 2)
    log.release("alice", session="s1", plan_hash="cd" * 32, what=released([(4,)]), cost={"rounds": 3})
    text = show(log.path)
    assert "#1 " in text and "decision by alice" in text and "query: SELECT COUNT(*) -- 1" in text
    assert "#3 " in text and "released: shape=[[4]], suppressed=0" in text and "cost: rounds=3" in text


def test_an_edited_middle_line_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    entry = json.loads(lines[3])
    entry["decision"] = "refuse"
    lines[3] = json.dumps(entry, sort_keys=True)
    _write(log, lines)
    report = verify(log.path)
    assert not report.ok and report.broken_line == 4 and report.entries == 3 and "edited" in report.reason
    assert "#4 " in show(log.path)  # still readable, for the investigation


def test_rehashing_an_edited_line_breaks_the_next_link(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    entry = json.loads(lines[2])
    entry["analyst"] = "bob"
    body = {k: v for k, v in entry.items() if k != "hash"}
    entry["hash"] = _digest(entry["prev"], body)  # an editor who recomputes this line's hash
    lines[2] = json.dumps(entry, sort_keys=True)
    _write(log, lines)
    report = verify(log.path)
    assert not report.ok and report.broken_line == 4 and "deleted or reordered" in report.reason


@pytest.mark.parametrize(
    ("mutation", "line", "why"),
    [
        ("delete", 3, "deleted or reordered"),
        ("swap", 2, "deleted or reordered"),
        ("garble", 5, "not valid JSON"),
        ("blank", 5, "not valid JSON"),
        ("strip", 2, "missing fields ['prev']"),
        ("list", 4, "not a JSON object"),
    ],
)
def test_damaged_lines_are_named(tmp_path: Path, mutation: str, line: int, why: str) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    if mutation == "delete":
        del lines[2]
    elif mutation == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    elif mutation == "garble":
        lines[4] = lines[4][:-5]
    elif mutation == "blank":
        lines.insert(4, "")
    elif mutation == "strip":
        entry = json.loads(lines[1])
        del entry["prev"]
        lines[1] = json.dumps(entry)
    else:
        lines[3] = "[1, 2]"
    _write(log, lines)
    report = verify(log.path)
    assert not report.ok and report.broken_line == line and why in report.reason, report


def test_a_truncated_last_line_is_named_and_stops_appends(tmp_path: Path) -> None:
    log = _log(tmp_path)
    text = log.path.read_text()
    log.path.write_text(text[: len(text) - 20])
    report = verify(log.path)
    assert not report.ok and report.broken_line == 6 and report.entries == 5 and "truncated" in report.reason
    with pytest.raises(AuditError, match="incomplete"):
        log.decision("alice", session="s", query="SELECT COUNT(*)", allowed=True, reason="ok")
    with pytest.raises(AuditError, match="line 6"):
        AuditLog.open(log.path, "hospital-a")


def test_an_earlier_break_is_named_before_a_truncated_tail(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    lines[1] = lines[1].replace('"allow"', '"refuse"')
    _write(log, lines[:-1] + [lines[-1][:10]], newline=False)
    report = verify(log.path)
    assert report.broken_line == 2 and "edited" in report.reason


def test_losing_the_tail_is_caught_only_against_a_recorded_head(tmp_path: Path) -> None:
    log = _log(tmp_path)
    head = verify(log.path).head
    _write(log, _lines(log)[:-2])
    assert verify(log.path).ok  # a chain alone cannot see entries removed from the end
    report = verify(log.path, expect_head=head)
    assert not report.ok and "entries lost at the end" in report.reason
    log.decision("alice", session="s9", query="SELECT COUNT(*)", allowed=True, reason="ok")
    later = verify(log.path)
    assert later.ok and verify(log.path, expect_head=verify(log.path).head).ok


def test_concurrent_appends_from_threads_and_two_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    writers = [AuditLog(path, "hospital-a"), AuditLog(path, "hospital-a")]  # two objects: the file lock serialises

    def write(i: int) -> None:
        for j in range(5):
            writers[i % 2].decision(f"a{i}", session=f"{i}-{j}", query="SELECT COUNT(*)", allowed=True, reason="ok")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify(path)
    assert report.ok and report.entries == 40
    assert sorted(e["session"] for e in read_entries(path)) == sorted(f"{i}-{j}" for i in range(8) for j in range(5))


def test_long_entries_chain_across_read_blocks(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "long.jsonl", "hospital-a")
    for i in range(3):
        log.decision("alice", session=str(i), query="SELECT COUNT(*) WHERE " + " OR ".join(["age > 1"] * 1500),
                     allowed=True, reason="ok")
    assert verify(log.path).ok and verify(log.path).entries == 3


@pytest.mark.parametrize(
    "fields",
    [
        {"released": [1.5, 2.5]},
        {"released": [[1, 2], [3, 4]]},
        {"released": {"shape": [2], "values": [3]}},
        {"released": {"shape": [2.5]}},
        {"values": [1.5]},
        {"rows": 3},
        {"result": "ok"},
        {"mean_bmi": 27.4},
        {"groups": [12, 30]},
        {"detail": {"count": 12}},
        {"cost": {"rounds": "many"}},
        {"decision": "maybe"},
        {"outcome": "partial"},
        {"query": ["SELECT"]},
        {"hash": "0" * 64},
    ],
)
def test_the_writer_refuses_data_values_and_off_schema_fields(tmp_path: Path, fields: dict[str, object]) -> None:
    log = AuditLog(tmp_path / "v.jsonl", "hospital-a")
    with pytest.raises(ValueError):
        log.append("alice", "release", **fields)
    assert not log.path.exists() or log.path.read_text() == ""


def test_the_writer_accepts_the_documented_shapes() -> None:
    check_entry({"event": "release", "released": released([(3, 2), (3,)], suppressed=2, what="table"),
                 "cost": {"rounds": 4, "seconds": 0.5}, "groups": 3, "refused": None})
    check_entry({"event": "release", "released": ["12 values"], "outcome": "ok"})
    with pytest.raises(ValueError, match="event"):
        check_entry({"event": "deleted"})


def test_daily_counts_come_from_allowed_decisions_in_utc(tmp_path: Path) -> None:
    brazil = timezone(timedelta(hours=-3))
    times = iter([datetime(2026, 5, 1, 23, 50, tzinfo=UTC), datetime(2026, 5, 1, 22, 30, tzinfo=brazil),
                  datetime(2026, 5, 2, 9, 0, tzinfo=UTC)])
    log = AuditLog(tmp_path / "d.jsonl", "hospital-a", clock=lambda: next(times))
    log.decision("alice", session="1", query="q", allowed=True, reason="ok")
    log.decision("alice", session="2", query="q", allowed=True, reason="ok")  # 01:30 UTC on May 2
    log.decision("bob", session="3", query="q", allowed=False, reason="no")
    assert admitted_per_day(log.path) == {
        ("alice", datetime(2026, 5, 1).date()): 1,
        ("alice", datetime(2026, 5, 2).date()): 1,
    }
