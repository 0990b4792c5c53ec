"""Measure both peers once and write benchmarks/results/peers.json and their docs section.

Runs, through `run_peer`: CrypTen 0.4.1 with 3 parties + TTP (and 2 parties + TTP for the
micro operations) and MPyC 0.11 with 3 parties, for multiply, comparison, sigmoid,
reciprocal and sum, plus CrypTen's 30-epoch logistic regression on breast_cancer (10 and
30 features). Then replaces the "## Peers measured on this machine ..." section of
docs/benchmarks.md (or appends it), leaving the rest of the file alone.

Run: `python -m benchmarks.peers.report [--repeats 5] [--logreg-repeats 3]`, or
`python -m benchmarks.peers.report --from-json` to rewrite the section from the JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import framework
from benchmarks.peers import run_peer
from benchmarks.peers._procs import ROOT
from benchmarks.peers.mpyc_bench import DEFAULT_SIZES as MPYC_SIZES

SECTION = "## Peers measured on this machine (CrypTen 0.4.1, MPyC 0.11)"
MICRO = [("mul", 1_000_000), ("lt", 100_000), ("sigmoid", 100_000), ("reciprocal", 100_000), ("sum", 1_000_000)]
NAMES = {"mul": "multiply", "lt": "comparison (x < y)", "sigmoid": "sigmoid", "reciprocal": "reciprocal", "sum": "sum"}


def machine() -> dict[str, Any]:
    """The machine (`benchmarks.framework.machine`) and the peers' package versions."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("torch", "crypten", "mpyc", "gmpy2", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # a missing package is recorded, not fatal
            versions[dist] = None
    return {**framework.machine(), **versions}


