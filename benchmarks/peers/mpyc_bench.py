"""MPyC 0.11 measured on this machine: the second peer of issue 7's comparison.

`run(op, parties, size, repeats)` starts `parties` MPyC processes
(`benchmarks.peers.mpyc_party`, `-M<parties> -I <i>`, one `-P 127.0.0.1:<free port>` per
party, `--no-log`), each with one compute thread, waits for them under a deadline and
returns one dict shaped like `crypten_bench.run`'s: the per-repetition time of the slowest
party, its median and spread (max - min), MPyC's bytes sent per party, a count of the
messages each party sent, and the error against numpy.

Sizes: MPyC computes on Python integers (gmpy2, numpy object arrays of field elements) and
is CPU-bound here: on this 2-core machine a 10,000-element product takes seconds and a
2,000-element sigmoid tens of seconds. The issue's sizes (1e6 multiply and sum, 1e5 for
the rest) are therefore run at DEFAULT_SIZES, and the row says so (`scaled_from`) and adds
`extrapolated_seconds` = median x issue size / size, a linear extrapolation (fair for
these element-wise, compute-bound operations; it is not a measurement).

What MPyC cannot do here: it has no exp, sigmoid or logistic-regression training (the
sigmoid is CrypTen's recipe written with MPyC's comparison, products and reciprocal, see
`mpyc_party.sigmoid`); it has no notion of rounds (its runtime is asynchronous, messages are
labelled by program counter), so messages are counted instead; with 2 parties its Shamir
threshold is 0 (no privacy), so only 3 or more parties compare with CrypTen and Pooled; and
its security model is an honest majority (1 of 3 may be corrupt) with no dealer, where
CrypTen-TTP and Pooled tolerate n - 1 semi-honest parties next to a non-colluding helper.

Run: `python -m benchmarks.peers.mpyc_bench [--ops mul,lt,...] [--parties 3] [--repeats 3]
[--out FILE]`: one JSON line per operation on stdout (and appended to FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.peers._procs import LOOPBACK, PeerRunError, free_ports, run_all, single_thread_env

VERSION = "0.11"
OPS = ("mul", "lt", "sigmoid", "reciprocal", "sum")
ISSUE_SIZES = {"mul": 1_000_000, "lt": 100_000, "sigmoid": 100_000, "reciprocal": 100_000, "sum": 1_000_000}
DEFAULT_SIZES = {"mul": 10_000, "lt": 10_000, "sigmoid": 2_000, "reciprocal": 2_000, "sum": 100_000}
RECIPROCAL_RANGE = (1.0, 100.0)
"""Same inputs as CrypTen's default reciprocal benchmark (see `crypten_bench.RECIPROCAL_RANGE`)."""
BIT_LENGTH, FRAC_LENGTH = 32, 16
"""MPyC's default secure fixed-point type SecFxp(): 32 bits, 16 of them fractional."""


def run(
    op: str,
    parties: int = 3,
    size: int | None = None,
    repeats: int = 3,
    *,
    seed: int = 7,
    reciprocal_range: tuple[float, float] = RECIPROCAL_RANGE,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Measure one operation in MPyC with `parties` processes on 127.0.0.1."""
    if op not in OPS:
        raise ValueError(f"MPyC op must be one of {OPS}, got {op!r} (no logistic regression in MPyC here)")
    if parties < 2:
        raise ValueError("need at least 2 parties")
    size = int(size if size is not None else DEFAULT_SIZES[op])
    job = {
        "op": op,
        "size": size,
        "repeats": int(repeats),
        "seed": seed,
        "bit_length": BIT_LENGTH,
        "frac_length": FRAC_LENGTH,
        "reciprocal_range": [float(v) for v in reciprocal_range],
    }
    ports = free_ports(parties)
    env = single_thread_env({"POOLED_PEER_JOB": json.dumps(job)})
    addresses = [a for p in ports for a in ("-P", f"{LOOPBACK}:{p}")]
    argv = [sys.executable, "-m", "benchmarks.peers.mpyc_party", "-M", str(parties)]
    commands = {f"party{i}": ([*argv, "-I", str(i), *addresses, "--no-log"], env) for i in range(parties)}
    load_before = os.getloadavg()[0]
    done = run_all(commands, timeout if timeout is not None else 120.0 + size * 1e-3 * (repeats + 2))
    results = [done[f"party{i}"].result() for i in range(parties)]
    if any(r is None for r in results):
        raise PeerRunError("an MPyC party printed no result:\n" + "\n".join(f.tail() for f in done.values()))
    row = summarize(op, parties, size, repeats, results, job)  # type: ignore[arg-type]
    row["load_average_1min"] = [load_before, os.getloadavg()[0]]
    return row


def summarize(
    op: str, parties: int, size: int, repeats: int, results: list[dict[str, Any]], job: dict[str, Any]
) -> dict[str, Any]:
    slowest = [max(r["seconds"][i] for r in results) for i in range(repeats)]
    slowest_io = [max(r["seconds_with_input"][i] for r in results) for i in range(repeats)]
    first = results[0]
    row: dict[str, Any] = {
        "peer": "mpyc",
        "version": VERSION,
        "op": op,
        "parties": parties,
        "processes": parties,
        "threshold": first["threshold"],
        "secfxp": f"SecFxp(l={BIT_LENGTH}, f={FRAC_LENGTH}), field of {first['field_bits']} bits",
        "size": size,
        "repeats": repeats,
        "threads_per_party": 1,
        "seconds_median": statistics.median(slowest),
        "seconds_spread": max(slowest) - min(slowest),
        "seconds_runs": slowest,
        "seconds_with_input_median": statistics.median(slowest_io),
        "messages_per_party": [r["comm_op"]["messages"] for r in results],
        "bytes_per_party": [r["comm_op"]["bytes"] for r in results],
        "bytes_total": sum(r["comm_op"]["bytes"] for r in results),
        "input_messages_per_party": [r["comm_input"]["messages"] for r in results],
        "input_bytes_per_party": [r["comm_input"]["bytes"] for r in results],
    }
    if size != ISSUE_SIZES[op]:
        row["scaled_from"] = ISSUE_SIZES[op]
        row["extrapolated_seconds"] = row["seconds_median"] * ISSUE_SIZES[op] / size
    for key in (
        "max_abs_error",
        "max_rel_error",
        "mismatches",
        "wrong_outputs",
        "max_abs_error_excluding_wrong",
        "max_rel_error_excluding_wrong",
    ):
        if key in first:
            row[key] = first[key]
    if op == "reciprocal":
        row["input_range"] = job["reciprocal_range"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    for op in args.ops.split(","):
        line = json.dumps(run(op, args.parties, None, args.repeats))
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
