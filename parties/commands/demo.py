"""`pooled demo`: three hospitals and a dealer answer an epidemiologist's questions.

Writes a synthetic cohort (never real patients) split over three sites, starts a dealer
and one node per site on 127.0.0.1 (real processes, mutual TLS), runs a few representative
queries through the analyst client, and prints each pooled answer next to what pandas or
a plaintext Newton fit (logistic, weighted logistic with HC0 errors, Poisson, Cox with Breslow ties),
Mantel-Haenszel or Kaplan-Meier says on the pooled rows — which only this demo, holding every file, can
compute. Stops every process on exit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

QUERIES = (
    "SELECT COUNT(*), AVG(bmi), STDDEV(sbp) GROUP BY sex",
    "SELECT COUNT(*), MEDIAN(age), QUANTILE(chol, 0.9) WHERE diabetes = 1",
    "CROSSTAB smoking BY outcome",
    "CROSSTAB diabetes BY outcome STRATA smoking",
    "LOGISTIC outcome ~ age + bmi + C(smoking)",
    "SURVIVAL months, died BY smoking EVERY 6",
    "POISSON died ~ age + C(smoking) + offset(np.log(months))",
    "COX months, died ~ age + C(smoking)",
    "LOGISTIC outcome ~ diabetes WEIGHT ipw ROBUST",
)


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="three synthetic hospitals answer pooled queries", description=__doc__)
    p.add_argument("--rows", type=int, default=6000, help="patients in all (default 6000)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(run=run)


def _reference(query: str, pooled: Any) -> str:
    import numpy as np
    import pandas as pd

    if query.startswith("SELECT COUNT(*), AVG"):
        ref = pooled.groupby("sex").agg(count=("age", "size"), avg_bmi=("bmi", "mean"), sd_sbp=("sbp", "std"))
        return ref.to_string()
    if query.startswith("SELECT COUNT(*), MEDIAN"):
        sub = pooled[pooled.diabetes == 1]
        return f"count {len(sub)}  median(age) {sub.age.median()}  quantile(chol, 0.9) {sub.chol.quantile(0.9):.6f}"
    if "STRATA" in query:
        return _stratified_reference(pooled)
    if query.startswith("CROSSTAB"):
        return pd.crosstab(pooled.smoking, pooled.outcome, margins=True, margins_name="total").to_string()
    if query.startswith("SURVIVAL"):
        return _survival_reference(pooled)
    if query.startswith("POISSON"):
        return _poisson_reference(pooled)
    if query.startswith("COX"):
        return _cox_reference(pooled)
    if "WEIGHT" in query:
        return _weighted_reference(pooled)
    from queries.plaintext import logit_newton

    data = pooled.dropna(subset=["outcome", "age", "bmi", "smoking"])
    x = np.column_stack([np.ones(len(data)), data.age, data.bmi, data.smoking == "former", data.smoking == "never"])
    beta = logit_newton(x.astype(float), data.outcome.to_numpy(dtype=float))
    names = ["Intercept", "age", "bmi", "C(smoking)[T.former]", "C(smoking)[T.never]"]
    return f"{pd.Series(beta, index=names).to_string()}\n(n = {len(data)})"


def _stratified_reference(pooled: Any) -> str:
    """Mantel-Haenszel OR and RR of outcome = 1 for diabetes = 1 against 0, over the smoking strata, in float64."""
    import numpy as np

    t = np.array([[[((g.diabetes == e) & (g.outcome == o)).sum() for o in (1, 0)] for e in (1, 0)]
                  for _, g in pooled.groupby("smoking")], dtype=float)
    a, b, c, d = t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1]
    n = t.sum(axis=(1, 2))
    odds = np.sum(a * d / n) / np.sum(b * c / n)
    risk = np.sum(a * (c + d) / n) / np.sum(c * (a + b) / n)
    return f"OR (Mantel-Haenszel) {odds:.6f}  RR (Mantel-Haenszel) {risk:.6f}"


def _poisson_reference(pooled: Any) -> str:
    """Deaths per month of follow-up by age and smoking: the Poisson fit with offset log(months), in float64."""
    import numpy as np
    import pandas as pd

    from queries.plaintext import poisson_newton

    data = pooled.dropna(subset=["died", "age", "smoking", "months"])
    x = np.column_stack([np.ones(len(data)), data.smoking == "former", data.smoking == "never", data.age])
    beta = poisson_newton(x.astype(float), data.died.to_numpy(dtype=float), np.log(data.months.to_numpy(dtype=float)))
    names = ["Intercept", "C(smoking)[T.former]", "C(smoking)[T.never]", "age"]
    return f"{pd.Series(beta, index=names).to_string()}\n(n = {len(data)})"


def _cox_reference(pooled: Any) -> str:
    """Hazard ratios of death by age and smoking: Cox's model with Breslow ties on the whole months, in float64."""
    import numpy as np
    import pandas as pd

    from queries.plaintext import cox_breslow_newton

    data = pooled.dropna(subset=["months", "died", "age", "smoking"])
    x = np.column_stack([data.smoking == "former", data.smoking == "never", data.age]).astype(float)
    beta, se = cox_breslow_newton(data.months.to_numpy(dtype=float), data.died.to_numpy(dtype=float), x)
    names = ["C(smoking)[T.former]", "C(smoking)[T.never]", "age"]
    table = pd.DataFrame({"coef": beta, "std_err": se, "hazard_ratio": np.exp(beta)}, index=names)
    return f"{table.to_string()}\n(n = {len(data)}, events = {int(data.died.sum())})"