def measure(repeats: int, logreg_repeats: int) -> list[dict[str, Any]]:
    rows = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    for op, size in MICRO:
        add(run_peer("crypten", op, 3, size, repeats))
        add(run_peer("mpyc", op, 3, MPYC_SIZES[op], min(repeats, 3)))
    for op, size in MICRO:
        add(run_peer("crypten", op, 2, size, repeats))
    for features in (10, 30):
        for api in ("tensor", "nn"):
            add(run_peer("crypten", "logreg", 3, features, logreg_repeats, api=api))
    return rows


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def markdown(report: dict[str, Any]) -> str:
    m, rows = report["machine"], report["results"]
    crypten = [r for r in rows if r["peer"] == "crypten" and r["op"] != "logreg"]
    mpyc = [r for r in rows if r["peer"] == "mpyc"]
    logreg = [r for r in rows if r["op"] == "logreg"]
    misses = sum(r.get("decode_bug_misses", 0) for r in rows if r["peer"] == "crypten")
    loads = [x for r in rows for x in r.get("load_average_1min", [])]
    out = [
        SECTION,
        "",
        f"Machine: {m['nproc']} cores, {m['cpu']}; Python {m['python']}, torch {m['torch']}, crypten {m['crypten']}, "
        f"mpyc {m['mpyc']}, gmpy2 {m['gmpy2']}. Measured {report['date']}.",
        f"Command: `{report['command']}` (install: `bash benchmarks/peers/setup.sh`; one row by hand: "
        "`python -m benchmarks.peers --peer crypten --op mul --size 1000000 --repeats 5`).",
        "",
        "Each party is its own process on 127.0.0.1 with one compute thread (OMP_NUM_THREADS=1, "
        "`torch.set_num_threads(1)`). Time: per repetition the slowest party's time for the operation on "
        "inputs already secret-shared (for *sum*, sharing every party's input is the protocol and is "
        "included); median over repetitions after one warm-up, spread = max - min. No TLS in either peer.",
        "",
        "### CrypTen 0.4.1 (gloo, trusted third party as an extra process)",
        "",
        "| parties | operation | elements | seconds (median) | spread | comm. calls per party | "
        "MB per party (CrypTen's counter) | error vs numpy |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in crypten:
        out.append(
            f"| {r['parties']}+TTP | {NAMES[r['op']]} | {r['size']:,} | {r['seconds_median']:.3f} | "
            f"{r['seconds_spread']:.3f} | {max(r['rounds_per_party'][1:])} (rank 0: {r['rounds_per_party'][0]}) | "
            f"{_mb(max(r['bytes_per_party'][1:]))} (rank 0: {_mb(r['bytes_per_party'][0])}) | {_error(r)} |"
        )
    out += [
        "",
        "### CrypTen 0.4.1: logistic regression on breast_cancer (3 parties)",
        "",
        "569 rows split in contiguous thirds over the parties, features standardized; full-batch gradient "
        f"descent, learning rate {logreg[0]['lr'] if logreg else '-'}, 30 epochs. API *tensor*: CrypTen's tensor "
        "operations, as its own examples write a model (encrypted X and w, `matmul`, `sigmoid`, a hand-written "
        "gradient step); *nn*: `crypten.nn.Linear` + `Sigmoid`, `BCELoss`, autograd and `update_parameters`. "
        "Both start from the same initialisation. *Plaintext* is the same initialisation and training "
        "in float64 PyTorch. TFP rows (CrypTen's trusted first party, not our threat model) are there only to "
        "show where the time goes: through `crypten.nn` each epoch makes about 230 communication calls per party "
        "(50 with the tensor API), and each costs "
        "several milliseconds with 4 processes on 2 cores.",
        "",
        "| provider | API | features | seconds (median) | spread | runs | comm. calls per party | MB per party | "
        "training accuracy | plaintext same training |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in logreg:
        out.append(
            f"| {r['provider']} | {r.get('api', 'nn')} | {r['features']} | {r['seconds_median']:.1f} | "
            f"{r['seconds_spread']:.1f} | "
            f"{r['repeats']} | "
            f"{max(r['rounds_per_party'][1:])} (rank 0: {r['rounds_per_party'][0]}) | "
            f"{_mb(max(r['bytes_per_party'][1:]))} | {r['train_accuracy']:.4f} | "
            f"{r['plaintext_same_training_accuracy']:.4f} |"
        )
    out += [
        "",
        "### MPyC 0.11 (3 parties, Shamir threshold 1, SecFxp(32, 16))",
        "",
        "| operation | elements run | seconds (median) | spread | Pooled's size | linear extrapolation (s) | "
        "messages per party | MB per party | error vs numpy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in mpyc:
        scaled = r.get("scaled_from")
        out.append(
            f"| {NAMES[r['op']]} | {r['size']:,} | {r['seconds_median']:.3f} | {r['seconds_spread']:.3f} | "
            f"{scaled or r['size']:,} | {r['extrapolated_seconds']:.0f} |"
            if scaled
            else f"| {NAMES[r['op']]} | {r['size']:,} | {r['seconds_median']:.3f} | {r['seconds_spread']:.3f} | "
            f"{r['size']:,} | - |"
        )
        out[-1] += f" {max(r['messages_per_party'])} | {_mb(max(r['bytes_per_party']))} | {_error(r)} |"
    out += [
        "",
        "### Caveats",
        "",
        "- **Decode fix.** CrypTen 0.4.1's `FixedPointEncoder.decode` divides negatives by 2^16 - 1 instead of "
        "2^16: a revealed x = -k + s/2^16 with 0 < s < k comes out exactly 1.0 too low. The harness replaces "
        "`decode` with an exact one and computes every error from the revealed ring integers in float64; "
        f"the original decode would have been wrong on {misses:,} outputs of the runs above.",
        "- **Wrong outputs.** *n wrong* counts outputs off by more than 1 (absolute) or 100% (relative); the error "
        "after it is that of the other outputs. CrypTen's truncation after a product is probabilistic: rarely "
        "(see the table) the shares wrap and an output is off by about 2^32 times its scale. "
        "CrypTen's own `update_parameters` zeroes gradients above a threshold for this reason.",
        "- **TTP, not TFP.** CrypTen's default provider (trusted *first* party: rank 0 generates every triple) is "
        "not Pooled's threat model; every row but those marked TFP uses `mpc.provider: TTP`, one more process on "
        "the same 2 cores. "
        "Rank 0 relays all TTP requests, hence its higher call and byte counts.",
        "- **Counters.** CrypTen counts a communication *call* (send, all-reduce, ...) as a round, and the "
        "elements every call sends or receives (8 bytes each); they are not latency rounds. Inputs are shared "
        "without communication (pseudo-random zero shares), so CrypTen's *sum* exchanges nothing until revealed. "
        "MPyC has no rounds: its asynchronous runtime labels messages by program counter; we count messages "
        "sent and MPyC's own bytes sent (12-byte header included).",
        "- **Reciprocal range.** Inputs in [1, 100] for both peers (top of CrypTen's own benchmark domain). "
        "CrypTen's default reciprocal loses accuracy as x grows (in a single-process CrypTen: relative error about "
        "0.2% below 10, 14% near 100, 60% near 200; more with 3 parties, see the table) and returns garbage from "
        "about 255 on, where the exp of its initial guess overflows; Pooled's benchmark uses [1, 1000]. "
        "Other ranges: `run_peer(..., reciprocal_range=(lo, hi))`.",
        "- **MPyC sizes.** MPyC computes on Python integers and is CPU-bound: its rows run at the sizes shown, "
        "and the extrapolation to Pooled's size is linear, not measured. MPyC has no exp/sigmoid (the harness "
        "writes CrypTen's recipe with MPyC's comparison, products and reciprocal) and no model training, so there "
        "is no MPyC logistic regression. Its 3-party threshold is 1 (honest majority, no dealer); with 2 parties "
        "it would be 0 (no privacy), so only 3 parties are reported.",
        f"- **Noise.** Other jobs may share this 2-core machine: the 1-minute load average, which also "
        f"counts the peer's own 3-4 processes, ranged {min(loads):.1f}-{max(loads):.1f} over the rows (each row "
        "records it before and after). Latency-bound work (the logistic regression: thousands of small calls) "
        "suffers most. Compare peers with Pooled in the same invocation.",
        "",
    ]
    return "\n".join(out)


def _error(r: dict[str, Any]) -> str:
    if "mismatches" in r:
        return f"{r['mismatches']} wrong of {r['size']:,}"
    rel = "max_rel_error_excluding_wrong" in r
    key = "max_rel_error" if rel else "max_abs_error"
    if r.get("wrong_outputs", 0) == 0:
        return f"max {'rel' if rel else 'abs'} {r[key]:.1e}"
    return (
        f"**{r['wrong_outputs']} wrong** (max {'rel' if rel else 'abs'} {r[key]:.1e}); "
        f"others: max {'rel' if rel else 'abs'} {r[key + '_excluding_wrong']:.1e}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--logreg-repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peers.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--from-json", action="store_true", help="only rewrite the docs section from --out")
    args = parser.parse_args(argv)
    if args.from_json:
        report = json.loads(args.out.read_text())
    else:
        args_list = sys.argv[1:] if argv is None else argv
        command = "python -m benchmarks.peers.report " + shlex.join(args_list)
        date = time.strftime("%Y-%m-%d %H:%M %Z")
        report = {"machine": machine(), "command": command.strip(), "date": date, "results": []}
        report["results"] = measure(args.repeats, args.logreg_repeats)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    framework.write_section(args.doc, markdown(report), heading=SECTION)


if __name__ == "__main__":
    main()
