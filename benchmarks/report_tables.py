"""The tables and the "Targets" list of the generated benchmark section, computed from result rows.

One function per suite (`micro`, `queries`, `regression`, `scale`; the models' in `benchmarks.report_models`)
turns that suite's rows into markdown table lines; the first three also return the `Check`s their rows allow
against the targets (Pooled against CrypTen-TTP, bytes against the protocol's minimum, aggregates against
pandas, EXPLAIN's counters against the measured ones), and `targets` turns the checks into the list the
section ends with. `benchmarks.report_docs` assembles the section.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.framework import SYSTEMS, Row
from benchmarks.report_plots import SYSTEM_LABELS

PEER_SPEEDUP = 2.0
"""Pooled should be at least this many times faster than CrypTen-TTP."""
BYTES_OVER_MINIMUM = 1.1
"""Pooled's multiplication may send at most this multiple of the protocol's minimum bytes."""
PANDAS_RATIO = 2.0
"""Aggregate queries should take at most this multiple of pandas' time (at RTT 0)."""
LABELS = SYSTEM_LABELS
PREDICTED_VS_ROW = {"rounds": "rounds", "bytes_sent": "bytes_per_party", "messages_sent": "messages_per_party"}
"""EXPLAIN's counter -> the Row field measuring the same thing (both: max over parties)."""
TARGETS = {
    "peer": f"Micro operations at least {PEER_SPEEDUP:g}× faster than CrypTen-TTP",
    "bytes": f"Multiplication within {BYTES_OVER_MINIMUM:g}× of the protocol's minimum bytes per party",
    "pandas": f"Aggregate queries within {PANDAS_RATIO:g}× of pandas' time (RTT 0)",
    "explain": "EXPLAIN's predicted counters equal the measured ones (exact statements)",
    "regression": f"Logistic regression at least {PEER_SPEEDUP:g}× faster than CrypTen-TTP",
    "parquet": "3 sites × 10,000,000 Parquet rows, grouped statistics end to end within 1.5 s",
    "postgresql": "A PostgreSQL site's local phase within 1.3× of its pushed-down SQL alone",
    "wan_logistic": "LOGISTIC breast_cancer, 10 features, at 50 ms RTT within 35 s end to end",
    "cox": "COX within 3× the LOGISTIC fit of the same size (3 × 10,000 rows, 6 parameters)",
}
"""Target key -> what the Targets list calls it."""


@dataclass(frozen=True)
class Check:
    """One measured item of a target: met (True/False) or not measurable (None), and why."""

    target: str
    item: str
    met: bool | None
    detail: str


def _secs(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _median_spread(r: Row) -> str:
    if r.extra.get("failed"):
        return "failed"
    if r.seconds is None:
        return "—"
    if r.spread is None:
        return _secs(r.seconds)
    return _secs(r.seconds) + (f" ± {r.spread:.3f}" if r.seconds < 10 else f" ± {r.spread:.1f}")


def _mb(b: float | None) -> str:
    if b is None:
        return "—"
    return f"{b / 1e6:.2f}" if b < 1e7 else f"{b / 1e6:.1f}"


def _num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.4f}" if 1e-3 <= abs(x) < 1e3 else f"{x:.1e}"
    return str(x)


def _speed(peer_s: float, pooled_s: float, approx: bool = False) -> str:
    """Peer time over Pooled time, said in words: which one is faster and by what factor."""
    sign = "≈" if approx else ""
    if pooled_s <= peer_s:
        return f"{sign}{peer_s / pooled_s:.2f}× faster"
    return f"{sign}{pooled_s / peer_s:.2f}× slower"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _failed(r: Row | None) -> bool:
    return r is not None and (bool(r.extra.get("failed")) or r.seconds is None)


def _budget(target: str, item: str, measured: float, budget: float, unit: str, what: str) -> Check:
    """A 'measured <= budget' check of `target`, saying by how much it is met or missed."""
    if measured <= budget:
        return Check(target, item, True, f"{what}: met ({measured:.3g} {unit} within the {budget:.3g} {unit} budget)")
    return Check(target, item, False, f"{what}: missed by {measured - budget:.3g} {unit} "
                                      f"({measured / budget:.2f}× the {budget:.3g} {unit} budget)")


