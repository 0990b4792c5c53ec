"""The audit chain catches edits, deletions, reordering and truncation; policies decide per site."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from parties.audit import AuditLog, count_today, show, verify
from parties.policy import SitePolicy, decide
from queries.parser import parse


def _log(tmp_path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(tmp_path / "a.jsonl", "site1")
    for i in range(n):
        log.append("alice", "decision", query=f"SELECT COUNT(*) -- {i}", decision="allow", reason="ok")
    return log


def test_an_intact_chain_verifies(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert verify(log.path).ok and verify(log.path).entries == 5
    assert "decision by alice" in show(log.path)


def test_an_edited_line_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = log.path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["decision"] = "refuse"
    lines[2] = json.dumps(entry, sort_keys=True)
    log.path.write_text("\n".join(lines) + "\n")
    report = verify(log.path)
    assert not report.ok and report.broken_line == 3 and "edited" in report.reason


@pytest.mark.parametrize("mutation", ["delete", "swap", "truncate"])
def test_deleted_reordered_or_truncated_lines_break_the_chain(tmp_path: Path, mutation: str) -> None:
    log = _log(tmp_path)
    lines = log.path.read_text().splitlines()
    if mutation == "delete":
        del lines[1]
        text = "\n".join(lines) + "\n"
    elif mutation == "swap":
        lines[1], lines[2] = lines[2], lines[1]
        text = "\n".join(lines) + "\n"
    else:
        text = "\n".join(lines) + "\n" + lines[0][: len(lines[0]) // 2]
    log.path.write_text(text)
    report = verify(log.path)
    assert not report.ok and report.broken_line == (6 if mutation == "truncate" else 2)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "c.jsonl", "site1")
    def write(i: int) -> None:
        log.append(f"a{i}", "decision", decision="allow")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify(log.path).ok and verify(log.path).entries == 20


def test_entries_refuse_data_values(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "v.jsonl", "site1")
    with pytest.raises(ValueError, match="never hold"):
        log.append("alice", "release", values=[1.5, 2.5])
    with pytest.raises(ValueError, match="never hold"):
        log.append("alice", "release", released={"rows": [[1, 2]]})


def test_daily_counter_reads_the_log(tmp_path: Path) -> None:
    log = _log(tmp_path, 3)
    log.append("bob", "decision", decision="refuse", reason="no")
    assert count_today(log.path, "alice") == 3 and count_today(log.path, "bob") == 0


def test_policy_roles_limits_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'min_cell = 10\nmax_queries_per_day = 2\nallowed_columns = ["age", "sex", "bmi"]\n'
        '[analysts]\nalice = ["counts", "statistics", "regression"]\nbob = ["counts"]\n'
    )
    policy = SitePolicy.load(path)
    assert policy.min_cell == 10
    counts, stats = parse("SELECT COUNT(*) GROUP BY sex"), parse("SELECT AVG(bmi)")
    assert decide(policy, "bob", counts, 0)[0]
    assert decide(policy, "bob", stats, 0) == (False, "analyst 'bob' lacks the 'statistics' role at this site")
    assert not decide(policy, "mallory", counts, 0)[0]
    assert "limit of 2" in decide(policy, "alice", stats, 2)[1]
    assert "'sbp'" in decide(policy, "alice", parse("SELECT AVG(sbp)"), 0)[1]
    assert decide(policy, "alice", parse("LINEAR bmi ~ age"), 0)[0]
    bad = tmp_path / "bad.toml"
    bad.write_text('[analysts]\neve = ["admin"]\n')
    with pytest.raises(ValueError, match="unknown roles"):
        SitePolicy.load(bad)
