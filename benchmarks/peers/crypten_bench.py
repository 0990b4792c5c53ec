"""CrypTen 0.4.1 measured on this machine, next to Pooled (one of the two peer frameworks).

`run(op, parties, size, repeats)` starts `parties` CrypTen ranks plus, by default, the
trusted third party (`mpc.provider: TTP`, an extra process: CrypTen's default "trusted
first party" lets rank 0 generate every triple, which is not Pooled's threat model), each
a separate process (`benchmarks.peers.crypten_party`) with one compute thread
(OMP_NUM_THREADS=1, torch.set_num_threads(1)), gloo on 127.0.0.1 with a rendezvous on a
free port. It returns one dict: the per-repetition time of the slowest rank, its median
and spread (max - min), CrypTen's own communication counters and the error against numpy.

Operations (`size` = elements unless stated; inputs uniform, drawn per owner from the seed):
  mul         x * y, x from rank 0 and y from rank 1, both in [-100, 100]          (abs error)
  lt          x < y on the same kind of inputs                                     (mismatches)
  sigmoid     x from rank 0 in [-40, 40]                                           (abs error)
  reciprocal  x from rank 0 in RECIPROCAL_RANGE (CrypTen's default NR, sign included) (rel error)
  sum         every rank's private vector in [-100, 100], elementwise total        (abs error)
  logreg      sklearn's breast_cancer, `size` = 10 (`mean ...` features) or 30 (all),
              standardized, rows in contiguous blocks per rank; 30 epochs of full-batch
              gradient descent, training accuracy reported. `api="tensor"` (default) writes
              it with CrypTen's tensor operations (encrypted X and w, matmul, sigmoid, a
              hand-written gradient step), as CrypTen's examples do; `api="nn"` trains
              `crypten.nn` Linear + Sigmoid + BCELoss with autograd; `run_logreg_apis` trains with
              several APIs in turn in one set of processes, one row each

About the counters: CrypTen counts, per rank, each communication call as a "round" and the
elements of every send and receive (8 bytes each; its docs say to sum the ranks and halve
for the total). Rank 0 also counts its requests to and replies from the TTP.

Run: `python -m benchmarks.peers.crypten_bench [--ops mul,lt,...] [--parties 3] [--repeats 5]
[--provider TTP] [--out FILE]`: one JSON line per operation on stdout (and appended to FILE).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.peers._procs import (
    LOOPBACK,
    check_run,
    cli_parser,
    copy_keys,
    free_ports,
    peer_job,
    print_row,
    single_thread_env,
    start_row,
    worker_results,
)
from benchmarks.peers.crypten_party import LOGREG_APIS, write_breast_cancer

VERSION = "0.4.1"
OPS = ("mul", "lt", "sigmoid", "reciprocal", "sum", "logreg")
DEFAULT_SIZES = {"mul": 1_000_000, "lt": 100_000, "sigmoid": 100_000, "reciprocal": 100_000, "sum": 1_000_000}
RECIPROCAL_RANGE = (1.0, 100.0)
"""Default inputs of `reciprocal`: the top of CrypTen's own benchmark domain (0.01, 100). With its
default configuration (16 fractional bits, 10 Newton-Raphson iterations from 3 exp(1/2 - x) + 0.003,
exp by 8 squarings) the relative error grows with x (single process: about 0.2% below 10, 14% near
100, 60% near 200; larger with 3 parties) and the result is garbage from about 255 on, where the
exp of the initial guess overflows.
Pooled's own benchmark uses [1, 1000]; pass `reciprocal_range` to measure other ranges."""
LOGREG_EPOCHS = 30
LOGREG_KEYS = ("train_accuracy", "plaintext_same_training_accuracy", "epochs", "lr", "rows", "api")
"""What rank 0 reports of a logistic-regression training, copied into the row (its errors: `ERROR_KEYS`)."""


