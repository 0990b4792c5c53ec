"""The generated section's model tables: the `models` suite, and the logistic fit on an emulated WAN.

`models` sets each model of `benchmarks.suite_models` at each RTT side by side (seconds,
rounds with EXPLAIN's prediction, bytes, dealer traffic) and checks a survival model's time
against the LOGISTIC fit of the same size (`COX_OVER_LOGISTIC`); `regression_wan` lists the
`regression` suite's rows measured through the delay relay and checks the breast_cancer fit
against `WAN_LOGISTIC_SECONDS`. `benchmarks.report_docs` places both.
"""

from __future__ import annotations

from benchmarks.framework import Row
from benchmarks.report_tables import Check, _budget, _failed, _mb, _median_spread, _num, _secs, _table

COX_OVER_LOGISTIC = 3.0
"""A COX fit should take at most this multiple of the LOGISTIC fit of the same size (same parties and RTT)."""
WAN_LOGISTIC_SECONDS = {50.0: 35.0}
"""RTT (ms) -> the most seconds LOGISTIC breast_cancer with 10 features may take end to end."""


def _end_to_end(r: Row) -> float | None:
    value = r.extra.get("end_to_end_seconds")
    return float(value) if value is not None else None


def models(rows: list[Row]) -> tuple[list[str], list[Check]]:
    """One line per (model, parties, RTT); the COX check where a COX and a LOGISTIC row share parties and RTT."""
    pooled = sorted((r for r in rows if r.system == "pooled"), key=lambda r: (r.parties, r.rtt_ms, r.case))
    header = ["model", "parties", "rows per party", "RTT (ms)", "Pooled (s)", "end to end (s)", "iterations",
              "rounds: session / MPC (EXPLAIN)", "MB per party", "messages", "dealer MB", "dealer requests (on demand)"]
    body, checks = [], []
    for r in pooled:
        predicted = (r.extra.get("predicted") or {}).get("rounds")
        mpc = r.extra.get("mpc_rounds")
        rounds = _num(r.rounds) + (f" / {mpc:,}" if mpc is not None else "") + (
            f" ({predicted:,})" if predicted is not None else "")
        dealer = _num(r.extra.get("dealer_requests")) + (
            f" ({r.extra['dealer_asked_on_demand']:,})" if r.extra.get("dealer_asked_on_demand") is not None else "")
        body.append([r.case, str(r.parties), _num(r.size), f"{r.rtt_ms:g}", _median_spread(r), _secs(_end_to_end(r)),
                     _num(r.extra.get("iterations")), rounds, _mb(r.bytes_per_party), _num(r.messages_per_party),
                     _mb(r.dealer_bytes), dealer])
        if r.case != "COX":
            continue
        where = f"COX, {r.parties} parties, RTT {r.rtt_ms:g} ms"
        base = next((b for b in pooled if (b.case, b.parties, b.rtt_ms) == ("LOGISTIC", r.parties, r.rtt_ms)), None)
        if base is None or _failed(base) or _failed(r) or r.seconds is None or base.seconds is None:
            checks.append(Check("cox", where, None, f"{where}: no LOGISTIC fit of the same size to compare"))
        else:
            checks.append(_budget("cox", where, r.seconds, COX_OVER_LOGISTIC * base.seconds, "s",
                                  f"{where}: {r.seconds / base.seconds:.2f}× LOGISTIC's {_secs(base.seconds)} s"))
    lines = _table(header, body, [False] + [True] * (len(header) - 1))
    note = ("*Pooled (s)*: the slowest party's compute phase (median over the timed runs); *end to end*: the "
            "analyst's wall time, the metadata exchange and domain union included; *rounds*: the whole session's, "
            "then its MPC steps' (after the metadata exchange, the domain union and the plan binding), with "
            "EXPLAIN's prediction of the MPC steps (LOGISTIC's assumes an iteration count); "
            "*dealer requests (on demand)*: the last party's requests, and how many of "
            "them it asked for only when a step needed them (each a round trip to the dealer; the others were sent "
            "ahead, `parties/material_ahead.py`).")
    return lines + ["", note], checks


def regression_wan(rows: list[Row]) -> tuple[list[str], list[Check]]:
    """The logistic fits measured through the delay relay, with the WAN target where it has one."""
    far = sorted((r for r in rows if r.system == "pooled" and r.rtt_ms), key=lambda r: (r.parties, r.rtt_ms))
    header = ["case", "parties", "features", "RTT (ms)", "end to end (s)", "compute (s)", "iterations", "rounds"]
    body, checks = [], []
    for r in far:
        features = r.extra.get("features")
        body.append([r.case, str(r.parties), _num(features), f"{r.rtt_ms:g}", _secs(_end_to_end(r)),
                     _median_spread(r), _num(r.extra.get("iterations")), _num(r.rounds)])
        budget, seconds = WAN_LOGISTIC_SECONDS.get(r.rtt_ms), _end_to_end(r)
        if budget is not None and features == 10 and seconds is not None:
            where = f"{r.case}, {r.parties} parties, 10 features, RTT {r.rtt_ms:g} ms"
            checks.append(_budget("wan_logistic", where, seconds, budget, "s", where))
    return _table(header, body, [False] + [True] * (len(header) - 1)), checks
