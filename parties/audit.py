"""Each node's tamper-evident audit log: append-only JSON lines in a SHA-256 hash chain.

Every entry records when (UTC), where (the node), who (the analyst's certificate identity),
what (query text, plan hash, session), the node's decision and reason, what was released
(shapes and suppressed counts — never data values), the cost, and the outcome or failure.
HIPAA 45 CFR 164.312(b) asks for exactly this kind of record of activity on protected data.

The chain: entry i carries `prev` = the hash of entry i-1 (`GENESIS` for the first) and
`hash` = SHA-256(prev || canonical JSON of every other field, `prev` included). Editing,
deleting, reordering or truncating a line therefore breaks the chain at that line, and
`verify` names the first broken line and why. What a chain cannot show alone is the loss
of whole entries at the END of the file: for that, keep the `head` hash that `verify`
reports somewhere the node cannot rewrite, and compare later (`verify(path, expect_head=)`).

Entry schema (`SCHEMA`; `append` checks it and refuses anything that looks like data):

    time       str   UTC, ISO 8601 with milliseconds          (always)
    node       str   this party's name                        (always)
    analyst    str   the analyst's certificate name           (always)
    event      str   decision | release | failure | abort     (always)
    session    str   the MPC session id
    query      str   the query text as the analyst sent it
    job        str   the job's name, for a job other than a query (`parties.gate`)
    plan_hash  str   `Plan.hash()` of the compiled plan
    decision   str   allow | refuse
    reason     str   the policy's reason (what the analyst was told)
    released   str, list of str, or {"shape": [ints] or [[ints]], "suppressed": int, "what": str}
    cost       {name: int or float}  e.g. rounds, bytes_sent, seconds
    outcome    str   ok | failed | aborted
    error      str   the failure, as the analyst saw it
    groups     int   number of groups in the plan
    refused    str   a model's refusal reason (the only thing such a query releases)
    prev, hash str   the chain (written by `append`)

Other fields may hold only strings, integers, booleans or null. Floats are refused outside
`cost` (a float is almost always a statistic), lists outside `released`, and any key
named like data (`values`, `rows`, `data`, `shares`, `result`, `table`) anywhere.

Appends are serialised by a thread lock and an exclusive `flock` on the file (so two
`AuditLog` objects, or two processes, on one file still make one chain); each entry is one
`write` of one line, flushed and fsynced before `append` returns. A line torn by a crash
makes the next append fail (fail closed: an operator repairs the log, guided by `verify`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

GENESIS = "0" * 64
REQUIRED = ("time", "node", "analyst", "event", "prev", "hash")
EVENTS = ("decision", "release", "failure", "abort")
DECISIONS = ("allow", "refuse")
OUTCOMES = ("ok", "failed", "aborted")
FORBIDDEN_KEYS = frozenset({"values", "rows", "data", "shares", "result", "table"})
SCHEMA: Mapping[str, str] = {
    "time": "UTC time, ISO 8601",
    "node": "this party's name",
    "analyst": "the analyst's certificate name",
    "event": " | ".join(EVENTS),
    "session": "MPC session id",
    "query": "query text",
    "job": "the job's name, for a job other than a query",
    "plan_hash": "hash of the compiled plan",
    "decision": " | ".join(DECISIONS),
    "reason": "the policy's reason",
    "released": "shapes and suppressed count, never values",
    "cost": "rounds, bytes, seconds",
    "outcome": " | ".join(OUTCOMES),
    "error": "the failure as the analyst saw it",
    "groups": "number of groups in the plan",
    "refused": "a model's refusal reason",
    "prev": "hash of the previous entry",
    "hash": "hash of this entry",
}
_STRINGS = ("time", "node", "analyst", "session", "query", "job", "plan_hash", "reason", "error")


class AuditError(RuntimeError):
    """The log cannot be appended to safely (torn last line, broken chain, or a bad entry)."""


def _digest(prev: str, body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def _bad(field: str, why: str) -> ValueError:
    return ValueError(f"audit entries never hold data values: field {field!r} {why}")


def _check_released(value: Any) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise _bad("released", "must be a description, not an array of values")
        return
    if not isinstance(value, Mapping):
        raise _bad("released", f"must be a string or a shape record, not {type(value).__name__}")
    unknown = set(value) - {"shape", "suppressed", "what"}
    if unknown:
        raise _bad("released", f"may hold only shape, suppressed and what (got {sorted(unknown)})")
    shape = value.get("shape", [])
    parts = shape if isinstance(shape, list) else [shape]
    dims = [d for part in parts for d in (part if isinstance(part, list) else [part])]
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise _bad("released.shape", "must be sizes (non-negative integers)")
    if not isinstance(value.get("suppressed", 0), int):
        raise _bad("released.suppressed", "must be a count")
    if not isinstance(value.get("what", ""), str):
        raise _bad("released.what", "must be a description")


def _check_cost(value: Any) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items()
    ):
        raise _bad("cost", "must map names to numbers")


def check_entry(fields: Mapping[str, Any]) -> None:
    """Raise ValueError unless `fields` fits the entry schema and holds no data values."""
    for key, value in fields.items():
        if key.lower() in FORBIDDEN_KEYS:
            raise _bad(key, "is named like data")
        if key in ("prev", "hash"):
            raise ValueError(f"audit field {key!r} is written by the log itself")
        if key == "released":
            _check_released(value)
        elif key == "cost":
            _check_cost(value)
        elif key in _STRINGS and not isinstance(value, str):
            raise ValueError(f"audit field {key!r} must be a string, got {type(value).__name__}")
        elif key == "event" and value not in EVENTS:
            raise ValueError(f"audit event must be one of {', '.join(EVENTS)}, got {value!r}")
        elif key == "decision" and value not in DECISIONS:
            raise ValueError(f"audit decision must be one of {', '.join(DECISIONS)}, got {value!r}")
        elif key == "outcome" and value not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {', '.join(OUTCOMES)}, got {value!r}")
        elif isinstance(value, float):
            raise _bad(key, "is a number with a fraction (a statistic?)")
        elif value is not None and not isinstance(value, (str, int, bool)):
            raise _bad(key, f"must be a string, integer, boolean or null, not {type(value).__name__}")


def released(shapes: Sequence[Sequence[int]], suppressed: int | None = 0, what: str = "") -> dict[str, Any]:
    """The `released` record: the shape of each released array and how many cells were suppressed.

    `suppressed=None`: this node does not know (suppression decided inside MPC is revealed
    only to the analyst), so the record leaves the count out rather than write a false 0.
    """
    record: dict[str, Any] = {"shape": [[int(d) for d in s] for s in shapes]}
    if suppressed is not None:
        record["suppressed"] = int(suppressed)
    if what:
        record["what"] = what
    return record


def _now() -> datetime:
    return datetime.now(UTC)


def _last_line(f: BinaryIO) -> bytes:
    """The file's last line (without its newline), reading backwards in blocks; b"" if empty."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return b""
    f.seek(end - 1)
    if f.read(1) != b"\n":
        raise AuditError("the last line is incomplete (torn write?); run `pooled audit verify` and repair the log")
    pos, tail = end - 1, b""  # tail = bytes [pos, end - 1): everything before the final newline
    while pos > 0:
        step = min(4096, pos)
        pos -= step
        f.seek(pos)
        tail = f.read(step) + tail
        cut = tail.rfind(b"\n")
        if cut >= 0:
            return tail[cut + 1 :]
    return tail


