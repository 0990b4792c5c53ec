"""Benchmark of the nonlinear protocols over real processes, gRPC and mutual TLS on loopback.

For 2 and 3 parties: 100,000-element comparison, select, reciprocal, sqrt, exp and sigmoid
in the fast ring (Z_2^64, f = 20), each run a few times after a warm-up (job `bench_op`,
`parties.bench_jobs`); time is the median of the slowest party's compute phase. Outputs
are checked against numpy.

Run: `python -m benchmarks.nonlinear [--parties 2,3] [--size 100000] [--repeat 3]`.
Writes benchmarks/results/nonlinear.json and the "## Nonlinear protocols (issue 3)"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import core
from parties.bench_jobs import OPS, op_inputs
from parties.local import LocalConsortium

SECTION = "## Nonlinear protocols (issue 3)"
CRYPTEN_3P = {"comparison": 0.6, "sigmoid": 1.5, "reciprocal": 2.1}
"""CrypTen 0.4.1, 3 parties + TTP, 100,000 elements, seconds (reference figures from the issue)."""


def measure(parties: list[int], size: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for n in parties:
        with LocalConsortium(core.NAMES[:n]) as consortium, consortium.client() as client:
            for op in OPS:
                params = {"op": op, "size": size, "seed": 5}
                client.run("bench_op", params)
                runs = [client.run("bench_op", params) for _ in range(repeat)]
                got = runs[-1].outputs()[0]
                want = OPS[op][1](op_inputs(op, size, 5))
                stats = next(iter(runs[-1].outcomes.values())).stats
                row = {
                    "parties": n,
                    "op": op,
                    "size": size,
                    "compute_seconds_median": statistics.median(r.compute_seconds for r in runs),
                    "compute_seconds_spread": max(r.compute_seconds for r in runs)
                    - min(r.compute_seconds for r in runs),
                    "bytes_sent_per_party": stats.bytes_sent,
                    "rounds": stats.rounds,
                    "dealer_bytes": sum(o.stats.dealer_bytes for o in runs[-1].outcomes.values()),
                    "max_abs_error": float(np.abs(got - want).max()),
                    "runs": repeat,
                }
                print(
                    f"{n} parties  {op:10s} {row['compute_seconds_median']:.3f} s  {stats.rounds} rounds  "
                    f"{stats.bytes_sent / 1e6:.1f} MB/party  err {row['max_abs_error']:.1e}",
                    flush=True,
                )
                rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any], command: str) -> str:
    lines = [
        SECTION,
        "",
        "Real processes (dealer + one process per party) on 127.0.0.1, gRPC with mutual TLS; fast ring "
        "(Z_2^64, 20 fractional bits). Time: median over runs of the slowest party's compute phase.",
        "",
        f"Machine: {machine.get('nproc')} cores, {machine.get('cpu')}. Command: `{command}`",
        "",
        "| parties | protocol | elements | seconds (median) | spread | rounds | MB sent per party | dealer MB | "
        "max error | CrypTen-TTP 3p (s) | ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ref = CRYPTEN_3P.get(r["op"]) if r["parties"] == 3 else None
        ratio = f"{r['compute_seconds_median'] / ref:.2f}" if ref else ""
        lines.append(
            f"| {r['parties']} | {r['op']} | {r['size']:,} | {r['compute_seconds_median']:.3f} | "
            f"{r['compute_seconds_spread']:.3f} | {r['rounds']} | {r['bytes_sent_per_party'] / 1e6:.1f} | "
            f"{r['dealer_bytes'] / 1e6:.1f} | {r['max_abs_error']:.1e} | {ref if ref else ''} | {ratio} |"
        )
    lines += [
        "",
        "The CrypTen column repeats the reference figures given in issue 3 (measured there on this kind "
        "of machine, 3 parties + trusted third party); a ratio below 0.5 meets the target of half.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", default="2,3")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=core.ROOT / "benchmarks" / "results" / "nonlinear.json")
    parser.add_argument("--doc", type=Path, default=core.ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.nonlinear " + shlex.join(sys.argv[1:] if argv is None else argv)
    machine = core._machine()
    rows = measure([int(p) for p in args.parties.split(",")], args.size, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": machine, "command": command, "date": time.strftime("%Y-%m-%d"), "results": rows}, indent=2
        )
    )
    core.write_section(args.doc, markdown(rows, machine, command.strip()), SECTION)
    print(f"wrote {args.out} and {args.doc}")


if __name__ == "__main__":
    main()
