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

Nor can a chain stop whoever can write the file from dropping entries and recomputing
every hash after them. Two things do. A node's `AuditLog` (from `open`) holds in memory
the size and SHA-256 of the bytes it has written and, before every append and at the
start of every query (`check`), refuses to go on when the file is no longer exactly that
(`AuditLog.refusal` says why; the node then refuses every query until it is restarted).
And every query carries each node's signed head (`signed_head`) to the other nodes, which
check it and write it into their own logs (`record_peer_heads`, event `peer_head`; see
`parties.audit_heads`), where `pooled audit verify --peers` finds any head the rewritten
log no longer holds (`parties.audit_peers`).

The entry schema and what an entry may hold (never data values) are in
`parties.audit_entry`; `append` checks every entry against it.

Appends are serialised by a thread lock and an exclusive `flock` on the file (so two
`AuditLog` objects built with the constructor, or two processes, on one file still make
one chain; a log from `open` is its file's only writer and refuses anyone else's lines);
each entry is one `write` of one line, flushed and fsynced before `append` returns. A line
torn by a crash makes the next append fail (fail closed: an operator repairs the log,
guided by `verify`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from parties.audit_chain import GENESIS, REQUIRED, VerifyReport, _digest, read_entries, show, verify, verify_bytes
from parties.audit_entry import EVENTS, SCHEMA, check_entry, released
from parties.audit_heads import HeadError, HeadSigner, check_head

__all__ = [
    "EVENTS", "GENESIS", "REQUIRED", "SCHEMA", "AuditError", "AuditLog", "HeadError", "HeadSigner", "VerifyReport",
    "_digest", "admitted_per_day", "check_entry", "count_today", "read_entries", "released", "show", "verify",
    "verify_bytes",
]

class AuditError(RuntimeError):
    """The log cannot be appended to safely (torn last line, broken chain, or a bad entry)."""


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


class _Written:
    """What a node's log holds by its own hand: size, SHA-256 of the bytes, entry count, head hash."""

    def __init__(self, data: bytes, count: int, head: str) -> None:
        self.size, self.sha, self.count, self.head = len(data), hashlib.sha256(data), count, head

    def add(self, line: bytes, head: str) -> None:
        self.size += len(line)
        self.sha.update(line)
        self.count += 1
        self.head = head

    def difference(self, f: BinaryIO) -> str | None:
        """None if the open file `f` holds exactly these bytes, else what differs."""
        size = os.fstat(f.fileno()).st_size
        if size != self.size:
            return f"it holds {size} bytes where the node wrote {self.size}"
        f.seek(0)
        sha = hashlib.sha256()
        while block := f.read(1 << 20):
            sha.update(block)
        return None if sha.digest() == self.sha.digest() else "its content differs from what the node wrote"


class AuditLog:
    """Append-only, hash-chained log of one node (its entries: `parties.audit_entry`).

    `signer` (a `parties.audit_heads.HeadSigner`: this node's party key and certificate and
    the consortium CA) signs this log's head and checks the heads peers send.
    """

    def __init__(self, path: str | Path, node: str, *, clock: Callable[[], datetime] = _now,
                 signer: HeadSigner | None = None) -> None:
        self.path = Path(path)
        self.node = node
        self._clock = clock
        self._signer = signer
        self._lock = threading.Lock()
        self._written: _Written | None = None  # set by `open`: this object is then the file's only writer
        self.refusal: str | None = None
        """Why this log refuses every further append (its file changed outside the node), or None."""
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def open(path: str | Path, node: str, *, clock: Callable[[], datetime] = _now,
             signer: HeadSigner | None = None) -> AuditLog:
        """A node's log: its existing chain verified (fail closed: AuditError names the broken line),
        and from now on this object is the file's only writer (see `check`)."""
        log = AuditLog(path, node, clock=clock, signer=signer)
        if signer is not None and signer.identity.uri != f"pooled://party/{node}":
            raise AuditError(f"the audit log of {node} cannot be signed with the key of {signer.identity.uri}")
        data = log.path.read_bytes() if log.path.exists() else b""
        report = verify_bytes(data)
        if not report.ok:
            raise AuditError(f"audit log {log.path} is broken at line {report.broken_line}: {report.reason}")
        log._written = _Written(data, report.entries, report.head)
        return log

    def _refuse(self, f: BinaryIO | None) -> None:
        """Raise AuditError if this log refuses, or if the file is no longer what it wrote (then refuse for good)."""
        if self.refusal is None and self._written is not None:
            if f is None:
                difference = "the file is gone" if self._written.size else None
            else:
                difference = self._written.difference(f)
            if difference is not None:
                self.refusal = (f"this site's audit log changed outside the node ({difference}): {self.node} refuses"
                                " every query until its operator checks the log (`pooled audit verify --peers`)"
                                " and restarts the node")
                logging.getLogger(__name__).error("%s: %s", self.path, self.refusal)
        if self.refusal is not None:
            raise AuditError(self.refusal)

    def check(self) -> None:
        """Raise AuditError unless the file is still exactly what this node wrote (a log from `open`).

        Once it is not, every later `check` and append fails with the same one-line reason.
        """
        with self._lock:
            try:
                with open(self.path, "rb") as f:
                    self._refuse(f)
            except FileNotFoundError:
                self._refuse(None)

    def append(self, analyst: str, event: str, **fields: Any) -> dict[str, Any]:
        """Write one entry (flushed and fsynced before returning) and return it."""
        return self._append_all([(analyst, event, fields)])[0]

    def _append_all(self, items: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Write several entries in one locked step (each its own line), after checking the file."""
        for analyst, event, fields in items:
            check_entry({"analyst": analyst, "event": event, **fields})
        written: list[dict[str, Any]] = []
        with self._lock, open(self.path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                self._refuse(f)
                last = _last_line(f)
                try:
                    prev = json.loads(last)["hash"] if last else GENESIS
                except (ValueError, KeyError, TypeError) as exc:
                    raise AuditError(f"the last entry of {self.path} is unreadable; run `pooled audit verify`") from exc
                for analyst, event, fields in items:
                    time = self._clock().astimezone(UTC).isoformat(timespec="milliseconds")
                    body = {"time": time, "node": self.node, "analyst": analyst, "event": event, **fields,
                            "prev": prev}
                    entry = {**body, "hash": _digest(prev, body)}
                    line = (json.dumps(entry, sort_keys=True, allow_nan=False) + "\n").encode()
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
                    if self._written is not None:
                        self._written.add(line, entry["hash"])
                    written.append(entry)
                    prev = entry["hash"]
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return written

    def signed_head(self) -> dict[str, Any]:
        """This log's head, signed with this node's key: {node, count, hash, signature, cert}.

        `count` is the number of entries, `hash` the last one's (GENESIS for none), `cert`
        this node's certificate (PEM) so a peer can check the signature against the CA.
        """
        if self._signer is None:
            raise AuditError(f"the audit log of {self.node} has no signing key")
        with self._lock:
            if self._written is not None:
                count, head = self._written.count, self._written.head
            else:
                report = verify(self.path) if self.path.exists() else VerifyReport(True, 0)
                count, head = report.entries, report.head
        return self._signer.sign(self.node, count, head)

    def record_peer_heads(self, analyst: str, session: str, heads: Mapping[str, Mapping[str, Any]]) -> None:
        """Check each peer's signed head (party -> head) and write it here as a `peer_head` entry.

        Every head must name its party, carry a certificate the consortium CA issued to that
        party, and a signature that verifies under it; otherwise `HeadError` names the party
        and nothing is written.
        """
        if self._signer is None:
            raise AuditError(f"the audit log of {self.node} cannot check peers' heads without the consortium CA")
        records = []
        for party in sorted(heads):
            if party == self.node:
                raise HeadError(f"a peer sent an audit head in the name of this node ({self.node})")
            records.append((analyst, "peer_head", {"session": session, **check_head(heads[party], party,
                                                                                    self._signer.ca_pem)}))
        if records:
            self._append_all(records)

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