def run(
    op: str,
    parties: int = 3,
    size: int | None = None,
    repeats: int = 5,
    *,
    provider: str = "TTP",
    seed: int = 7,
    epochs: int = LOGREG_EPOCHS,
    api: str = "tensor",
    reciprocal_range: tuple[float, float] = RECIPROCAL_RANGE,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Measure one operation in CrypTen with `parties` ranks (+ the TTP if `provider` is "TTP")."""
    return _run(op, parties, size, repeats, provider=provider, seed=seed, epochs=epochs, apis=(api,),
                reciprocal_range=reciprocal_range, timeout=timeout)[0]


def run_logreg_apis(
    parties: int = 3,
    features: int = 10,
    repeats: int = 3,
    apis: Sequence[str] = LOGREG_APIS,
    *,
    provider: str = "TTP",
    seed: int = 7,
    epochs: int = LOGREG_EPOCHS,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """`run("logreg", ..., api=a)`'s row for each `a` of `apis`, in order, from one set of CrypTen processes
    (one world trains with each API in turn: the processes start and import torch once, not once per API)."""
    return _run("logreg", parties, features, repeats, provider=provider, seed=seed, epochs=epochs, apis=tuple(apis),
                reciprocal_range=RECIPROCAL_RANGE, timeout=timeout)


def _run(op: str, parties: int, size: int | None, repeats: int, *, provider: str, seed: int, epochs: int,
         apis: tuple[str, ...], reciprocal_range: tuple[float, float], timeout: float | None) -> list[dict[str, Any]]:
    """`run`'s rows: one, or for logreg one per API of `apis`."""
    check_run("CrypTen", OPS, op, parties)
    if not apis or any(a not in LOGREG_APIS for a in apis):
        raise ValueError(f"logreg api must be tensor (CrypTen's tensor operations) or nn (crypten.nn), got {apis!r}")
    if provider not in ("TTP", "TFP"):
        raise ValueError("provider must be TTP (trusted third party) or TFP (CrypTen's trusted first party)")
    size = int(size if size is not None else (10 if op == "logreg" else DEFAULT_SIZES[op]))
    apis = apis if op == "logreg" else apis[:1]
    job = peer_job(op, size, repeats, seed, reciprocal_range, provider=provider, epochs=epochs, apis=list(apis))
    with tempfile.TemporaryDirectory(prefix="pooled-crypten-") as scratch:
        if op == "logreg":  # the ranks read the data from a file rather than each importing scikit-learn
            job["data_file"] = str(Path(scratch) / "breast_cancer.npz")
            write_breast_cancer(Path(job["data_file"]), size)
        return _run_ranks(op, parties, size, repeats, job, provider, timeout)


def _run_ranks(op: str, parties: int, size: int, repeats: int, job: dict[str, Any], provider: str,
               timeout: float | None) -> list[dict[str, Any]]:
    """Start the ranks (and the TTP) on `job`, wait for them, and build the rows (`_run`): one per API
    of a logreg job, else one."""
    (port,) = free_ports(1)
    base = single_thread_env(
        {
            "WORLD_SIZE": str(parties),
            "RENDEZVOUS": f"tcp://{LOOPBACK}:{port}",
            "DISTRIBUTED_BACKEND": "gloo",
            "GLOO_SOCKET_IFNAME": "lo",
            "MASTER_ADDR": LOOPBACK,
            "POOLED_PEER_JOB": json.dumps(job),
        }
    )
    argv = [sys.executable, "-m", "benchmarks.peers.crypten_party"]
    commands = {f"rank{r}": (argv, {**base, "RANK": str(r)}) for r in range(parties)}
    if provider == "TTP":
        commands["ttp"] = (argv, {**base, "RANK": str(parties)})
    runs = len(job["apis"]) if op == "logreg" else 1
    timeout = timeout if timeout is not None else _default_timeout(op, size, repeats) * runs
    found, load_before = worker_results("a CrypTen rank", commands, [f"rank{r}" for r in range(parties)], timeout)
    per_run = [[r["by_api"][i] for r in found] for i in range(runs)] if op == "logreg" else [found]
    return [_row(op, parties, size, repeats, job, provider, ranks, load_before, len(commands)) for ranks in per_run]


def _row(op: str, parties: int, size: int, repeats: int, job: dict[str, Any], provider: str,
         ranks: list[dict[str, Any]], load_before: float, processes: int) -> dict[str, Any]:
    """One row from the ranks' results of one measurement."""
    row = start_row(ranks, repeats, load_before, peer="crypten", version=VERSION, op=op, parties=parties,
                    provider=provider, processes=processes, size=size)
    row.update(
        rounds_per_party=[r["comm_op"]["rounds"] for r in ranks],
        bytes_per_party=[r["comm_op"]["bytes"] for r in ranks],
        bytes_total_estimate=sum(r["comm_op"]["bytes"] for r in ranks) // 2,
        input_rounds_per_party=[r["comm_input"]["rounds"] for r in ranks],
        input_bytes_per_party=[r["comm_input"]["bytes"] for r in ranks],
        decode_bug_misses=ranks[0]["decode_bug_misses"],
        decode_fixed=True,
        **copy_keys(ranks[0], LOGREG_KEYS),
    )
    if op == "logreg":
        row["features"] = size
    if op == "reciprocal":
        row["input_range"] = job["reciprocal_range"]
    return row


def _default_timeout(op: str, size: int, repeats: int) -> float:
    per_run = 60.0 if op == "logreg" else 5.0 + size * 4e-5
    return 120.0 + per_run * (repeats + 2) * 3


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser(__doc__.splitlines()[0], OPS, repeats=5)
    parser.add_argument("--provider", default="TTP", choices=["TTP", "TFP"])
    parser.add_argument("--features", default="10,30", help="logreg feature sets (10 and/or 30)")
    parser.add_argument("--api", default="tensor", choices=["tensor", "nn"], help="logreg: tensor API or crypten.nn")
    args = parser.parse_args(argv)
    for op in args.ops.split(","):
        sizes = [int(f) for f in args.features.split(",")] if op == "logreg" else [DEFAULT_SIZES[op]]
        for size in sizes:
            reps = min(args.repeats, 3) if op == "logreg" else args.repeats
            print_row(run(op, args.parties, size, reps, provider=args.provider, api=args.api), args.out)


if __name__ == "__main__":
    main()