def _peer_row(pooled: Row, candidates: list[Row]) -> tuple[Row | None, bool]:
    """The peer's row for the same case, parties and RTT: same size if measured, else the nearest
    size (then `True`: compare time per element, a linear extrapolation)."""
    same = [r for r in candidates if (r.case, r.parties, r.rtt_ms) == (pooled.case, pooled.parties, pooled.rtt_ms)]
    exact = [r for r in same if r.size == pooled.size]
    if exact or not same:
        return (exact[0] if exact else None), False
    if pooled.size is None:
        return same[0], False
    near = min(same, key=lambda r: abs((r.size or 0) - (pooled.size or 0)))
    return near, near.size is not None


def _peer_cells(pooled: Row, peer: Row | None, scaled: bool) -> tuple[str, str, float | None]:
    """(seconds cell, speed cell, peer seconds scaled to Pooled's size) for one peer."""
    if peer is None:
        return "—", "", None
    if _failed(peer):
        reason = peer.extra.get("failed")
        return ("failed" if reason in (None, True) else f"failed: {reason}"), "", None
    assert peer.seconds is not None
    equiv = peer.seconds * (pooled.size / peer.size) if scaled and pooled.size and peer.size else peer.seconds
    cell = _secs(peer.seconds) + (f" ({peer.size:,})" if scaled and peer.size else "")
    if pooled.seconds is None or _failed(pooled):
        return cell, "", equiv
    return cell, _speed(equiv, pooled.seconds, approx=scaled), equiv


def _rtt_column(rows: list[Row]) -> bool:
    return len({r.rtt_ms for r in rows}) > 1 or any(r.rtt_ms for r in rows)


def micro(rows: list[Row]) -> tuple[list[str], list[Check]]:
    """Table of the micro operations, one line per (parties, case, size, RTT); peer columns for each peer present."""
    pooled = sorted((r for r in rows if r.system == "pooled"), key=lambda r: (r.parties, r.rtt_ms, r.case, r.size or 0))
    peers = [s for s in SYSTEMS if s != "pooled" and any(r.system == s for r in rows)]
    minimum = any("min_bytes_per_party" in r.extra for r in pooled)
    rtt = _rtt_column(pooled)
    header = ["parties", *(["RTT (ms)"] if rtt else []), "operation", "elements", "Pooled (s)", "MB per party",
              "messages", "rounds", *(["bytes ÷ minimum"] if minimum else [])]
    for p in peers:
        header += [f"{LABELS[p]} (s)", f"Pooled vs {LABELS[p]}"]
    checks: list[Check] = []
    body = []
    scaled_any = False
    for r in pooled:
        line = [str(r.parties), *([f"{r.rtt_ms:g}"] if rtt else []), r.case, _num(r.size), _median_spread(r),
                _mb(r.bytes_per_party), _num(r.messages_per_party), _num(r.rounds)]
        where = f"{r.case}, {r.parties} parties" + (f", RTT {r.rtt_ms:g} ms" if r.rtt_ms else "")
        if minimum:
            low = r.extra.get("min_bytes_per_party")
            if low and r.bytes_per_party is not None:
                line.append(f"{r.bytes_per_party / low:.3f}×")
                checks.append(_budget("bytes", where, r.bytes_per_party / 1e6, BYTES_OVER_MINIMUM * low / 1e6, "MB",
                                      f"{where}: {r.bytes_per_party / low:.3f}× the minimum {low / 1e6:.3g} MB"))
            else:
                line.append("")
        for p in peers:
            peer, scaled = _peer_row(r, [x for x in rows if x.system == p])
            scaled_any |= scaled and peer is not None and not _failed(peer)
            cell, speed, equiv = _peer_cells(r, peer, scaled)
            line += [cell, speed]
            if p == "crypten" and peer is not None:
                checks.append(_peer_check("peer", where, r, peer, equiv))
        body.append(line)
    lines = _table(header, body, [True] * (2 if rtt else 1) + [False] + [True] * (len(header) - (3 if rtt else 2)))
    notes = ["Pooled (s): median ± spread (max − min) over the timed repetitions; MB, messages and rounds: per "
             "party (max over parties), dealer traffic apart."]
    if peers:
        notes.append(f"*Pooled vs peer*: the peer's time over Pooled's, \"faster\" meaning Pooled is faster; "
                     f"the target is at least {PEER_SPEEDUP:g}× faster than CrypTen-TTP.")
    if scaled_any:
        notes.append("A peer time followed by an element count in parentheses was measured at that size; its ratio (≈) "
                     "compares time per element, a linear extrapolation.")
    if minimum:
        notes.append(f"*bytes ÷ minimum*: measured bytes per party over the protocol's minimum; target at most "
                     f"{BYTES_OVER_MINIMUM:g}×.")
    return lines + [""] + [" ".join(notes)], checks


