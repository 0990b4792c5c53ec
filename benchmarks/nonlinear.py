"""Benchmark of the nonlinear protocols, in-process and over real processes (gRPC, mutual TLS, loopback).

For 2 and 3 parties: 100,000-element comparison, select, reciprocal, sqrt, exp and sigmoid
in the fast ring (Z_2^64, f = 20), each run a few times after a warm-up; time is the
median of the slowest party's time for the protocol. In-process, all parties are threads
of one Python process (`mpc.inprocess`, the dealer called directly); over gRPC each party
and the dealer is its own process (job `bench_op`, `parties.bench_jobs`). Outputs are
checked against numpy. CrypTen's figures come from the issue and, when present, from
benchmarks/results/peers.json (`python -m benchmarks.peers.report`, same machine).

Run: `python -m benchmarks.nonlinear [--parties 2,3] [--size 100000] [--repeat 3]
[--transport both|inprocess|grpc]`. Writes benchmarks/results/nonlinear.json and the
"## Nonlinear protocols (issue 3)" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import core
from mpc.context import PartyContext
from mpc.inprocess import run_parties
from mpc.share import Share
from parties.bench_jobs import OPS, op_inputs
from parties.local import LocalConsortium
from protocols.material import KINDS
from protocols.opening import reveal

SECTION = "## Nonlinear protocols (issue 3)"
CRYPTEN_3P = {"comparison": 0.6, "sigmoid": 1.5, "reciprocal": 2.1}
"""CrypTen 0.4.1, 3 parties + TTP, 100,000 elements, seconds (reference figures from the issue)."""


def _timed(fn: Any, x: np.ndarray) -> Any:
    """A party program: share x (party 0 holds it), time fn on it, return (seconds, counters, opened result)."""

    def program(ctx: PartyContext) -> tuple[float, Any, np.ndarray]:
        fp = ctx.fixed
        share = Share(fp.encode(x) if ctx.is_leader else fp.ring.zeros((x.size,)), fp.ring, fp.frac)
        before = ctx.stats.snapshot()
        start = time.perf_counter()
        out = fn(ctx, share)
        seconds = time.perf_counter() - start
        return seconds, ctx.stats.since(before), reveal(ctx, out)

    return program


def measure_inprocess(parties: list[int], size: int, repeat: int) -> list[dict[str, Any]]:
    """Each protocol on n threads of this process; a warm-up run, then `repeat` timed runs."""
    rows = []
    for n in parties:
        for op in OPS:
            fn, oracle, _ = OPS[op]
            x = op_inputs(op, size, 5)

            program = _timed(fn, x)
            run_parties(n, program, kinds=KINDS)  # warm-up
            runs = [run_parties(n, program, kinds=KINDS) for _ in range(repeat)]
            times = [max(r[0] for r in run) for run in runs]
            stats = runs[-1][0][1]
            row = {
                "transport": "inprocess",
                "parties": n,
                "op": op,
                "size": size,
                "compute_seconds_median": statistics.median(times),
                "compute_seconds_spread": max(times) - min(times),
                "bytes_sent_per_party": stats.bytes_sent,
                "rounds": stats.rounds,
                "dealer_bytes": sum(r[1].dealer_bytes for r in runs[-1]),
                "max_abs_error": float(np.abs(runs[-1][0][2] - oracle(x)).max()),
                "runs": repeat,
            }
            print(
                f"in-process {n} parties  {op:10s} {row['compute_seconds_median']:.3f} s  {stats.rounds} rounds  "
                f"{stats.bytes_sent / 1e6:.1f} MB/party  err {row['max_abs_error']:.1e}",
                flush=True,
            )
            rows.append(row)
    return rows


def measure(parties: list[int], size: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for n in parties:
        with LocalConsortium(core.NAMES[:n], bench_jobs=True) as consortium, consortium.client() as client:
            for op in OPS:
                params = {"op": op, "size": size, "seed": 5}
                client.run("bench_op", params)
                runs = [client.run("bench_op", params) for _ in range(repeat)]
                got = runs[-1].outputs()[0]
                want = OPS[op][1](op_inputs(op, size, 5))
                stats = next(iter(runs[-1].outcomes.values())).stats
                row = {
                    "transport": "grpc",
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


PEER_OPS = {"comparison": "lt", "sigmoid": "sigmoid", "reciprocal": "reciprocal"}


def crypten_here(path: Path) -> dict[tuple[int, str], float]:
    """(parties, op) -> CrypTen's median seconds on this machine, from the peers benchmark (if run)."""
    if not path.exists():
        return {}
    out = {}
    for r in json.loads(path.read_text()).get("results", []):
        for op, peer_op in PEER_OPS.items():
            if r.get("peer") == "crypten" and r.get("op") == peer_op and r.get("size") == 100_000:
                out[(int(r["parties"]), op)] = float(r["seconds_median"])
    return out


