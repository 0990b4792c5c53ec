"""The `queries` suite: a cohort count, grouped statistics and a logistic model, at each emulated RTT.

For each party count and each `--wan` round-trip time, a local consortium (real processes,
gRPC with mutual TLS; every party and dealer link through a `benchmarks.wan.DelayRelay`
when the RTT is above 0) holds synthetic cohorts (`queries.synth`) as Parquet files:
1,000,000 rows per party for the count and the grouped statistics, 2,000 per party for the
logistic model (its cost grows with rows; the point here is rounds). Each row reports the
analyst's end-to-end seconds (median after a warm-up; the logistic model once per RTT above
0), the MPC counters per party, EXPLAIN's prediction checked against them
(`benchmarks.costmodel`: an exact prediction that differs stops the run), and the cost
model's predicted seconds from a calibration on the same links (once per party count and
RTT). At RTT 0, pandas (reading the same files) and statsmodels give the plaintext times.
`--quick` is a smoke run: 600 rows per party for every case (one consortium), no warm-up,
one pandas run, a smaller calibration.
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
on a busy 2-core machine, so the baseline gets more repetitions than Pooled's `--repeat` (not with `--quick`)."""
QUICK_ROWS = {"big": 600, "small": 600}
"""With `--quick` every case reads the same files, so one consortium per party count and RTT serves them all."""


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


QUICK_CALIBRATION_SIZE = 20_000
"""Elements of the bandwidth calibration's opening with `--quick` (1,000,000 otherwise)."""


class Links:
    """The calibration of one (parties, RTT)'s links: measured once, on the first consortium that asks."""

    def __init__(self, rtt_ms: float, quick: bool) -> None:
        self.rtt_ms, self.quick = rtt_ms, quick
        self._calibration: Calibration | None = None

    def calibration(self, session: ConsortiumSession) -> Calibration:
        if self._calibration is None:
            size = QUICK_CALIBRATION_SIZE if self.quick else 1_000_000
            self._calibration = calibrate(session.client(), session.names, self.rtt_ms, size=size)
        return self._calibration


@dataclass(frozen=True)
class Group:
    """A consortium (parties, RTT, data size), the calibration of its links, and whether to warm up."""

    session: ConsortiumSession
    links: Links
    warm: bool = True
    """A warm-up run before the timed ones (connections, page cache); not with `--quick`."""

    @property
    def rtt_ms(self) -> float:
        return self.links.rtt_ms


def measure(group: Group, data: Callable[[], Mapping[str, Path]], case: Case, rows: int, repeat: int) -> list[Row]:
    """Pooled's row for `case` on the group's consortium (with the cost model's check), and the plaintext row."""
    session, rtt_ms = group.session, group.rtt_ms
    client, names, parties = session.client(), session.names, len(session.names)
    calib = group.links.calibration(session)
    runs = 1 if (not case.exact and rtt_ms > 0) else repeat
    warmup = 1 if group.warm and (runs > 1 or rtt_ms == 0) else 0  # connections, page cache
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
            plain, _ = timed_runs(lambda: _pandas(files, case), max(repeat, PLAIN_REPEAT if group.warm else 1),
                                  warmup=1 if group.warm else 0)
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
    """Per party count and RTT: one consortium per data size (the cases on many rows, those on few;
    with `--quick` one size, so one consortium), all calibrated once."""
    scratch = Scratch("pooled-bench-queries-")
    rows_for = QUICK_ROWS if options.quick else ROWS
    repeat = 1 if options.quick else options.repeat
    out: list[Task] = []
    for n in options.parties:
        names = party_names(n)
        for rtt in options.wan_rtt_ms:
            links = Links(rtt, options.quick)
            for rows in dict.fromkeys(rows_for.values()):
                data = partial(scratch.files, f"{rows}-{n}p", partial(cohort_files, names=names, rows=rows, seed=100))
                session = ConsortiumSession(names, data=data, relay_rtt_ms=rtt if rtt > 0 else None)
                group = Group(session, links, warm=not options.quick)
                out += guarded_tasks(session.close, [
                    Task(f"queries {case.name} {n}p rtt {rtt:g}", partial(measure, group, data, case, rows, repeat))
                    for case in CASES if rows_for[case.data] == rows])
    return guarded_tasks(scratch.remove, out)
