"""LOGISTIC on sklearn's breast_cancer, split over three in-process parties, against statsmodels.

* the ten `mean ...` features, standardized: Pooled's fit to convergence, with standard
  errors, next to statsmodels' Logit on the pooled rows (time, iterations, largest
  relative error of coefficients and standard errors);
* all thirty features: the data are perfectly separable and no MLE exists (statsmodels
  stops on a singular matrix); Pooled must refuse, not print numbers.

Run: `python -m benchmarks.regression [--synthetic-rows 100000]`. Writes benchmarks/results/regression.json and the
"## Regression (issue 5)" section of docs/benchmarks.md. In-process parties (no network):
the protocol's rounds and bytes are those a real consortium exchanges.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn.datasets import load_breast_cancer

from benchmarks import core
from queries.engine import run_in_process
from queries.errors import ModelRefused
from queries.result import Result
from queries.table import normalize_frame

SECTION = "## Regression (issue 5)"


def _sites(columns: list[str]) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    z = (data.data[columns] - data.data[columns].mean()) / data.data[columns].std()
    z.columns = [c.replace(" ", "_") for c in columns]
    z["y"] = data.target
    parts = np.array_split(np.arange(len(z)), 3)
    return [normalize_frame(z.iloc[idx].reset_index(drop=True)) for idx in parts], z


def run_case(columns: list[str]) -> dict[str, Any]:
    sites, pooled = _sites(columns)
    query = "LOGISTIC y ~ " + " + ".join(pooled.columns[:-1])
    start = time.perf_counter()
    result: Result | None = None
    try:
        result, plan = run_in_process(sites, query)
        model = result.extra.get("model")
    except ModelRefused as refusal:
        plan, model = refusal.plan, {"refused": str(refusal)}  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {
        "features": len(columns),
        "seconds": seconds,
        "rounds": plan.cost["rounds"],
        "bytes_sent_per_party": plan.cost["bytes_sent"],
        "model": model,
    }
    try:
        ref = sm.Logit(pooled["y"], sm.add_constant(pooled[pooled.columns[:-1]])).fit(disp=0)
        row["statsmodels_iterations"] = int(ref.mle_retvals["iterations"])
        if result is not None:
            table = result.to_pandas()
            row["coef_max_rel_error"] = float(np.max(np.abs(table.coef.values / ref.params.values - 1)))
            row["se_max_rel_error"] = float(np.max(np.abs(table.std_err.values / ref.bse.values - 1)))
    except Exception as exc:  # noqa: BLE001 - statsmodels' own failure is part of the record
        row["statsmodels"] = f"{type(exc).__name__}: {exc}"
    print(row, flush=True)
    return row


SYNTHETIC = "LOGISTIC outcome ~ age + bmi + sbp + chol + diabetes + C(sex) + C(smoking)"


def run_synthetic(rows_per_party: int) -> dict[str, Any]:
    """3 parties x `rows_per_party` synthetic rows, 8 covariates (every column of the cohort)."""
    from queries.synth import cohort

    sites = [cohort(rows_per_party, seed=200 + i) for i in range(3)]
    start = time.perf_counter()
    try:
        result, plan = run_in_process(sites, SYNTHETIC)
        model = result.extra.get("model")
    except ModelRefused as refusal:
        plan, model = refusal.plan, {"refused": str(refusal)}  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    row = {
        "case": f"synthetic 3 x {rows_per_party:,}",
        "seconds": seconds,
        "rounds": plan.cost["rounds"],
        "bytes_sent_per_party": plan.cost["bytes_sent"],
        "model": model,
    }
    print(row, flush=True)
    return row


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-rows", type=int, default=0, help="also fit 3 x N synthetic rows (e.g. 100000)")
    args = parser.parse_args()
    names = list(load_breast_cancer().feature_names)
    rows = [run_case([n for n in names if n.startswith("mean ")]), run_case(names)]
    synthetic = run_synthetic(args.synthetic_rows) if args.synthetic_rows else None
    machine = core._machine()
    out = core.ROOT / "benchmarks" / "results" / "regression.json"
    results = rows + ([synthetic] if synthetic else [])
    command = "python -m benchmarks.regression" + (f" --synthetic-rows {args.synthetic_rows}" if synthetic else "")
    out.write_text(json.dumps({"machine": machine, "command": command, "results": results}, indent=2))
    lines = [
        SECTION,
        "",
        "sklearn's breast_cancer (569 rows), standardized, split over 3 in-process parties; "
        f"machine: {machine['nproc']} cores, {machine['cpu']}. Command: `python -m benchmarks.regression`.",
        "",
        "| features | seconds | rounds | MB sent per party | outcome | statsmodels |",
        "|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        model = r["model"] or {}
        outcome = model.get("refused") or (
            f"converged in {model.get('iterations')} iterations; coef within "
            f"{r.get('coef_max_rel_error', float('nan')):.1e}, std err within "
            f"{r.get('se_max_rel_error', float('nan')):.1e} (relative)"
        )
        ref = r.get("statsmodels") or f"{r.get('statsmodels_iterations')} iterations"
        lines.append(
            f"| {r['features']} | {r['seconds']:.1f} | {r['rounds']} | {r['bytes_sent_per_party'] / 1e6:.1f} | "
            f"{outcome} | {ref} |"
        )
    if synthetic is not None:
        facts = synthetic["model"] or {}
        lines += [
            "",
            f"`{command}` also fits `{SYNTHETIC}` over {synthetic['case']} rows (in-process parties): "
            f"{synthetic['seconds']:.1f} s, {synthetic['rounds']} rounds, "
            f"{synthetic['bytes_sent_per_party'] / 1e6:.0f} MB sent per party, {facts.get('iterations')} iterations, "
            f"converged: {facts.get('converged')}.",
        ]
    lines += [
        "",
        "Not yet measured: CrypTen's 30-epoch training on the same split in the same run (issue 7's harness).",
        "",
    ]
    core.write_section(core.ROOT / "docs" / "benchmarks.md", "\n".join(lines), SECTION)


if __name__ == "__main__":
    main()
