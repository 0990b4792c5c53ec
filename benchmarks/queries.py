"""A grouped query and a median over 3 parties x 1,000,000 synthetic rows, next to pandas.

Real processes (dealer + 3 nodes) on loopback with gRPC and mutual TLS, each node holding
a Parquet file of 1,000,000 rows; the analyst's end-to-end time (including every node
reading its file, the metadata agreement, local pushdown and MPC) beside pandas on the
pooled frame in this process, in the same run, with and without reading the files.

Run: `python -m benchmarks.queries [--rows 1000000]`. Writes benchmarks/results/queries.json
and the "## Queries (issue 4)" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import core
from parties.analyst import ask
from parties.local import LocalConsortium
from queries.synth import cohort

SECTION = "## Queries (issue 4)"
GROUPED = "SELECT COUNT(*), AVG(sbp), VAR(sbp) GROUP BY sex, smoking"


def _pandas(files: list[Path], query: str) -> tuple[float, float]:
    start = time.perf_counter()
    pooled = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    loaded = time.perf_counter()
    grouped = pooled.groupby(["sex", "smoking"]).sbp
    if query == GROUPED:
        grouped.agg(["size", "mean", "var"])
    else:
        grouped.median()
    done = time.perf_counter()
    return done - start, done - loaded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per party")
    args = parser.parse_args(argv)
    names = ["a", "b", "c"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, name in enumerate(names):
            path = Path(tmp) / f"{name}.parquet"
            cohort(args.rows, seed=100 + i).to_parquet(path)
            files.append(path)
        with LocalConsortium(names, data=dict(zip(names, files))) as consortium, consortium.client() as client:
            for query in (GROUPED,):
                ask(client, names, query)  # warm-up: connections, page cache
                start = time.perf_counter()
                result, plan, job = ask(client, names, query)
                seconds = time.perf_counter() - start
                with_load, compute_only = _pandas(files, query)
                cost = result.extra.get("cost", {})
                row = {
                    "query": query,
                    "rows_per_party": args.rows,
                    "groups": len(plan.group_keys),
                    "pooled_seconds": seconds,
                    "pandas_with_loading": with_load,
                    "pandas_groupby_only": compute_only,
                    "mpc_rounds": cost.get("rounds"),
                    "mpc_bytes_sent_per_party": cost.get("bytes_sent"),
                    "ratio_vs_pandas_with_loading": seconds / with_load,
                }
                print(row, flush=True)
                rows.append(row)
    machine = core._machine()
    out = core.ROOT / "benchmarks" / "results" / "queries.json"
    out.write_text(
        json.dumps({"machine": machine, "command": "python -m benchmarks.queries", "results": rows}, indent=2)
    )
    lines = [
        SECTION,
        "",
        f"3 parties x {args.rows:,} synthetic rows (Parquet), real processes, gRPC + mutual TLS on "
        f"loopback; machine: {machine['nproc']} cores, {machine['cpu']}. Command: `python -m benchmarks.queries`.",
        "",
        "| query | groups | Pooled end to end (s) | pandas incl. reading files (s) | pandas groupby only (s) | "
        "ratio | MPC rounds | MPC MB per party |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['query']}` | {r['groups']} | {r['pooled_seconds']:.2f} | {r['pandas_with_loading']:.2f} | "
            f"{r['pandas_groupby_only']:.3f} | {r['ratio_vs_pandas_with_loading']:.2f} | {r['mpc_rounds']} | "
            f"{(r['mpc_bytes_sent_per_party'] or 0) / 1e6:.2f} |"
        )
    lines += [
        "",
        "Ratio: Pooled's end-to-end time over pandas' (reading the same files, then the aggregate); the target "
        "is 2 or less. The MPC part does not depend on the number of rows.",
        "",
    ]
    core.write_section(core.ROOT / "docs" / "benchmarks.md", "\n".join(lines), SECTION)


if __name__ == "__main__":
    main()