def _peer_check(target: str, where: str, pooled: Row, peer: Row, equiv: float | None) -> Check:
    """Pooled at least PEER_SPEEDUP× faster than the peer: Pooled's time against peer / PEER_SPEEDUP."""
    if equiv is None:
        return Check(target, where, None, f"{where}: CrypTen-TTP failed, not compared")
    if pooled.seconds is None or _failed(pooled):
        return Check(target, where, None, f"{where}: Pooled not measured")
    return _budget(target, where, pooled.seconds, equiv / PEER_SPEEDUP, "s",
                   f"{where}: {_speed(equiv, pooled.seconds)} (CrypTen-TTP {_secs(equiv)} s, "
                   f"Pooled {_secs(pooled.seconds)} s)")


def prediction(r: Row) -> tuple[str | None, str]:
    """Whether the measured counters equal EXPLAIN's ('exact' / 'differs' / 'estimate'), with a cell text."""
    predicted = r.extra.get("predicted")
    if not isinstance(predicted, dict):
        return None, "—"
    measured: dict[str, Any] = dict(r.extra.get("measured") or {})
    for key, field in PREDICTED_VS_ROW.items():
        if key not in measured and getattr(r, field) is not None:
            measured[key] = getattr(r, field)
    keys = [k for k in predicted if k in measured]
    diffs = [f"{k} {measured[k]:,} measured, {predicted[k]:,} predicted" for k in keys if measured[k] != predicted[k]]
    if "iterations" in predicted:  # logistic regression: the cost model assumes an iteration count
        off = f"rounds {measured['rounds']:,} measured, {predicted['rounds']:,} predicted" if "rounds" in keys else ""
        return "estimate", "estimate" + (f" ({off})" if off else "")
    if not keys:
        return None, "—"
    return ("differs", "differs: " + "; ".join(diffs)) if diffs else ("exact", "exact")


def queries(rows: list[Row]) -> tuple[list[str], list[Check]]:
    """Table of the queries, one line per (case, parties, RTT), with pandas/statsmodels beside the RTT-0 lines."""
    pooled = sorted((r for r in rows if r.system == "pooled"), key=lambda r: (r.case, r.parties, r.rtt_ms))
    plain = [r for r in rows if r.system in ("pandas", "statsmodels") and r.rtt_ms == 0]
    header = ["query", "parties", "RTT (ms)", "Pooled (s)", "rounds", "messages", "MB per party", "predicted (s)",
              "counters vs EXPLAIN", "plaintext (s)", "Pooled ÷ plaintext"]
    checks: list[Check] = []
    body = []
    for r in pooled:
        status, check_text = prediction(r)
        where = f"{r.case}, {r.parties} parties, RTT {r.rtt_ms:g} ms"
        if status in ("exact", "differs"):
            checks.append(Check("explain", where, status == "exact", f"{where}: {check_text}"))
        plain_cell = ratio = ""
        same_case = sorted((p for p in plain if p.case == r.case), key=lambda p: p.parties != r.parties)
        base = same_case[0] if same_case else None  # the same parties if measured, else any
        if r.rtt_ms == 0 and base is not None:
            plain_cell = f"{_median_spread(base)} ({base.system})"
            if not _failed(base) and r.seconds is not None and base.seconds:
                ratio = f"{r.seconds / base.seconds:.2f}×"
                if base.system == "pandas":
                    checks.append(_budget("pandas", where, r.seconds, PANDAS_RATIO * base.seconds, "s",
                                          f"{r.case}, {r.parties} parties: {ratio} pandas' {_secs(base.seconds)} s"))
        body.append([r.case, str(r.parties), f"{r.rtt_ms:g}", _median_spread(r), _num(r.rounds),
                     _num(r.messages_per_party), _mb(r.bytes_per_party),
                     _secs(r.extra.get("predicted_seconds")), check_text, plain_cell, ratio])
    lines = _table(header, body, [False, True, True, True, True, True, True, True, False, True, True])
    note = ("*predicted (s)*: the cost model's time for the plan at that RTT; *counters vs EXPLAIN*: \"exact\" when "
            "the measured rounds, bytes and messages equal EXPLAIN's prediction (logistic regression's is an "
            f"estimate: it assumes an iteration count). Target: aggregates within {PANDAS_RATIO:g}× of pandas.")
    return lines + ["", note], checks


