"""The `scale` suite: how cost grows with rows, parties and model size.

* axis "rows": `SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking` over 3 parties
  (real processes) with 10^4 .. 10^7 synthetic rows per party. The end-to-end time grows
  with the rows each party reads and groups locally; the MPC part (rounds, bytes) does not
  depend on rows at all, which is what the plot shows.
* axis "parties": 2, 3, 5 and 8 parties for a 100,000-element multiplication and for the
  grouped aggregate at 10^4 rows per party: bytes per party grow with n - 1 (every opening
  is all-to-all), total bytes with n (n - 1).
* axis "features": LOGISTIC with 5, 10, 20 and 40 covariates on 3 x 2,000 synthetic rows
  from a known logistic model, run in-process (the parties are threads of this process:
  the counters are the network run's, the seconds have no network in them). The error is
  the largest coefficient difference from a float64 Newton fit of the pooled rows.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.consortia import NAMES, ONE_THREAD
from benchmarks.framework import BenchOptions, Row, Task, median_spread
from parties.analyst import ask
from parties.local import LocalConsortium
from queries.plaintext import logit_newton
from queries.synth import cohort

GROUPED = "SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking"
ROWS = (10_000, 100_000, 1_000_000, 10_000_000)
PARTIES = (2, 3, 5, 8)
FEATURES = (5, 10, 20, 40)
FEATURE_ROWS = 2_000


def _files(root: Path, rows: int, parties: int) -> list[Path]:
    out = []
    for i in range(parties):
        path = root / f"scale-{rows}-{parties}-{i}.parquet"
        if not path.exists():
            cohort(rows, seed=300 + i).to_parquet(path)
        out.append(path)
    return out


def grouped_row(root: Path, rows: int, parties: int, repeat: int, axis: str) -> Row:
    files = _files(root, rows, parties)
    names = list(NAMES[:parties])
    with LocalConsortium(names, env=ONE_THREAD, data=dict(zip(names, files))) as lc, lc.client() as client:
        ask(client, names, GROUPED)
        seconds, compute, last = [], [], None
        for _ in range(repeat):
            t0 = time.perf_counter()
            last = ask(client, names, GROUPED)
            seconds.append(time.perf_counter() - t0)
            compute.append(last[2].compute_seconds)
    assert last is not None
    job = last[2]
    mpc = [o.public["mpc_cost"] for o in job.outcomes.values()]
    median, spread = median_spread(seconds)
    sent = [m["bytes_sent"] for m in mpc]
    return Row("scale", "grouped stats", "pooled", parties, rows, 0.0, median, spread, repeat,
               max(sent), max(m["messages_sent"] for m in mpc), max(m["rounds"] for m in mpc),
               max(m["dealer_bytes"] for m in mpc),
               extra={"axis": axis, "compute_seconds": float(np.median(compute)), "bytes_total": sum(sent),
                      "note": "compute = slowest node's query job: reading its file, local pass, agreement, MPC"})
    # (the file read and local grouping are inside the node's job, so they are not split out here)


def mul_row(parties: int, size: int, repeat: int) -> Row:
    names = list(NAMES[:parties])
    with LocalConsortium(names, env=ONE_THREAD, bench_jobs=True) as lc, lc.client() as client:
        params = {"size": size, "seed": 3}
        client.run("bench_mul", params)
        runs = [client.run("bench_mul", params) for _ in range(repeat)]
    stats = [o.stats for o in runs[-1].outcomes.values()]
    median, spread = median_spread([r.compute_seconds for r in runs])
    return Row("scale", f"multiply {size:.0e}".replace("e+0", "e"), "pooled", parties, size, 0.0, median, spread,
               repeat, max(s.bytes_sent for s in stats), max(s.messages_sent for s in stats),
               max(s.rounds for s in stats), sum(s.dealer_bytes for s in stats),
               extra={"axis": "parties", "bytes_total": sum(s.bytes_sent for s in stats)})


def logistic_frames(features: int, parties: int, rows: int, seed: int = 11) -> tuple[list[pd.DataFrame], np.ndarray]:
    """Synthetic sites from a known logistic model with `features` standard-normal covariates."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(-0.5, 0.5, features + 1) / np.sqrt(max(features / 5, 1))
    frames = []
    for _ in range(parties):
        x = rng.standard_normal((rows, features))
        p = 1 / (1 + np.exp(-(beta[0] + x @ beta[1:])))
        frame = pd.DataFrame(x.round(4), columns=[f"x{i}" for i in range(1, features + 1)])
        frame["y"] = (rng.uniform(size=rows) < p).astype(int)
        frames.append(frame)
    return frames, beta


def newton_fit(frame: pd.DataFrame, features: int) -> np.ndarray:
    """The plaintext reference: a float64 Newton fit of the pooled rows."""
    x = np.column_stack([np.ones(len(frame)), frame[[f"x{i}" for i in range(1, features + 1)]].to_numpy(float)])
    return logit_newton(x, frame["y"].to_numpy(float), tol=1e-12)


def features_row(features: int, repeat: int) -> Row:
    from queries.engine import run_in_process
    from queries.errors import ModelRefused

    frames, _ = logistic_frames(features, 3, FEATURE_ROWS)
    text = "LOGISTIC y ~ " + " + ".join(f"x{i}" for i in range(1, features + 1))
    seconds: list[float] = []
    result, refused = None, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            result, plan = run_in_process(frames, text)
        except ModelRefused as refusal:
            refused, plan = refusal, refusal.plan  # type: ignore[attr-defined]
        seconds.append(time.perf_counter() - t0)
    want = newton_fit(pd.concat(frames, ignore_index=True), features)
    model = result.extra.get("model", {}) if result is not None else {}
    extra: dict[str, Any] = {"axis": "features", "rows_per_party": FEATURE_ROWS, "transport": "in-process threads",
                             "iterations": model.get("iterations")}
    error = None
    if result is not None:
        error = float(np.abs(result.to_pandas()["coef"].to_numpy(float) - want).max())
    else:
        extra["refused"] = str(refused)
    cost = plan.cost or {}
    median, spread = median_spread(seconds)
    return Row("scale", "logistic", "pooled", 3, features, 0.0, median, spread, repeat, cost.get("bytes_sent"),
               cost.get("messages_sent"), cost.get("rounds"), cost.get("dealer_bytes"), error, extra)


def tasks(options: BenchOptions) -> list[Task]:
    root = Path(tempfile.mkdtemp(prefix="pooled-bench-scale-"))
    atexit.register(shutil.rmtree, root, True)
    repeat = 1 if options.quick else options.repeat
    rows = (1_000, 10_000) if options.quick else ROWS
    parties = (2, 3) if options.quick else PARTIES
    features = (5,) if options.quick else FEATURES
    mul_size = 10_000 if options.quick else 100_000
    out = [Task(f"scale rows {r:.0e}", lambda r=r: [grouped_row(root, r, 3, 1 if r >= 10**7 else repeat, "rows")])
           for r in rows]
    for n in parties:
        out.append(Task(f"scale parties {n} multiply", lambda n=n: [mul_row(n, mul_size, repeat)]))
        out.append(Task(f"scale parties {n} grouped",
                        lambda n=n: [grouped_row(root, rows[0] if options.quick else 10_000, n, repeat, "parties")]))
    out += [Task(f"scale features {k}", lambda k=k: [features_row(k, 1 if k >= 40 else repeat)]) for k in features]
    return out