def _weighted_reference(pooled: Any) -> str:
    """Diabetes's marginal log odds ratio under its inverse-probability weights, with HC0 standard errors."""
    import numpy as np
    import pandas as pd

    from queries.plaintext import weighted_logit_hc0

    data = pooled.dropna(subset=["outcome", "diabetes", "ipw"])
    data = data[data.ipw > 0]
    x = np.column_stack([np.ones(len(data)), data.diabetes]).astype(float)
    beta, se = weighted_logit_hc0(x, data.outcome.to_numpy(dtype=float), data.ipw.to_numpy(dtype=float))
    table = pd.DataFrame({"coef": beta, "std_err": se}, index=["Intercept", "diabetes"])
    return f"{table.to_string()}\n(n = {len(data)}, sum of weights = {data.ipw.sum():.1f})"


def _survival_reference(pooled: Any) -> str:
    """Kaplan-Meier S per smoking group at every 6-month grid point with events, in float64."""
    import numpy as np

    lines = []
    grid = np.ceil(pooled.months.to_numpy(dtype=float) / 6) * 6
    for level in sorted(pooled.smoking.unique()):
        mine = pooled.smoking.to_numpy() == level
        times, died = grid[mine], pooled.died.to_numpy(dtype=float)[mine]
        steps = sorted(set(times[died == 1]))
        s, curve = 1.0, []
        for t in steps:
            s *= 1 - died[times == t].sum() / (times >= t).sum()
            curve.append(f"{t:g}: {s:.6f}")
        lines.append(f"{level}: " + ", ".join(curve))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from parties.analyst import ask
    from parties.local import LocalConsortium
    from queries.synth import follow_up, propensity_weights, write_synthetic

    with tempfile.TemporaryDirectory(prefix="pooled-demo-") as tmp:
        files = write_synthetic(args.rows, 3, Path(tmp), args.seed)
        for i, f in enumerate(files):  # a survival outcome (SURVIVAL, POISSON, COX) and weights (WEIGHT)
            propensity_weights(follow_up(pd.read_csv(f), args.seed + i)).to_csv(f, index=False)
        pooled = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
        names = ["hospital-a", "hospital-b", "hospital-c"]
        sizes = ", ".join(f"{n}: {len(pd.read_csv(f))} rows" for n, f in zip(names, files))
        print(f"synthetic cohort of {args.rows} patients over three sites ({sizes})")
        print("starting a dealer and three party nodes on 127.0.0.1 (mutual TLS)...")
        with LocalConsortium(names, data=dict(zip(names, files))) as consortium, consortium.client() as client:
            for query in QUERIES:
                start = time.perf_counter()
                result, _, job = ask(client, names, query)
                took = time.perf_counter() - start
                rounds = max(o.stats.rounds for o in job.outcomes.values())
                sent = sum(o.stats.bytes_sent for o in job.outcomes.values())
                print(f"\n>>> {query}")
                print(result.to_table())
                print(f"[pooled in MPC: {took:.2f} s, {rounds} rounds, {sent / 1e6:.2f} MB between the sites]")
                print("--- plaintext on the pooled rows (pandas, float64 Newton), for comparison:")
                print(_reference(query, pooled))
        print("\nall processes stopped")
    return 0
