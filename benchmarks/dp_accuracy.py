"""Measured error of queries under differential privacy against epsilon, beside the theoretical curve.

Three in-process parties (the nodes' code path, `queries.engine.run_in_process`) answer, for
each epsilon, four queries whose groups (or cells) give many independent noise draws in one
run: a COUNT over 200 groups, an AVG and a MEDIAN over 200 groups of 60 values in [50, 250]
with bounds [0, 300], and a 20 x 10 CROSSTAB (200 cells). The error of each released number
is its distance from the exact answer; the table gives the measured root mean square error
and the theoretical noise standard deviation (`queries.dp_finish.laplace_sd`; for AVG the
delta method: sqrt(sd_c^2 + (mean - m)^2 sd_n^2) / n; for MEDIAN, read from a 128-bin noisy
histogram, the noise sd the result declares, simulated, which leaves out the binning: up to
a bin width of 300/128 = 2.3). Writes the "## Differential privacy: error against epsilon"
section of docs/benchmarks.md and, with matplotlib, docs/img/dp_error.png.

Run: `python -m benchmarks.dp_accuracy`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.framework import ROOT, write_section
from queries.dp_finish import laplace_sd
from queries.engine import run_in_process

SECTION = "## Differential privacy: error against epsilon"
EPSILONS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
GROUPS, PER_GROUP, HIGH = 200, 60, 300.0


def _frames(seed: int = 0) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        g = np.repeat([f"g{i:03d}" for i in range(GROUPS)], PER_GROUP // 3)
        out.append(pd.DataFrame({"g": g, "x": rng.uniform(50.0, 250.0, g.size),
                                 "r": rng.choice([f"r{i:02d}" for i in range(20)], g.size),
                                 "c": rng.choice([f"c{i}" for i in range(10)], g.size)}))
    return out


def measure(epsilons: tuple[float, ...] = EPSILONS) -> list[dict[str, Any]]:
    """One row per (query, epsilon): measured RMSE and theoretical sd of the released numbers."""
    frames = _frames()
    both = pd.concat(frames, ignore_index=True)
    bounds = [{"x": (0.0, HIGH)}] * 3
    counts = both.groupby("g").size()
    means = both.groupby("g")["x"].mean()
    medians = both.groupby("g")["x"].median()
    cells = pd.crosstab(both["r"], both["c"])
    rows = []
    for eps in epsilons:
        res, _ = run_in_process(frames, "SELECT g, COUNT(*) GROUP BY g", epsilon=eps, bounds=bounds)
        got = pd.Series({r[0]: r[1] for r in res.rows if r[0] is not None})
        rows.append({"query": "COUNT", "epsilon": eps, "rmse": float(np.sqrt(((got - counts) ** 2).mean())),
                     "theory": laplace_sd(1 / eps)})
        res, _ = run_in_process(frames, "SELECT g, AVG(x) GROUP BY g", epsilon=eps, bounds=bounds)
        got = pd.Series({r[0]: r[1] for r in res.rows if r[0] is not None})
        sd_c, sd_n = laplace_sd(HIGH / 2 / (eps / 2)), laplace_sd(1 / (eps / 2))
        theory = float(np.sqrt(((sd_c**2 + (means - HIGH / 2) ** 2 * sd_n**2) / counts**2).mean()))
        rows.append({"query": "AVG", "epsilon": eps, "rmse": float(np.sqrt(((got - means) ** 2).mean())),
                     "theory": theory})
        res, _ = run_in_process(frames, "SELECT g, MEDIAN(x) GROUP BY g", epsilon=eps, bounds=bounds)
        kept = [i for i, r in enumerate(res.rows) if r[0] is not None and r[1] is not None]  # NULL: no rows left
        got = pd.Series({res.rows[i][0]: res.rows[i][1] for i in kept})
        declared = [res.noise[i][1]["noise_sd"] for i in kept]  # type: ignore[index]  # MEDIAN is noised
        rmse = float(np.sqrt(((got - medians[got.index]) ** 2).mean()))
        rows.append({"query": "MEDIAN", "epsilon": eps, "rmse": rmse,
                     "theory": float(np.sqrt(np.mean(np.square(declared)))), "null": GROUPS - len(kept)})
        res, _ = run_in_process(frames, "CROSSTAB r BY c", epsilon=eps, bounds=bounds)
        got_cells = np.array([row[1:-1] for row in res.rows[:-1]], dtype=float)
        rows.append({"query": "CROSSTAB cell", "epsilon": eps,
                     "rmse": float(np.sqrt(((got_cells - cells.to_numpy()) ** 2).mean())),
                     "theory": laplace_sd(1 / eps)})
    return rows


def markdown(rows: list[dict[str, float]], plotted: bool) -> str:
    lines = [SECTION, "", "Written by `python -m benchmarks.dp_accuracy` (3 in-process parties; each row: 200 released",
             "numbers of one query). The measured root mean square error of the released numbers against the",
             "exact answers, beside the noise standard deviation the mechanism declares. AVG and MEDIAN: 60",
             "values per group in [50, 250], bounds [0, 300]; MEDIAN from a 128-bin noisy histogram (its",
             "theoretical column: the simulated sd the result declares, which leaves out the binning). A MEDIAN",
             "from 128 noisy bins needs many rows per group: the total it splits carries the noise of all 128",
             "bins (sd 15 at epsilon 1), so over 60 rows it is poor, and NULL when the noisy total is <= 0;",
             "over 9,000 rows it lands within a bin width (tests/queries/test_dp.py).", "",
             "| query | epsilon | measured RMSE | theoretical sd | ratio |", "|---|---|---|---|---|"]
    for r in rows:
        null = f" ({r['null']:g} of {GROUPS} NULL: noisy total <= 0)" if r.get("null") else ""
        lines.append(f"| {r['query']}{null} | {r['epsilon']:g} | {r['rmse']:.4g} | {r['theory']:.4g} | "
                     f"{r['rmse'] / r['theory']:.2f} |")
    if plotted:
        lines += ["", "![error against epsilon](img/dp_error.png)"]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, float]], path: Path) -> bool:
    """Measured points and the theoretical curve per query, log-log; False without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for query in dict.fromkeys(r["query"] for r in rows):
        mine = [r for r in rows if r["query"] == query]
        eps = [r["epsilon"] for r in mine]
        line = ax.plot(eps, [r["theory"] for r in mine], label=f"{query}: theory")[0]
        ax.plot(eps, [r["rmse"] for r in mine], "o", color=line.get_color(), label=f"{query}: measured")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epsilon per query")
    ax.set_ylabel("error of a released number (RMSE)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = p.parse_args(argv)
    rows = measure()
    plotted = plot(rows, args.doc.parent / "img" / "dp_error.png")
    write_section(args.doc, markdown(rows, plotted), heading=SECTION)
    for r in rows:
        print(f"{r['query']:14s} eps={r['epsilon']:<5g} rmse={r['rmse']:.4g} theory={r['theory']:.4g}")


if __name__ == "__main__":
    main()
