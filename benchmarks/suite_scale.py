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

Each (parties, rows per party) runs on one consortium shared by its tasks (the parties
axis' multiplication on its grouped aggregate's). `--quick` (a smoke run): 10^3 and 10^4
rows, 2 and 3 parties, 10^4-element multiplication, 2 covariates on 3 x 300 rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.consortia import ConsortiumSession, Scratch, cohort_files, guarded_tasks, party_names
from benchmarks.framework import BenchOptions, Row, Task, median_spread, timed_runs
from benchmarks.references import newton_logit
from benchmarks.rows import pooled_row
from parties.analyst import ask

GROUPED = "SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking"
ROWS = (10_000, 100_000, 1_000_000, 10_000_000)
PARTIES = (2, 3, 5, 8)
FEATURES = (5, 10, 20, 40)
FEATURE_ROWS = 2_000
QUICK_FEATURE_ROWS = 300
"""`--quick` fits 2 covariates on 3 x 300 rows: the code path, not the curve (tests/queries/test_regression
checks the fit itself)."""


def consortium(scratch: Scratch, rows: int, parties: int) -> ConsortiumSession:
    """A consortium (started on first use) of `parties` real processes holding `rows` synthetic rows each."""
    names = party_names(parties)
    data = partial(scratch.files, f"{rows}-{parties}p", partial(cohort_files, names=names, rows=rows, seed=300))
    return ConsortiumSession(names, data=data)


def grouped_row(session: ConsortiumSession, rows: int, repeat: int, axis: str) -> Row:
    """The grouped aggregate over the session's consortium, whose parties hold `rows` rows each."""
    client, names, parties = session.client(), session.names, len(session.names)
    seconds, results = timed_runs(lambda: ask(client, names, GROUPED), repeat)
    job = results[-1][2]
    mpc = [o.public["mpc_cost"] for o in job.outcomes.values()]
    median, spread = median_spread(seconds)
    sent = [m["bytes_sent"] for m in mpc]
    # The node's job holds reading its file and the local grouping, so they are not split out here.
    compute = float(np.median([r[2].compute_seconds for r in results]))
    return Row("scale", "grouped stats", "pooled", parties, rows, 0.0, median, spread, repeat,
               max(sent), max(m["messages_sent"] for m in mpc), max(m["rounds"] for m in mpc),
               max(m["dealer_bytes"] for m in mpc),
               extra={"axis": axis, "compute_seconds": compute, "bytes_total": sum(sent),
                      "note": "compute = slowest node's query job: reading its file, local pass, agreement, MPC"})


def mul_row(session: ConsortiumSession, size: int, repeat: int) -> Row:
    """A `size`-element multiplication over the session's consortium (its data plays no part)."""
    client, parties = session.client(), len(session.names)
    _, runs = timed_runs(lambda: client.run("bench_mul", {"size": size, "seed": 3}), repeat)
    return pooled_row("scale", f"multiply {size:.0e}".replace("e+0", "e"), parties, size, runs, axis="parties",
                      bytes_total=sum(o.stats.bytes_sent for o in runs[-1].outcomes.values()))


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
    """The plaintext reference: the coefficients of `benchmarks.references.newton_logit` on the pooled rows."""
    x = np.column_stack([np.ones(len(frame)), frame[[f"x{i}" for i in range(1, features + 1)]].to_numpy(float)])
    return newton_logit(x, frame["y"].to_numpy(float))[0]


def features_row(features: int, repeat: int, rows: int = FEATURE_ROWS) -> Row:
    from queries.engine import run_in_process
    from queries.errors import ModelRefused

    frames, _ = logistic_frames(features, 3, rows)
    text = "LOGISTIC y ~ " + " + ".join(f"x{i}" for i in range(1, features + 1))

    def fit() -> tuple[Any, Any]:
        try:
            return run_in_process(frames, text)
        except ModelRefused as refusal:
            return refusal, refusal.plan  # type: ignore[attr-defined]

    seconds, fits = timed_runs(fit, repeat, warmup=0)
    result, plan = fits[-1]
    refused = isinstance(result, ModelRefused)
    model = {} if refused else result.extra.get("model", {})
    extra: dict[str, Any] = {"axis": "features", "rows_per_party": rows, "transport": "in-process threads",
                             "iterations": model.get("iterations")}
    error = None
    if refused:
        extra["refused"] = str(result)
    else:
        want = newton_fit(pd.concat(frames, ignore_index=True), features)
        error = float(np.abs(result.to_pandas()["coef"].to_numpy(float) - want).max())
    cost = plan.cost or {}
    median, spread = median_spread(seconds)
    return Row("scale", "logistic", "pooled", 3, features, 0.0, median, spread, repeat, cost.get("bytes_sent"),
               cost.get("messages_sent"), cost.get("rounds"), cost.get("dealer_bytes"), error, extra)


def tasks(options: BenchOptions) -> list[Task]:
    """One consortium per (parties, rows per party), shared by every task that measures it (the
    parties axis' multiplication runs on the grouped aggregate's), stopped after its last task."""
    scratch = Scratch("pooled-bench-scale-")
    repeat = 1 if options.quick else options.repeat
    rows = (1_000, 10_000) if options.quick else ROWS
    parties = (2, 3) if options.quick else PARTIES
    features = (2,) if options.quick else FEATURES
    feature_rows = QUICK_FEATURE_ROWS if options.quick else FEATURE_ROWS
    mul_size = 10_000 if options.quick else 100_000
    by_parties_rows = rows[0] if options.quick else 10_000
    groups: dict[tuple[int, int], list[tuple[str, Callable[[ConsortiumSession], Row]]]] = {}
    for r in rows:
        groups.setdefault((3, r), []).append(
            (f"scale rows {r:.0e}", partial(grouped_row, rows=r, repeat=1 if r >= 10**7 else repeat, axis="rows")))
    for n in parties:
        groups.setdefault((n, by_parties_rows), []).extend([
            (f"scale parties {n} multiply", partial(mul_row, size=mul_size, repeat=repeat)),
            (f"scale parties {n} grouped", partial(grouped_row, rows=by_parties_rows, repeat=repeat, axis="parties")),
        ])
    out: list[Task] = []
    for (n, r), measures in groups.items():
        session = consortium(scratch, r, n)
        out += guarded_tasks(session.close, [Task(label, partial(_one, fn, session)) for label, fn in measures])
    for k in features:
        fit = partial(features_row, k, 1 if k >= 40 else repeat, feature_rows)
        out.append(Task(f"scale features {k}", partial(_listed, fit)))
    return guarded_tasks(scratch.remove, out)


def _one(measure: Callable[[ConsortiumSession], Row], session: ConsortiumSession) -> list[Row]:
    return [measure(session)]


def _listed(measure: Callable[[], Row]) -> list[Row]:
    return [measure()]
