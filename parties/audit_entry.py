"""What one audit entry may hold: the schema of `parties.audit`'s entries and its checks.

An audit log records who asked what and what left the node, never the data itself, so
every entry passes `check_entry` before it is written: the fields have their kinds, and
nothing in it looks like a data value. `released` builds the one record of what left
(shapes and a suppressed count).

Entry schema (`SCHEMA`; `append` checks it and refuses anything that looks like data):

    time       str   UTC, ISO 8601 with milliseconds          (always)
    node       str   this party's name                        (always)
    analyst    str   the analyst's certificate name           (always)
    event      str   decision | release | failure | abort | peer_head | budget   (always)
    session    str   the MPC session id
    query      str   the query text as the analyst sent it
    job        str   the job's name, for a job other than a query (`parties.gate`)
    plan_hash  str   `Plan.hash()` of the compiled plan
    decision   str   allow | refuse
    reason     str   the policy's reason (what the analyst was told)
    released   str, list of str, or {"shape": [ints] or [[ints]], "suppressed": int, "what": str}
    cost       {name: int or float}  e.g. rounds, bytes_sent, seconds; a budget charge: epsilon
    outcome    str   ok | failed | aborted
    error      str   the failure, as the analyst saw it
    groups     int   number of groups in the plan
    refused    str   a model's refusal reason (the only thing such a query releases)
    peer       str   peer_head: the party whose signed head this is
    peer_count int   peer_head: how many entries its log held
    peer_hash  str   peer_head: the hash of its last entry (GENESIS for none)
    peer_signature str  peer_head: its signature (base64 ECDSA P-256, `parties.audit_heads`)
    peer_cert  str   peer_head: SHA-256 fingerprint of the certificate that verified it
    prev, hash str   the chain (written by `append`)

Other fields may hold only strings, integers, booleans or null. Floats are refused outside
`cost` (a float is almost always a statistic), lists outside `released`, and any key
named like data (`values`, `rows`, `data`, `shares`, `result`, `table`) anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

EVENTS = ("decision", "release", "failure", "abort", "peer_head", "budget")
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
    "peer": "the party whose signed head is recorded",
    "peer_count": "how many entries the peer's log held",
    "peer_hash": "the hash of the peer's last entry",
    "peer_signature": "the peer's signature over its head",
    "peer_cert": "fingerprint of the certificate that verified it",
    "prev": "hash of the previous entry",
    "hash": "hash of this entry",
}
_STRINGS = ("time", "node", "analyst", "session", "query", "job", "plan_hash", "reason", "error",
            "peer", "peer_hash", "peer_signature", "peer_cert")


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
        elif key == "peer_count" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"audit field 'peer_count' must be a count, got {value!r}")
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
