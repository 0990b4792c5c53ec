"""The `regression` suite of `python -m benchmarks`: LOGISTIC on breast_cancer over real processes, CrypTen beside it.

sklearn's breast_cancer (569 rows), standardized (`benchmarks.references.breast_cancer_frame`:
spaces in column names become underscores), split in contiguous blocks over the parties;
each party's block is its own Parquet file, read by its own node process
(`LocalConsortium(data=...)`), and the analyst asks `LOGISTIC y ~ ...` through
`parties.analyst.ask`, as a user would. One consortium per party count serves both
feature sets (every file holds all 30 standardized features; a query reads only the
columns its formula names).

* 10 features (the `mean ...` ones): Pooled fits to convergence with standard errors.
  The row has the slowest party's compute phase (median after a warm-up), rounds, bytes,
  Newton iterations, the largest relative difference of coefficients and of standard
  errors against statsmodels' Logit on the pooled rows (a plaintext float64 Newton fit
  when statsmodels is not installed; the row says which), and the fitted model's
  training accuracy on the pooled rows.
* 30 features (not with `--quick`): the rows are perfectly separable, no maximum
  likelihood estimate exists and Pooled refuses the fit; the refusal is the row's outcome
  (extra["refused"]), timed once: there is no fit to repeat.

At each `--wan` RTT above 0, the 10-feature fit runs on a consortium whose links go through
a `benchmarks.wan.DelayRelay` (once, without warm-up: the point is what the rounds cost; no
peer rows there); the rows above run only when the RTTs include 0 (the default).

With `--peers`, CrypTen-TTP's usual training (30 epochs of full-batch gradient descent, its
harness `benchmarks.peers.crypten_bench`) runs right after Pooled on the same features and
party count: its time and training accuracy (it has no standard errors, and its harness
reports no coefficients to compare). MPyC has no logistic regression here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.consortia import ConsortiumSession, Scratch, guarded_tasks, party_names
from benchmarks.framework import BenchOptions, Row, Task, timed_runs
from benchmarks.references import OUTCOME, breast_cancer_frame, columns, reference_fit
from benchmarks.rows import peer_row, pooled_row
from parties.analyst import ask
from parties.client import JobResult
from queries.errors import ModelRefused
from queries.result import Result

SUITE = "regression"
CASE = "breast_cancer LOGISTIC"


def write_sites(directory: Path, names: Sequence[str]) -> dict[str, Path]:
    """Each party's contiguous block of `breast_cancer_frame()` rows as `<name>.parquet` in `directory`."""
    frame = breast_cancer_frame()
    files = {}
    for name, idx in zip(names, np.array_split(np.arange(len(frame)), len(names))):
        path = directory / f"{name}.parquet"
        frame.iloc[idx].reset_index(drop=True).to_parquet(path, index=False)
        files[name] = path
    return files


def query(features: int) -> str:
    return f"LOGISTIC {OUTCOME} ~ " + " + ".join(columns(features))


# -- Pooled --------------------------------------------------------------------------------------------
def fitted_facts(result: Result | ModelRefused, features: int) -> dict[str, Any]:
    """Iterations, errors against the reference and training accuracy of a fitted result; the refusal if refused."""
    frame = breast_cancer_frame()
    x = np.column_stack([np.ones(len(frame)), frame[columns(features)].to_numpy(np.float64)])
    y = frame[OUTCOME].to_numpy(np.float64)
    ref_coef, ref_se, reference = reference_fit(x, y)
    facts: dict[str, Any] = {"features": features, "rows": len(frame), "reference": reference}
    if isinstance(result, ModelRefused):
        return {**facts, "refused": str(result)}
    model = dict(result.extra.get("model") or {})
    table = result.to_pandas()
    terms = list(table["term"])
    if terms != ["Intercept", *columns(features)]:
        raise ValueError(f"unexpected terms {terms}")
    coef = table["coef"].to_numpy(np.float64)
    facts.update(
        iterations=model.get("iterations"),
        converged=model.get("converged"),
        log_likelihood=model.get("log_likelihood"),
        accuracy=float(np.mean((x @ coef > 0) == (y == 1))),
    )
    if ref_coef is not None and ref_se is not None:
        facts["coef_error"] = float(np.max(np.abs(coef / ref_coef - 1)))
        facts["se_error"] = float(np.max(np.abs(table["std_err"].to_numpy(np.float64) / ref_se - 1)))
        facts["error_kind"] = f"max relative coefficient difference vs {reference}"
    return facts