_ALIASES = {
    "iterations": ("iterations",),
    "epochs": ("epochs",),
    "accuracy": ("accuracy", "train_accuracy", "training_accuracy"),
    "coef": ("coef_error", "coefficient_error", "coef_rel_error", "max_coef_error"),
    "se": ("se_error", "std_err_error", "stderr_error", "se_rel_error", "max_se_error"),
}


def _extra(r: Row | None, name: str) -> Any:
    if r is None:
        return None
    return next((r.extra[k] for k in _ALIASES[name] if r.extra.get(k) is not None), None)


def regression(rows: list[Row]) -> tuple[list[str], list[Check]]:
    """Pooled's logistic regression beside CrypTen-TTP's training, errors against statsmodels."""
    pooled = sorted((r for r in rows if r.system == "pooled" and not r.rtt_ms),  # the WAN fits: `report_models`
                    key=lambda r: (r.case, r.parties, r.size or 0))
    crypten = [r for r in rows if r.system == "crypten" and r.extra.get("api") == "tensor"]
    crypten_nn = [r for r in rows if r.system == "crypten" and r.extra.get("api", "nn") == "nn"]  # older rows: nn
    features = any("features" in r.extra for r in rows)
    header = ["case", "parties", "features" if features else "size", "Pooled (s)", "iterations", "accuracy",
              "coef. error", "s.e. error", "outcome", "CrypTen-TTP (s)", "epochs", "accuracy", "Pooled vs CrypTen-TTP",
              "CrypTen-TTP crypten.nn (s)"]
    checks: list[Check] = []
    body = []

    def key(c: Row) -> tuple[object, ...]:
        return (c.case, c.parties, c.extra.get("features") if features else c.size)

    for r in pooled:
        size = r.extra.get("features") if features else r.size
        want = (r.case, r.parties, size)
        peer = next((c for c in crypten if key(c) == want), None)
        nn = next((c for c in crypten_nn if key(c) == want), None)
        refused = r.extra.get("refused")
        outcome = ("refused" + (f": {refused}" if isinstance(refused, str) else "")) if refused else "fitted"
        where = f"{r.case}, {r.parties} parties" + (f", {size} features" if features and size else "")
        cell, speed, equiv = _peer_cells(r, peer, False)
        if refused and peer is not None:
            speed = "not compared: Pooled refused the fit"
        if peer is not None:
            if refused:
                checks.append(Check("regression", where, None, f"{where}: Pooled refused the fit, not compared"))
            else:
                checks.append(_peer_check("regression", where, r, peer, equiv))
        body.append([r.case, str(r.parties), _num(size), _median_spread(r), _num(_extra(r, "iterations")),
                     _num(_extra(r, "accuracy")), _num(_extra(r, "coef")), _num(_extra(r, "se")), outcome,
                     cell, _num(_extra(peer, "epochs")), _num(_extra(peer, "accuracy")), speed,
                     _median_spread(nn) if nn is not None else "-"])
    lines = _table(header, body, [False, True, True, True, True, True, True, True, False, True, True, True, False,
                                  True])
    note = ("Errors: Pooled's coefficients and standard errors against statsmodels' (max relative). CrypTen-TTP "
            "trains by gradient descent for a fixed number of epochs and reports no standard errors. The comparison "
            "is with CrypTen written with its tensor operations (encrypted X and w, matmul, sigmoid, a hand-written "
            "gradient step), as its own examples are; *crypten.nn* is the same training through `crypten.nn` "
            "modules and autograd.")
    return lines + ["", note], checks


_AXES = {"rows": "rows per party", "parties": "parties", "features": "features"}


