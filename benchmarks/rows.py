"""Result rows from what the suites measure: Pooled's timed jobs, and a peer harness's result dict.

Both builders put the same quantities in the same `Row` fields, so the report can set the
systems side by side: time (median and spread over repetitions), bytes and messages one
party sent (maximum over parties), and the error in the unit `ERROR_KINDS` names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.framework import Row, median_spread
from parties.client import JobResult

BYTES_COUNTED = "payload"
"""What `CommStats.bytes_sent` counts: `PartyContext.exchange` adds len(payload) of each message before it
reaches the transport, so protobuf headers, gRPC/HTTP2 framing and TLS records are not included."""
ERROR_KINDS = {"abs": "max absolute error", "mismatch": "wrong outputs (count)", "rel": "max relative error"}
PEER_ERROR_KEYS = {"abs": "max_abs_error", "mismatch": "mismatches", "rel": "max_rel_error"}
"""Error kind -> the key of a peer harness's result that measures it."""


def pooled_row(suite: str, case: str, parties: int, size: int | None, runs: Sequence[JobResult],
               error: float | None = None, **extra: Any) -> Row:
    """A Pooled row from timed jobs: median and spread of the slowest party's compute phase, the last run's
    counters (max over parties; dealer bytes summed over parties)."""
    seconds, spread = median_spread([r.compute_seconds for r in runs])
    stats = [o.stats for o in runs[-1].outcomes.values()]
    return Row(
        suite=suite,
        case=case,
        system="pooled",
        parties=parties,
        size=size,
        seconds=seconds,
        spread=spread,
        runs=len(runs),
        bytes_per_party=max(s.bytes_sent for s in stats),
        messages_per_party=max(s.messages_sent for s in stats),
        rounds=max(s.rounds for s in stats),
        dealer_bytes=sum(s.dealer_bytes for s in stats),
        error=error,
        extra={
            "end_to_end_seconds": median_spread([r.seconds for r in runs])[0],
            "bytes_counted": BYTES_COUNTED,
            **extra,
        },
    )


def peer_row(suite: str, case: str, peer: str, parties: int, size: int | None, error: str | None,
             call: Callable[[], dict[str, Any]]) -> Row:
    """A peer's row from `call()` (a `run_peer` result); a `PeerRunError` becomes a row with extra["failed"].

    The peer's whole result dict is kept in `extra`. CrypTen's "rounds" are communication calls,
    not rounds in Pooled's sense, and MPyC has none, so `rounds` stays empty for peers. For
    "sum" the harnesses time the inputs' sharing (it is the protocol), so its bytes and
    messages are added to the operation's, as Pooled's `secure_sum` counts its sharing round.
    """
    from benchmarks.peers._procs import PeerRunError

    try:
        result = call()
    except PeerRunError as exc:
        text = str(exc)
        return Row(suite=suite, case=case, system=peer, parties=parties, size=size,
                   extra={"failed": text if len(text) <= 2000 else text[:1000] + " ... " + text[-1000:]})
    per_party = result.get("bytes_per_party")
    messages = result.get("messages_per_party")
    extra = dict(result)
    if result.get("op") == "sum":
        per_party = _plus(per_party, result.get("input_bytes_per_party"))
        messages = _plus(messages, result.get("input_messages_per_party"))
        extra["counters_include_input"] = True
    value = None
    if error is not None:
        extra["error_kind"] = ERROR_KINDS[error]
        value = result.get(PEER_ERROR_KEYS[error])
    return Row(
        suite=suite,
        case=case,
        system=peer,
        parties=parties,
        size=int(result.get("size", size or 0)) or size,
        seconds=result.get("seconds_median"),
        spread=result.get("seconds_spread"),
        runs=int(result.get("repeats", 0)),
        bytes_per_party=max(per_party) if per_party else None,
        messages_per_party=max(messages) if messages else None,
        error=None if value is None else float(value),
        extra=extra,
    )


def _plus(a: Sequence[int] | None, b: Sequence[int] | None) -> list[int] | None:
    """Elementwise sum of two per-party counter lists (either may be missing)."""
    if a is None or b is None:
        return list(a) if a is not None else (list(b) if b is not None else None)
    return [x + y for x, y in zip(a, b)]