def measure_pooled(session: ConsortiumSession, features: int, repeat: int, warmup: int) -> list[Row]:
    """Pooled's row: the query asked `repeat` times after `warmup`; a refusal is timed once and reported.
    The row's RTT is the session's relay's."""
    client = session.client()
    text = query(features)
    last: list[Result | ModelRefused] = []

    def once() -> JobResult:
        try:
            result, _, job = ask(client, session.names, text)
        except ModelRefused as refusal:  # the nodes ran and refused: time the run, record the reason
            last[:] = [refusal]
            return refusal.job  # type: ignore[attr-defined, no-any-return]
        last[:] = [result]
        return job

    first = once()  # the warm-up, or with warmup=0 the first timed run
    if isinstance(last[0], ModelRefused):
        runs = [first]
    elif warmup:
        runs = timed_runs(once, repeat, warmup - 1)[1]
    else:
        runs = [first, *timed_runs(once, repeat - 1, 0)[1]]
    facts = fitted_facts(last[0], features)
    last_party = runs[-1].outcomes[session.names[-1]].public  # its dealer requests: asked ahead, or on demand
    asked = {k: last_party.get(k) for k in ("dealer_asked_ahead", "dealer_asked_on_demand")}
    row = pooled_row(SUITE, CASE, len(session.names), features, runs, facts.get("coef_error"), **facts, **asked)
    row.rtt_ms = session.relay_rtt_ms or 0.0
    return [row]


def measure_crypten(parties: int, features: int, repeat: int, api: str = "tensor") -> list[Row]:
    """CrypTen-TTP's 30-epoch gradient-descent training on the same features and parties.

    `api="tensor"` (the comparison): CrypTen's tensor operations, as its examples write a model;
    `api="nn"`: `crypten.nn` modules with autograd, a second row labelled by `extra["api"]`.
    """
    from benchmarks.peers import run_peer

    row = peer_row(SUITE, CASE, "crypten", parties, features, None,
                   partial(run_peer, "crypten", "logreg", parties, features, repeat, api=api))
    row.extra.setdefault("features", features)
    row.extra.setdefault("api", api)
    row.extra["coef_error_note"] = "the CrypTen harness reports training accuracy only, no coefficients"
    return [row]


# -- the suite ---------------------------------------------------------------------------------------
def tasks(options: BenchOptions) -> list[Task]:
    """Per party count: 10 features in Pooled, then CrypTen-TTP (tensor API, then crypten.nn); then 30
    (not with --quick)."""
    from benchmarks.peers import available

    repeat = 1 if options.quick else options.repeat
    warmup = 0 if options.quick else 1
    feature_sets = [10] if options.quick else [10, 30]
    crypten = options.peers and available("crypten")
    if options.peers and not crypten:
        print(f"[{SUITE}] crypten is not installed here: its rows are skipped", file=sys.stderr)
    if options.peers:
        print(f"[{SUITE}] mpyc has no logistic regression: no MPyC rows", file=sys.stderr)
    out: list[Task] = []
    scratch = Scratch("pooled-bench-regression-")
    for n in options.parties:
        names = party_names(n)
        data = partial(scratch.files, f"{n}p", partial(write_sites, names=names))
        session = ConsortiumSession(names, data=data)
        group = []
        for features in feature_sets if 0 in options.wan_rtt_ms else ():
            label = f"regression {n}p {features}f"
            group.append(Task(f"{label} pooled", partial(measure_pooled, session, features, repeat, warmup)))
            if crypten:
                group.append(Task(f"{label} crypten", partial(measure_crypten, n, features, repeat)))
                group.append(Task(f"{label} crypten.nn", partial(measure_crypten, n, features, repeat, "nn")))
        out += guarded_tasks(session.close, group)
        for rtt in (r for r in options.wan_rtt_ms if r > 0):
            far = ConsortiumSession(names, data=data, relay_rtt_ms=rtt)
            task = Task(f"regression {n}p 10f pooled rtt {rtt:g}", partial(measure_pooled, far, 10, 1, 0))
            out += guarded_tasks(far.close, [task])
    return guarded_tasks(scratch.remove, out)