class AuditLog:
    """Append-only, hash-chained log of one node (see the module docstring for the schema)."""

    def __init__(self, path: str | Path, node: str, *, clock: Callable[[], datetime] = _now) -> None:
        self.path = Path(path)
        self.node = node
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def open(path: str | Path, node: str, *, clock: Callable[[], datetime] = _now) -> AuditLog:
        """A log whose existing chain has been verified (fail closed: AuditError names the broken line)."""
        log = AuditLog(path, node, clock=clock)
        if log.path.exists():
            report = verify(log.path)
            if not report.ok:
                raise AuditError(f"audit log {log.path} is broken at line {report.broken_line}: {report.reason}")
        return log

    def append(self, analyst: str, event: str, **fields: Any) -> dict[str, Any]:
        """Write one entry (flushed and fsynced before returning) and return it."""
        check_entry({"analyst": analyst, "event": event, **fields})
        with self._lock, open(self.path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                last = _last_line(f)
                try:
                    prev = json.loads(last)["hash"] if last else GENESIS
                except (ValueError, KeyError, TypeError) as exc:
                    raise AuditError(f"the last entry of {self.path} is unreadable; run `pooled audit verify`") from exc
                time = self._clock().astimezone(UTC).isoformat(timespec="milliseconds")
                body = {"time": time, "node": self.node, "analyst": analyst, "event": event, **fields, "prev": prev}
                entry = {**body, "hash": _digest(prev, body)}
                f.write((json.dumps(entry, sort_keys=True, allow_nan=False) + "\n").encode())
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return entry

    def decision(self, analyst: str, *, session: str, query: str, allowed: bool, reason: str,
                 plan_hash: str | None = None) -> dict[str, Any]:
        """Log this site's policy decision on one query (before any data is read)."""
        extra = {"plan_hash": plan_hash} if plan_hash else {}
        return self.append(analyst, "decision", session=session, query=query,
                           decision="allow" if allowed else "refuse", reason=reason, **extra)

    def release(self, analyst: str, *, session: str, plan_hash: str, what: Mapping[str, Any] | str,
                cost: Mapping[str, int | float], **extra: Any) -> dict[str, Any]:
        """Log a completed query: what left this node (shapes, never values) and what it cost."""
        return self.append(analyst, "release", session=session, plan_hash=plan_hash, released=what,
                           cost=dict(cost), outcome="ok", **extra)

    def failure(self, analyst: str, *, session: str, error: str, aborted: bool = False,
                refunded: bool = False) -> dict[str, Any]:
        """Log a query that failed here (`aborted`: another party or the analyst stopped it;
        `refunded`: it never ran, so it no longer counts against the analyst's daily limit)."""
        extra = {"refunded": True} if refunded else {}
        return self.append(analyst, "abort" if aborted else "failure", session=session, error=error,
                           outcome="aborted" if aborted else "failed", **extra)

    def entries(self) -> list[dict[str, Any]]:
        return list(read_entries(self.path))


def read_entries(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every entry of a log as parsed JSON (no chain check: use `verify` for that)."""
    p = Path(path)
    if not p.exists():
        return
    with open(p, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


@dataclass(frozen=True)
class VerifyReport:
    """`ok`, how many entries verified, and otherwise the first broken line (1-based) and why."""

    ok: bool
    entries: int
    broken_line: int | None = None
    reason: str = ""
    head: str = GENESIS
    """The hash of the last intact entry: record it elsewhere to detect later loss of the tail."""


def verify(path: str | Path, expect_head: str | None = None) -> VerifyReport:
    """Check the whole chain; name the first line that is malformed or does not chain.

    1. Split into lines; the file must end with a newline (else the last line is truncated).
    2. For each line: valid JSON object, required fields present, `prev` equals the previous
       entry's `hash` (GENESIS for line 1), and `hash` equals the digest of its content.
    3. With `expect_head`, a hash recorded earlier must be the hash of some entry (else
       entries were removed from the end, or the log was replaced).
    """
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    torn = lines[-1] != b""
    lines = lines[:-1] if not torn else lines
    prev, seen = GENESIS, {GENESIS}
    for number, raw in enumerate(lines, start=1):
        if torn and number == len(lines):
            return VerifyReport(False, number - 1, number, "the last line is truncated (no newline)", prev)
        try:
            entry = json.loads(raw)
        except ValueError:
            return VerifyReport(False, number - 1, number, "not valid JSON", prev)
        if not isinstance(entry, dict):
            return VerifyReport(False, number - 1, number, "not a JSON object", prev)
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            return VerifyReport(False, number - 1, number, f"missing fields {missing}", prev)
        if entry["prev"] != prev:
            return VerifyReport(False, number - 1, number,
                                "does not follow the previous entry (an entry was deleted or reordered)", prev)
        body = {k: v for k, v in entry.items() if k != "hash"}
        try:
            digest = _digest(prev, body)
        except ValueError:
            digest = ""
        if digest != entry["hash"]:
            return VerifyReport(False, number - 1, number, "content does not match its hash (edited)", prev)
        prev = entry["hash"]
        seen.add(prev)
    if expect_head is not None and expect_head not in seen:
        return VerifyReport(False, len(lines), len(lines) + 1,
                            f"the recorded head {expect_head[:12]}… is not in the log (entries lost at the end)", prev)
    return VerifyReport(True, len(lines), head=prev)


def show(path: str | Path) -> str:
    """A readable rendering, one block per entry; unreadable lines are shown as such."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError
        except ValueError:
            out.append(f"#{number} <unreadable line: {line[:60]!r}>")
            continue
        head = f"#{number} {entry.get('time')} {entry.get('node')} {entry.get('event')} by {entry.get('analyst')}"
        details = {k: v for k, v in entry.items() if k not in ("time", "node", "event", "analyst", "prev", "hash")}
        body = "".join(f"\n    {k}: {_render(v)}" for k, v in sorted(details.items()))
        out.append(head + body + f"\n    hash: {str(entry.get('hash'))[:16]}…")
    return "\n".join(out)


def _render(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_render(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return str(value)


def admitted_per_day(path: str | Path) -> dict[tuple[str, date], int]:
    """How many queries each analyst was allowed on each UTC day, from the log's decisions,
    less those refunded because they never ran (a failure entry with `refunded`)."""
    counts: dict[tuple[str, date], int] = {}
    for e in read_entries(path):
        allowed = e.get("event") == "decision" and e.get("decision") == "allow"
        refunded = e.get("event") in ("failure", "abort") and e.get("refunded") is True
        if allowed or refunded:
            day = datetime.fromisoformat(str(e["time"])).astimezone(UTC).date()
            key = (str(e.get("analyst")), day)
            counts[key] = max(0, counts.get(key, 0) + (1 if allowed else -1))
    return counts


def count_today(path: str | Path, analyst: str) -> int:
    """Queries this analyst was allowed today (UTC), from the log itself (survives restarts).

    Reads the whole log on every call; a long-running node should use
    `parties.policy.QueryCounter`, which reads it once.
    """
    return admitted_per_day(path).get((analyst, _now().date()), 0)
