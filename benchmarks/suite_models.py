"""The `models` suite: model fits on 3 × 10,000 synthetic rows with 6 parameters, at each emulated RTT.

Each model is one row of `MODELS`: a name, the statement the analyst asks, and the data
generator that writes one party's table (rows, seed) -> DataFrame. Every party holds
`queries.synth.cohort` rows with a survival outcome (`queries.synth.follow_up`: months of
follow-up and died), so POISSON (deaths per month of follow-up, an offset), LOGISTIC of the
same size and a survival model all read the same files; adding a model is adding a row.

For each party count and each `--wan` RTT, a local consortium (real processes, gRPC with
mutual TLS; every link through a `benchmarks.wan.DelayRelay` above 0) holds the tables as
Parquet files, and the analyst asks each model through `parties.analyst.ask`. A row has the
slowest party's compute phase (`benchmarks.rows.pooled_row`; the analyst's end-to-end time in
extra), rounds, bytes and messages per party, dealer traffic, the Newton iterations, and
EXPLAIN's prediction beside the measured counters (`queries.engine.predict_cost`, for the
padded rows each party held). A fit takes minutes at this size, so each model is timed once
per RTT without warm-up (with `--repeat` above 1 at RTT 0 only). `--quick` is a smoke run on
300 rows per party, POISSON and COX with fewer Newton iterations (QUICK_MAXITER).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.consortia import ConsortiumSession, Scratch, guarded_tasks, party_names
from benchmarks.framework import BenchOptions, Row, Task, timed_runs
from benchmarks.rows import pooled_row
from parties.analyst import ask
from parties.client import ConsortiumClient
from queries.engine import predict_cost
from queries.synth import cohort, follow_up
from queries.table import Schema

SUITE = "models"
ROWS = 10_000
QUICK_ROWS = 300
QUICK_MAXITER = {"POISSON": 6, "COX": 4}
"""`--quick` asks these models with `MAXITER n` (fewer than their fixed schedules, enough to converge on 300 rows);
LOGISTIC stops when it converges anyway."""


def cohort_with_follow_up(rows: int, seed: int) -> pd.DataFrame:
    """One party's table: a synthetic cohort with months of follow-up and died (`queries.synth`)."""
    return follow_up(cohort(rows, seed=seed), seed=seed)


@dataclass(frozen=True)
class Model:
    name: str
    statement: str
    data: Callable[[int, int], pd.DataFrame]
    """(rows, seed) -> one party's table."""


MODELS: tuple[Model, ...] = (
    Model("POISSON", "POISSON died ~ age + sex + C(smoking) + bmi + offset(np.log(months))", cohort_with_follow_up),
    Model("LOGISTIC", "LOGISTIC died ~ age + sex + C(smoking) + bmi", cohort_with_follow_up),
    Model("COX", "COX months, died ~ age + sex + C(smoking) + bmi + diabetes", cohort_with_follow_up),
)
"""The models measured, in order: six parameters each (POISSON and LOGISTIC: intercept, age, sex, two smoking
levels, bmi; COX, which has no intercept: age, sex, two smoking levels, bmi, diabetes)."""


def write_tables(
    directory: Path, names: Sequence[str], rows: int, data: Callable[[int, int], pd.DataFrame]
) -> dict[str, Path]:
    """Each party's table from `data` (seed = its index) as `<name>.parquet` in `directory`."""
    files = {}
    for i, name in enumerate(names):
        files[name] = directory / f"{name}.parquet"
        data(rows, i).to_parquet(files[name], index=False)
    return files


def measure(client: Callable[[], ConsortiumClient], names: Sequence[str], model: Model, rows: int, rtt_ms: float,
            repeat: int, maxiter: int | None = None) -> list[Row]:
    """One model's row on one consortium: the fit asked `repeat` times (with `MAXITER maxiter` if given), its
    counters beside EXPLAIN's."""
    analyst = client()
    statement = model.statement if maxiter is None else f"{model.statement} MAXITER {maxiter}"
    _, results = timed_runs(lambda: ask(analyst, names, statement), repeat, warmup=0)
    result, plan, job = results[-1]
    schema = Schema.from_json(next(iter(job.outcomes.values())).public["schema"])
    predicted = predict_cost(plan, schema, len(names))
    fit: Mapping[str, Any] = result.extra.get("model") or {}
    last = job.outcomes[names[-1]].public
    row = pooled_row(SUITE, model.name, len(names), rows, [j for _, _, j in results],
                     query=statement, iterations=fit.get("iterations"), converged=fit.get("converged"),
                     predicted={k: int(v) for k, v in predicted.items()},
                     dealer_requests=max(o.stats.dealer_requests for o in job.outcomes.values()),
                     dealer_asked_on_demand=last.get("dealer_asked_on_demand"),
                     mpc_rounds=max(int(o.public.get("mpc_cost", {}).get("rounds", 0)) for o in job.outcomes.values()),
                     end_to_end_runs=[r[2].seconds for r in results])
    row.rtt_ms = rtt_ms
    return [row]


def tasks(options: BenchOptions, models: Sequence[Model] = MODELS) -> list[Task]:
    """Per party count and RTT: one consortium holding every model's tables (the models share a generator
    when they can: one set of files per generator), each model one task."""
    scratch = Scratch("pooled-bench-models-")
    rows = QUICK_ROWS if options.quick else ROWS
    out: list[Task] = []
    for n in options.parties:
        names = party_names(n)
        for data in dict.fromkeys(m.data for m in models):
            files = partial(scratch.files, f"{data.__name__}-{rows}-{n}p",
                            partial(write_tables, names=names, rows=rows, data=data))
            for rtt in options.wan_rtt_ms:
                session = ConsortiumSession(names, data=files, relay_rtt_ms=rtt if rtt > 0 else None)
                repeat = options.repeat if rtt == 0 and not options.quick else 1
                measured = [Task(f"models {m.name} {n}p rtt {rtt:g}",
                                 partial(measure, session.client, names, m, rows, rtt, repeat,
                                         QUICK_MAXITER.get(m.name) if options.quick else None))
                            for m in models if m.data is data]
                out += guarded_tasks(session.close, measured)
    return guarded_tasks(scratch.remove, out)