def _table(rows: list[dict[str, Any]], here: dict[tuple[int, str], float]) -> list[str]:
    lines = [
        "| parties | protocol | elements | seconds (median) | spread | rounds | MB sent per party | dealer MB | "
        "max error | CrypTen (issue) | ratio | CrypTen (this machine) | ratio |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r["compute_seconds_median"]
        ref = CRYPTEN_3P.get(r["op"]) if r["parties"] == 3 else None
        local = here.get((r["parties"], r["op"]))
        lines.append(
            f"| {r['parties']} | {r['op']} | {r['size']:,} | {t:.3f} | {r['compute_seconds_spread']:.3f} | "
            f"{r['rounds']} | {r['bytes_sent_per_party'] / 1e6:.1f} | {r['dealer_bytes'] / 1e6:.1f} | "
            f"{r['max_abs_error']:.1e} | {ref if ref else ''} | {f'{t / ref:.2f}' if ref else ''} | "
            f"{f'{local:.3f}' if local else ''} | {f'{t / local:.2f}' if local else ''} |"
        )
    return lines


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any], command: str, here: dict) -> str:
    lines = [
        SECTION,
        "",
        "Fast ring (Z_2^64, 20 fractional bits), 100,000 elements. Time: median over runs of the slowest "
        "party's time for the protocol on inputs already shared.",
        "",
        f"Machine: {machine.get('nproc')} cores, {machine.get('cpu')}; 1-minute load average when measured: "
        f"{machine.get('load', '?')}. Command: `{command}`",
    ]
    for transport, title in (
        ("grpc", "Real processes (dealer + one process per party) on 127.0.0.1, gRPC with mutual TLS"),
        (
            "inprocess",
            "In-process: the parties are threads of one Python process (they share its 2 cores "
            "and the GIL; the dealer runs inside the last party's thread)",
        ),
    ):
        part = [r for r in rows if r.get("transport", "grpc") == transport]
        if part:
            lines += ["", f"**{title}.**", ""] + _table(part, here)
    lines += [
        "",
        "CrypTen (issue): the reference figures given in issue 3 (3 parties + trusted third party); a ratio "
        "below 0.5 meets the target of half. CrypTen (this machine): the peers benchmark's median for the "
        "same number of parties plus its TTP (section below; that run had a 1-minute load of 3.8-8.4, this "
        "one less, so these ratios favour Pooled). The max error is absolute; for sqrt and exp it is at the "
        "largest outputs (100 and 148), ~3e-6 relative. Rounds are rounds of "
        "communication (one batched message per peer each); CrypTen's calls in the peers section are not "
        "rounds.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", default="2,3")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transport", choices=["both", "inprocess", "grpc"], default="both")
    parser.add_argument("--out", type=Path, default=core.ROOT / "benchmarks" / "results" / "nonlinear.json")
    parser.add_argument("--doc", type=Path, default=core.ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.nonlinear " + shlex.join(sys.argv[1:] if argv is None else argv)
    machine = core._machine()
    machine["load"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    parties = [int(p) for p in args.parties.split(",")]
    rows: list[dict[str, Any]] = []
    if args.transport in ("both", "grpc"):
        rows += measure(parties, args.size, args.repeat)
    if args.transport in ("both", "inprocess"):
        rows += measure_inprocess(parties, args.size, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": machine, "command": command, "date": time.strftime("%Y-%m-%d"), "results": rows}, indent=2
        )
    )
    here = crypten_here(core.ROOT / "benchmarks" / "results" / "peers.json")
    core.write_section(args.doc, markdown(rows, machine, command.strip(), here), SECTION)
    print(f"wrote {args.out} and {args.doc}")


if __name__ == "__main__":
    main()
