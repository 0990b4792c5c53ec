"""The benchmark command: `python -m benchmarks [--suite ...] [--parties 2,3,5] [--wan 20] [--peers] [--out DIR]`.

Also reachable as `pooled bench ...` from a source checkout. Runs the chosen suites'
tasks one after another under a progress bar, prints every result row as it is
measured, keeps `OUT/results.json` and `OUT/results.csv` current, and at the end
regenerates the "Benchmark results" section of docs/benchmarks.md with its tables and
plots (unless `--no-doc`). `--quick` runs every code path on small sizes: a smoke test,
not a measurement. Needs the `bench` extra (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from benchmarks.framework import DEFAULT_DOC, DEFAULT_OUT, BenchOptions, Recorder, Task, command_line

SUITES: dict[str, str] = {
    "micro": "benchmarks.suite_micro",
    "queries": "benchmarks.suite_queries",
    "regression": "benchmarks.suite_regression",
    "scale": "benchmarks.suite_scale",
    "pushdown": "benchmarks.suite_pushdown",
    "models": "benchmarks.suite_models",
}
"""Suite name -> module with `tasks(options) -> list[Task]`."""


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"party counts must be at least 2, got {text!r}")
    return values


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated milliseconds, got {text!r}") from exc
    if not values or min(values) < 0 or max(values) > 1000:
        raise argparse.ArgumentTypeError(f"round-trip times must be 0..1000 ms, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--suite", action="append", choices=[*SUITES, "all"],
                   help="which suite(s) to run (repeatable; default: micro)")
    p.add_argument("--parties", type=_ints, default=(3,), help="comma-separated party counts (default 3)")
    p.add_argument("--wan", type=_floats, default=(0.0,), metavar="RTT_MS",
                   help="emulated round-trip time(s) in ms on every party and dealer link, comma-separated (default 0)")
    p.add_argument("--peers", action="store_true", help="also run CrypTen and MPyC, interleaved (optional extra)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions per case (median reported)")
    p.add_argument("--quick", action="store_true", help="small sizes: check every path runs, measure nothing")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results directory (default {DEFAULT_OUT})")
    p.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="markdown file whose benchmark section is rewritten")
    p.add_argument("--no-doc", action="store_true", help="do not touch the docs")
    return p


def options_from(argv: list[str] | None) -> BenchOptions:
    args = build_parser().parse_args(argv)
    suites = args.suite or ["micro"]
    chosen = tuple(SUITES) if "all" in suites else tuple(dict.fromkeys(suites))
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    return BenchOptions(
        suites=chosen,
        parties=args.parties,
        wan_rtt_ms=args.wan,
        peers=args.peers,
        repeat=args.repeat,
        quick=args.quick,
        out=args.out.resolve(),
        doc=None if args.no_doc else args.doc.resolve(),
        command=command_line(argv),
    )


def collect(options: BenchOptions) -> list[Task]:
    tasks: list[Task] = []
    for suite in options.suites:
        tasks += importlib.import_module(SUITES[suite]).tasks(options)
    return tasks


def main(argv: list[str] | None = None) -> int:
    options = options_from(argv)
    try:
        from tqdm import tqdm
    except ImportError:
        raise SystemExit("python -m benchmarks: tqdm is missing; install the bench extra: "
                         "pip install -e '.[bench]'") from None
    if options.peers:
        from benchmarks.peers import PEERS, available

        missing = [p for p in PEERS if not available(p)]
        if missing:
            print(f"--peers: {', '.join(missing)} not installed here (bash benchmarks/peers/setup.sh); "
                  "their rows are skipped", file=sys.stderr)
    tasks = collect(options)
    bar = tqdm(total=len(tasks), unit="task", file=sys.stderr, dynamic_ncols=True)
    recorder = Recorder(options, write=tqdm.write)
    try:
        for task in tasks:
            bar.set_description(task.label[:40])
            recorder.add(task.run())
            bar.update(1)
    finally:
        bar.close()
    print(f"wrote {recorder.json_path} and {recorder.csv_path}")
    if options.doc is not None:
        from benchmarks.report_docs import write_docs

        for path in write_docs(recorder.report(), options.doc, options.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
