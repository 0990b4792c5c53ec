"""MPyC 0.11 measured on this machine, next to Pooled (one of the two peer frameworks).

`run(op, parties, size, repeats)` starts `parties` MPyC processes
(`benchmarks.peers.mpyc_party`, `-M<parties> -I <i>`, one `-P 127.0.0.1:<free port>` per
party, `--no-log`), each with one compute thread, waits for them under a deadline and
returns one dict shaped like `crypten_bench.run`'s: the per-repetition time of the slowest
party, its median and spread (max - min), MPyC's bytes sent per party, a count of the
messages each party sent, and the error against numpy.

Sizes: MPyC computes on Python integers (gmpy2, numpy object arrays of field elements) and
is CPU-bound here: on this 2-core machine a 10,000-element product takes seconds and a
2,000-element sigmoid tens of seconds. Pooled's sizes (POOLED_SIZES: 1e6 multiply and sum,
1e5 for the rest) are therefore run at DEFAULT_SIZES, and the row says so (`scaled_from`)
and adds `extrapolated_seconds` = median x Pooled's size / size, a linear extrapolation (fair for
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

import json
import sys
from typing import Any

from benchmarks.peers._procs import (
    LOOPBACK,
    check_run,
    cli_parser,
    free_ports,
    peer_job,
    print_row,
    run_workers,
    single_thread_env,
)

VERSION = "0.11"
OPS = ("mul", "lt", "sigmoid", "reciprocal", "sum")
POOLED_SIZES = {"mul": 1_000_000, "lt": 100_000, "sigmoid": 100_000, "reciprocal": 100_000, "sum": 1_000_000}
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
    check_run("MPyC", OPS, op, parties, missing=" (no logistic regression in MPyC here)")
    size = int(size if size is not None else DEFAULT_SIZES[op])
    job = peer_job(op, size, repeats, seed, reciprocal_range, bit_length=BIT_LENGTH, frac_length=FRAC_LENGTH)
    ports = free_ports(parties)
    env = single_thread_env({"POOLED_PEER_JOB": json.dumps(job)})
    addresses = [a for p in ports for a in ("-P", f"{LOOPBACK}:{p}")]
    argv = [sys.executable, "-m", "benchmarks.peers.mpyc_party", "-M", str(parties)]
    commands = {f"party{i}": ([*argv, "-I", str(i), *addresses, "--no-log"], env) for i in range(parties)}
    timeout = timeout if timeout is not None else 120.0 + size * 1e-3 * (repeats + 2)
    row, results = run_workers("an MPyC party", commands, list(commands), timeout, repeats, peer="mpyc",
                               version=VERSION, op=op, parties=parties, processes=parties)
    first = results[0]
    row.update(
        threshold=first["threshold"],
        secfxp=f"SecFxp(l={BIT_LENGTH}, f={FRAC_LENGTH}), field of {first['field_bits']} bits",
        size=size,
        messages_per_party=[r["comm_op"]["messages"] for r in results],
        bytes_per_party=[r["comm_op"]["bytes"] for r in results],
        bytes_total=sum(r["comm_op"]["bytes"] for r in results),
        input_messages_per_party=[r["comm_input"]["messages"] for r in results],
        input_bytes_per_party=[r["comm_input"]["bytes"] for r in results],
    )
    if size != POOLED_SIZES[op]:
        row["scaled_from"] = POOLED_SIZES[op]
        row["extrapolated_seconds"] = row["seconds_median"] * POOLED_SIZES[op] / size
    if op == "reciprocal":
        row["input_range"] = job["reciprocal_range"]
    return row


def main(argv: list[str] | None = None) -> None:
    args = cli_parser(__doc__.splitlines()[0], OPS, repeats=3).parse_args(argv)
    for op in args.ops.split(","):
        print_row(run(op, args.parties, None, args.repeats), args.out)


if __name__ == "__main__":
    main()
