"""The `queries` suite: a cohort count, grouped statistics and a logistic model, at each emulated RTT.

For each party count and each `--wan` round-trip time, a local consortium (real processes,
gRPC with mutual TLS; every party and dealer link through a `benchmarks.wan.DelayRelay`
when the RTT is above 0) holds synthetic cohorts (`queries.synth`) as Parquet files:
1,000,000 rows per party for the count and the grouped statistics, 2,000 per party for the
logistic model (its cost grows with rows; the point here is rounds). Each row reports the
analyst's end-to-end seconds (median after a warm-up; the logistic model once per RTT above
0), the MPC counters per party, EXPLAIN's prediction checked against them
(`benchmarks.costmodel`: an exact prediction that differs stops the run), and the cost
model's predicted seconds from a calibration on the same links. At RTT 0, pandas (reading
the same files) and statsmodels give the plaintext times.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.consortia import ConsortiumSession, Scratch, cohort_files, guarded_tasks, party_names
from benchmarks.costmodel import Calibration, calibrate, check_prediction, measured_cost, predict_seconds
from benchmarks.framework import BenchOptions, Row, Task, median_spread, timed_runs
from parties.analyst import ask
from queries.engine import predict_cost
from queries.table import Schema


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    data: str  # "big" or "small" rows per party
    exact: bool


CASES = (
    Case("cohort count", "SELECT COUNT(*) WHERE age >= 50 AND diabetes = 1", "big", True),
    Case("grouped stats", "SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking", "big", True),
    Case("logistic", "LOGISTIC diabetes ~ age + bmi + sbp + C(smoking) + C(sex)", "small", False),
)
ROWS = {"big": 1_000_000, "small": 2_000}
PLAIN_REPEAT = 7
"""Timed pandas runs per case at least (after a warm-up): a run takes well under a second and varies a lot
on a busy 2-core machine, so the baseline gets more repetitions than Pooled's `--repeat`."""
QUICK_ROWS = {"big": 2_000, "small": 600}


def _pandas(files: list[Path], case: Case) -> None:
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if case.name == "cohort count":
        int(((frame.age >= 50) & (frame.diabetes == 1)).sum())
    else:
        frame.groupby(["sex", "smoking"]).sbp.agg(["size", "mean", "var"])


def _statsmodels(files: list[Path]) -> bool:
    """Fit the logistic case's model with statsmodels; False when statsmodels is not installed."""
    try:
        import statsmodels.formula.api as smf
    except ImportError:
        return False
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).dropna()
    smf.logit("diabetes ~ age + bmi + sbp + C(smoking) + C(sex)", frame).fit(disp=0)
    return True


class Group:
    """The consortium one (parties, RTT, data size) shares, and its calibration (measured once, on first use)."""

    def __init__(self, session: ConsortiumSession, rtt_ms: float) -> None:
        self.session, self.rtt_ms = session, rtt_ms
        self._calibration: Calibration | None = None

    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = calibrate(self.session.client(), self.session.names, self.rtt_ms)
        return self._calibration


def measure(group: Group, data: Callable[[], Mapping[str, Path]], case: Case, rows: int, repeat: int) -> list[Row]:
    """Pooled's row for `case` on the group's consortium (with the cost model's check), and the plaintext row."""
    session, rtt_ms = group.session, group.rtt_ms
    client, names, parties = session.client(), session.names, len(session.names)
    calib = group.calibration()
    runs = 1 if (not case.exact and rtt_ms > 0) else repeat
    warmup = 1 if (runs > 1 or rtt_ms == 0) else 0  # connections, page cache
    seconds, results = timed_runs(lambda: ask(client, names, case.text), runs, warmup)
    result, plan, job = results[-1]
    measured = measured_cost([o.public["mpc_cost"] for o in job.outcomes.values()])
    predicted = predict_cost(plan, Schema.from_json(next(iter(job.outcomes.values())).public["schema"]), parties)
    if case.exact:
        check = check_prediction(case.text, predicted, measured, exact=True)
    else:  # an estimate for a number of iterations: compare per iteration
        iterations = int(result.extra.get("model", {}).get("iterations", 0) or 1)
        per_iter = {k: v * iterations / max(int(predicted.get("iterations", 1)), 1) for k, v in predicted.items()
                    if k in measured}
        check = check_prediction(case.text, per_iter, measured, exact=False)
    median, spread = median_spread(seconds)
    extra: dict[str, Any] = {
        "query": case.text,
        "predicted": {k: int(v) for k, v in predicted.items()},
        "prediction_check": "exact" if case.exact else "estimate (scaled to the measured iterations)",
        "check": check,
        "predicted_seconds": predict_seconds(measured, calib),
        "calibration": calib.as_dict(),
        "dealer_requests": measured.get("dealer_requests"),
    }
    if not case.exact:
        extra["iterations"] = result.extra.get("model", {}).get("iterations")
    rows_out = [Row("queries", case.name, "pooled", parties, rows, rtt_ms, median, spread, runs,
                    measured["bytes_sent"], measured["messages_sent"], measured["rounds"],
                    measured.get("dealer_bytes"), extra=extra)]
    if rtt_ms == 0:
        files = list(data().values())
        plain_extra = {"includes": "reading the parties' Parquet files"}
        if case.exact:  # the warm-up fills the page cache and starts pyarrow's thread pool
            plain, _ = timed_runs(lambda: _pandas(files, case), max(repeat, PLAIN_REPEAT))
            m, s = median_spread(plain)
            rows_out.append(Row("queries", case.name, "pandas", parties, rows, 0.0, m, s, len(plain),
                                extra=plain_extra))
        else:
            plain, fitted = timed_runs(lambda: _statsmodels(files), 1, warmup=0)
            if fitted[0]:
                rows_out.append(Row("queries", case.name, "statsmodels", parties, rows, 0.0, plain[0], 0.0, 1,
                                    extra=plain_extra))
    return rows_out


def tasks(options: BenchOptions) -> list[Task]:
    """Per party count and RTT: one consortium for the cases on many rows, one for those on few."""
    scratch = Scratch("pooled-bench-queries-")
    rows_for = QUICK_ROWS if options.quick else ROWS
    repeat = 1 if options.quick else options.repeat
    out: list[Task] = []
    for n in options.parties:
        names = party_names(n)
        for rtt in options.wan_rtt_ms:
            for kind, rows in rows_for.items():
                data = partial(scratch.files, f"{rows}-{n}p", partial(cohort_files, names=names, rows=rows, seed=100))
                session = ConsortiumSession(names, data=data, relay_rtt_ms=rtt if rtt > 0 else None)
                group = Group(session, rtt)
                out += guarded_tasks(session.close, [
                    Task(f"queries {case.name} {n}p rtt {rtt:g}", partial(measure, group, data, case, rows, repeat))
                    for case in CASES if case.data == kind])
    return guarded_tasks(scratch.remove, out)