def scale(rows: list[Row], images: dict[str, str]) -> list[str]:
    """A short table per scaling axis, each followed by its plot when one was drawn."""
    lines: list[str] = []
    for axis, xlabel in _AXES.items():
        pts = sorted((r for r in rows if r.extra.get("axis") == axis),
                     key=lambda r: (r.case, r.system, r.parties, r.size or 0))
        if not pts:
            continue
        systems = len({r.system for r in pts}) > 1
        header = ["case", *(["system"] if systems else []), xlabel, *([] if axis == "parties" else ["parties"]),
                  "seconds", "MB per party", "messages", "rounds", "dealer MB"]
        body = []
        for r in pts:
            x = str(r.parties) if axis == "parties" else _num(r.size)
            body.append([r.case, *([LABELS.get(r.system, r.system)] if systems else []), x,
                         *([] if axis == "parties" else [str(r.parties)]), _median_spread(r),
                         _mb(r.bytes_per_party), _num(r.messages_per_party), _num(r.rounds), _mb(r.dealer_bytes)])
        lines += [f"**Against {xlabel}.**", ""]
        lines += _table(header, body, [False] * (2 if systems else 1) + [True] * (len(header) - (2 if systems else 1)))
        if f"scale_{axis}" in images:
            lines += ["", images[f"scale_{axis}"]]
        lines.append("")
    return lines


PARQUET_BUDGET_S = 1.5
"""The grouped statistics over 3 x 10^7 Parquet rows, end to end."""
PG_LOCAL_RATIO = 1.3
"""A PostgreSQL site's local phase against its pushed-down statement alone."""


def pushdown(rows: list[Row]) -> tuple[list[str], list[Check]]:
    """The large-site cases: Pooled beside the plaintext engine (DuckDB over the pooled files, or the
    pushed-down statement alone in PostgreSQL), with the ratio and the targets it meets."""
    header = ["case", "rows per site", "sites", "Pooled (s)", "engine alone (s)", "Pooled ÷ engine", "rounds",
              "MB per party", "max rel. error"]
    checks: list[Check] = []
    body = []
    for r in sorted((r for r in rows if r.system == "pooled"), key=lambda r: (r.case, r.size or 0)):
        if _failed(r):
            body.append([r.case, _num(r.size), str(r.parties), "not measured: " + str(r.extra.get("not_measured", "")),
                         "", "", "", "", ""])
            checks.append(Check("postgresql" if "postgresql" in r.case else "parquet", r.case, None,
                                str(r.extra.get("not_measured", "failed"))))
            continue
        base = next((b for b in rows if b.system != "pooled" and b.case == r.case and b.size == r.size), None)
        ratio = f"{r.seconds / base.seconds:.2f}×" if base and base.seconds and r.seconds else ""
        engine = f"{_median_spread(base)} ({LABELS.get(base.system, base.system)})" if base else ""
        err = "" if r.error is None else f"{r.error:.1e}"
        body.append([r.case, _num(r.size), str(r.parties), _median_spread(r), engine, ratio, _num(r.rounds),
                     _mb(r.bytes_per_party), err])
        where = f"{r.case}, {_num(r.size)} rows per site"
        if r.case.startswith("parquet") and r.seconds is not None and (r.size or 0) >= 10_000_000:
            checks.append(_budget("parquet", where, r.seconds, PARQUET_BUDGET_S, "s",
                                  f"{where}: {_secs(r.seconds)} s end to end, {ratio} DuckDB's plaintext"))
        if r.case == "postgresql local phase" and base is not None and base.seconds and r.seconds is not None:
            checks.append(_budget("postgresql", where, r.seconds, PG_LOCAL_RATIO * base.seconds, "s",
                                  f"{where}: {ratio} the statement alone ({_secs(base.seconds)} s)"))
    lines = _table(header, body, [False, True, True, True, True, True, True, True, True])
    note = ("*Pooled (s)*: end to end (the analyst's wall time per query) for the grouped statistics, the party's "
            "whole local phase (connection, the pushed-down GROUP BY, its result decoded) for the PostgreSQL local "
            "phase. *engine alone*: DuckDB over the sites' files pooled in plaintext (its default threads), or the "
            "pushed-down statement alone on an open connection. *max rel. error*: Pooled's released values against "
            "DuckDB's.")
    return lines + ["", note], checks


def targets(checks: list[Check]) -> list[str]:
    """One bullet per target: met, missed (how many of how many, and by how much each), or not measured."""
    lines = []
    for key, title in TARGETS.items():
        mine = [c for c in checks if c.target == key]
        measured = [c for c in mine if c.met is not None]
        if not measured:
            why = "; ".join(c.detail for c in mine)
            lines.append(f"- {title}: **not measured in this run**" + (f" ({why})." if why else "."))
            continue
        met = sum(bool(c.met) for c in measured)
        verdict = "met" if met == len(measured) else "missed"
        lines.append(f"- {title}: **{verdict}** ({met} of {len(measured)} met).")
        lines += [f"  - {c.detail}" for c in mine]
    return lines
