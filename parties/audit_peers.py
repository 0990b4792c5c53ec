"""Checking one node's audit log against the heads its peers recorded (`pooled audit verify --peers`).

Every query leaves, in each other node's log, a `peer_head` entry: this node's signed
(count, hash) at that moment (`parties.audit_heads`). A log that still holds what it held
then has, at line `count`, an entry whose hash is the recorded one. A log rewritten since
(entries dropped or edited and the chain recomputed, or the file replaced) does not, and
`cross_check` names every recorded head it no longer holds: which peer log, which line of
it, and what this log has instead.

With the consortium's certificates (`certs`: the directory `pooled init` writes, with
`ca.pem` and `party-<name>.pem`), each recorded head's signature is checked too, so a
record is shown to be this node's own commitment, not something a peer made up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parties.audit_chain import GENESIS, verify
from parties.audit_heads import HeadError, check_certificate, check_signature, fingerprint
from parties.certs import CA_CERT, CertFiles, Identity


@dataclass
class PeerCheck:
    """What `cross_check` found: how many heads were recorded for `node`, and every problem."""

    node: str
    logs: list[Path] = field(default_factory=list)
    heads: int = 0
    signatures_checked: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _lines(path: Path) -> list[dict[str, Any] | None]:
    """Each line parsed (None where it is not a JSON object)."""
    out: list[dict[str, Any] | None] = []
    for raw in path.read_bytes().split(b"\n")[:-1]:
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        out.append(entry if isinstance(entry, dict) else None)
    return out


def _peer_logs(own: Path, peers: Path) -> list[Path]:
    if not peers.is_dir():
        raise ValueError(f"--peers {peers}: not a directory")
    logs = [p for p in sorted(peers.glob("*.jsonl")) if p.is_file() and p.resolve() != own.resolve()]
    if not logs:
        raise ValueError(f"--peers {peers}: holds no other node's log (*.jsonl)")
    return logs


def _certificate(certs: Path, node: str) -> bytes:
    files = CertFiles.in_dir(certs, Identity.party(node))
    try:
        cert, ca = files.cert.read_bytes(), (certs / CA_CERT).read_bytes()
    except OSError as exc:
        raise ValueError(f"--certs {certs}: {exc.strerror}: {exc.filename}") from None
    try:
        check_certificate(cert, ca, node)
    except HeadError as exc:
        raise ValueError(f"--certs {certs}: {files.cert.name}: {exc}") from None
    return cert


def cross_check(path: str | Path, peers: str | Path, *, node: str | None = None,
                certs: str | Path | None = None) -> PeerCheck:
    """Every head the logs in `peers` recorded for this log's node, checked against the log at `path`.

    1. The node is `node`, else the one named by the log's first entry.
    2. Every `*.jsonl` file in `peers` other than `path` is a peer log; a broken chain
       there is reported, and its records are still read.
    3. For each `peer_head` entry naming the node: line `peer_count` of this log must be an
       entry whose hash is `peer_hash` (count 0: the empty log, always held).
    4. With `certs`, the head's signature must verify under `party-<node>.pem` from there
       (itself issued by that directory's `ca.pem`).
    Raises ValueError for unusable arguments (no node name, no peer logs, missing certificates).
    """
    own, entries = Path(path), _lines(Path(path))
    name = node or next((str(e["node"]) for e in entries if e is not None and "node" in e), None)
    if name is None:
        raise ValueError(f"{own} names no node (it is empty or unreadable): give --node NAME")
    cert = _certificate(Path(certs), name) if certs is not None else None
    result = PeerCheck(name, _peer_logs(own, Path(peers)), signatures_checked=cert is not None)
    hashes = [e.get("hash") if e is not None else None for e in entries]
    for log in result.logs:
        chain = verify(log)
        if not chain.ok:
            result.problems.append(f"{log}: the peer log itself is broken at line {chain.broken_line}: {chain.reason}")
        for number, entry in enumerate(_lines(log), start=1):
            if entry is None or entry.get("event") != "peer_head" or entry.get("peer") != name:
                continue
            result.heads += 1
            problem = _check_record(entry, hashes, cert)
            if problem:
                where = f"session {entry.get('session')}, {entry.get('time')}"
                result.problems.append(f"{log}:{number} ({entry.get('node')}, {where}): {problem}")
    return result


def _check_record(entry: dict[str, Any], hashes: list[Any], cert: bytes | None) -> str | None:
    """What is wrong with one recorded head, or None."""
    count, recorded, node = entry.get("peer_count"), entry.get("peer_hash"), str(entry.get("peer"))
    if not isinstance(count, int) or isinstance(count, bool) or count < 0 or not isinstance(recorded, str):
        return "the record is malformed (peer_count, peer_hash)"
    seen = f"recorded {node} at {count} entries with head {recorded[:12]}…"
    if cert is not None:
        if entry.get("peer_cert") != fingerprint(cert):
            return f"{seen}, verified under another certificate than party-{node}.pem"
        try:
            check_signature(cert, node, count, recorded, str(entry.get("peer_signature", "")))
        except HeadError:
            return f"{seen}, but its signature does not verify under party-{node}.pem (not {node}'s head)"
    held = GENESIS if count == 0 else (hashes[count - 1] if count <= len(hashes) else None)
    if count > len(hashes):
        return f"{seen}; this log has only {len(hashes)} entries (entries lost or the log replaced)"
    if held != recorded:
        return f"{seen}; this log's entry {count} has {str(held)[:12]}… (the log was rewritten)"
    return None
