"""Reading and checking an audit log's hash chain (the format is described in `parties.audit`).

`verify` names the first line that is malformed or does not chain, and reports the head
(the last intact entry's hash); `show` renders a log for people; `read_entries` parses it
without checking. Nothing here writes: `parties.audit.AuditLog` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
REQUIRED = ("time", "node", "analyst", "event", "prev", "hash")


def _digest(prev: str, body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


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
    """Check the whole chain of the file at `path` (see `verify_bytes`)."""
    return verify_bytes(Path(path).read_bytes(), expect_head)


def verify_bytes(data: bytes, expect_head: str | None = None) -> VerifyReport:
    """Check the whole chain; name the first line that is malformed or does not chain.

    1. Split into lines; the file must end with a newline (else the last line is truncated).
    2. For each line: valid JSON object, required fields present, `prev` equals the previous
       entry's `hash` (GENESIS for line 1), and `hash` equals the digest of its content.
    3. With `expect_head`, a hash recorded earlier must be the hash of some entry (else
       entries were removed from the end, or the log was replaced).
    """
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
