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

import atexit
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.consortia import NAMES, Pool
from benchmarks.costmodel import Calibration, calibrate, check_prediction, measured_cost, predict_seconds
from benchmarks.framework import BenchOptions, Row, Task, median_spread
from parties.analyst import ask
from queries.engine import predict_cost
from queries.synth import cohort
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


def _pandas_seconds(files: list[Path], case: Case) -> float:
    start = time.perf_counter()
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if case.name == "cohort count":
        int(((frame.age >= 50) & (frame.diabetes == 1)).sum())
    else:
        frame.groupby(["sex", "smoking"]).sbp.agg(["size", "mean", "var"])
    return time.perf_counter() - start


def _statsmodels_seconds(files: list[Path]) -> float | None:
    try:
        import statsmodels.formula.api as smf
    except ImportError:
        return None
    start = time.perf_counter()
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).dropna()
    smf.logit("diabetes ~ age + bmi + sbp + C(smoking) + C(sex)", frame).fit(disp=0)
    return time.perf_counter() - start


class _Data:
    """Synthetic Parquet files per (rows, parties), written once per run."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pooled-bench-queries-"))
        self._files: dict[tuple[int, int], list[Path]] = {}
        atexit.register(self.remove)

    def files(self, rows: int, parties: int) -> list[Path]:
        if (rows, parties) not in self._files:
            out = []
            for i in range(parties):
                path = self.root / f"{rows}-{parties}-{i}.parquet"
                cohort(rows, seed=100 + i).to_parquet(path)
                out.append(path)
            self._files[(rows, parties)] = out
        return self._files[(rows, parties)]

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def measure(pool: Pool, data: _Data, case: Case, parties: int, rtt_ms: float, rows: int, repeat: int,
            calibrations: dict[tuple[int, float, str], Calibration]) -> list[Row]:
    files = data.files(rows, parties)
    names = list(NAMES[:parties])
    key = f"queries-{case.data}"
    _, client = pool.get(parties, rtt_ms, dict(zip(names, files)), key=key)
    if (parties, rtt_ms, key) not in calibrations:
        calibrations[(parties, rtt_ms, key)] = calibrate(client, names, rtt_ms)
    calib = calibrations[(parties, rtt_ms, key)]
    timed_runs = 1 if (not case.exact and rtt_ms > 0) else repeat
    if timed_runs > 1 or rtt_ms == 0:
        ask(client, names, case.text)  # warm-up (connections, page cache)
    seconds, last = [], None
    for _ in range(timed_runs):
        t0 = time.perf_counter()
        last = ask(client, names, case.text)
        seconds.append(time.perf_counter() - t0)
    assert last is not None
    result, plan, job = last
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
    rows_out = [Row("queries", case.name, "pooled", parties, rows, rtt_ms, median, spread, timed_runs,
                    measured["bytes_sent"], measured["messages_sent"], measured["rounds"],
                    measured.get("dealer_bytes"), extra=extra)]
    if rtt_ms == 0:
        if case.exact:
            _pandas_seconds(files, case)  # warm-up: page cache, pyarrow's thread pool
            plain = [_pandas_seconds(files, case) for _ in range(max(repeat, PLAIN_REPEAT))]
            m, s = median_spread(plain)
            rows_out.append(Row("queries", case.name, "pandas", parties, rows, 0.0, m, s, len(plain),
                                extra={"includes": "reading the parties' Parquet files"}))
        else:
            sm = _statsmodels_seconds(files)
            if sm is not None:
                rows_out.append(Row("queries", case.name, "statsmodels", parties, rows, 0.0, sm, 0.0, 1,
                                    extra={"includes": "reading the parties' Parquet files"}))
    return rows_out


def tasks(options: BenchOptions) -> list[Task]:
    pool, data = Pool(), _Data()
    calibrations: dict[tuple[int, float, str], Calibration] = {}
    rows_for = QUICK_ROWS if options.quick else ROWS
    repeat = 1 if options.quick else options.repeat
    plan = [(n, rtt, case) for n in options.parties for rtt in options.wan_rtt_ms for case in CASES]
    out: list[Task] = []
    for i, (n, rtt, case) in enumerate(plan):
        nxt = plan[i + 1] if i + 1 < len(plan) else None

        def run(n: int = n, rtt: float = rtt, case: Case = case, nxt: Any = nxt) -> list[Row]:
            try:
                return measure(pool, data, case, n, rtt, rows_for[case.data], repeat, calibrations)
            finally:
                if nxt is None or nxt[:2] != (n, rtt) or nxt[2].data != case.data:
                    pool.release(n, rtt, key=f"queries-{case.data}")
                if nxt is None:
                    pool.close_all()
                    data.remove()

        out.append(Task(f"queries {case.name} {n}p rtt {rtt:g}", run))
    return out
