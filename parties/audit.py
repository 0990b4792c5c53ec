"""Each node's tamper-evident audit log: append-only JSON lines in a SHA-256 hash chain.

Every entry records when, who (the analyst's certificate identity), what (query text and
plan hash), the node's decision and reason, what was released (shapes and counts — never
data values), the cost, and the outcome or failure. Each line carries the hash of the
previous line's hash and its own content, so editing, deleting, reordering or truncating
a line breaks the chain at that line; `verify` names the first broken line. HIPAA
45 CFR 164.312(b) asks for exactly this kind of record of activity on protected data.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
REQUIRED = ("time", "node", "analyst", "event", "prev", "hash")
_FORBIDDEN_KEYS = {"values", "rows", "data", "shares"}


def _digest(prev: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def _check_no_values(obj: Any, path: str = "") -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in _FORBIDDEN_KEYS:
                raise ValueError(f"audit entries never hold data values (field {path + key!r})")
            _check_no_values(value, f"{path}{key}.")
    elif isinstance(obj, list) and any(isinstance(v, (list, dict)) for v in obj):
        raise ValueError(f"audit entries never hold arrays of values (field {path.rstrip('.')!r})")


class AuditLog:
    """Append-only, hash-chained log; safe for concurrent appends from one process's threads."""

    def __init__(self, path: str | Path, node: str) -> None:
        self.path = Path(path)
        self.node = node
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _last_hash(self) -> str:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return GENESIS
        with open(self.path, "rb") as f:
            lines = f.read().splitlines()
        return json.loads(lines[-1])["hash"] if lines else GENESIS

    def append(self, analyst: str, event: str, **fields: Any) -> dict[str, Any]:
        """Write one entry (flushed and fsynced) and return it."""
        _check_no_values(fields)
        with self._lock:
            prev = self._last_hash()
            body = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "node": self.node,
                    "analyst": analyst, "event": event, **fields, "prev": prev}
            entry = {**body, "hash": _digest(prev, body)}
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            return entry

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    broken_line: int | None = None
    reason: str = ""


def verify(path: str | Path) -> VerifyReport:
    """Check the whole chain; name the first line that is malformed or does not chain."""
    prev = GENESIS
    lines = Path(path).read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    elif lines:
        return VerifyReport(False, len(lines) - 1, len(lines), "the last line is truncated (no newline)")
    for number, raw in enumerate(lines, start=1):
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            return VerifyReport(False, number - 1, number, "not valid JSON")
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            return VerifyReport(False, number - 1, number, f"missing fields {missing}")
        if entry["prev"] != prev:
            return VerifyReport(False, number - 1, number, "does not follow the previous entry (deleted or reordered)")
        body = {k: v for k, v in entry.items() if k != "hash"}
        if _digest(prev, body) != entry["hash"]:
            return VerifyReport(False, number - 1, number, "content does not match its hash (edited)")
        prev = entry["hash"]
    return VerifyReport(True, len(lines))


def show(path: str | Path) -> str:
    """A readable rendering, one block per entry."""
    out = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        entry = json.loads(line)
        head = f"#{number} {entry.get('time')} {entry.get('node')} {entry.get('event')} by {entry.get('analyst')}"
        details = {k: v for k, v in entry.items() if k not in ("time", "node", "event", "analyst", "prev", "hash")}
        out.append(head + "".join(f"\n    {k}: {v}" for k, v in sorted(details.items())))
    return "\n".join(out)


def count_today(path: str | Path, analyst: str) -> int:
    """Queries this analyst was allowed today (UTC), from the log itself (survives restarts)."""
    p = Path(path)
    if not p.exists():
        return 0
    today = datetime.now(UTC).date().isoformat()
    return sum(
        1 for e in (json.loads(line) for line in p.read_text().splitlines() if line.strip())
        if e.get("analyst") == analyst and e.get("event") == "decision" and e.get("decision") == "allow"
        and str(e.get("time", "")).startswith(today)
    )
