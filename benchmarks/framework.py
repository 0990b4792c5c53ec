"""What every suite of the benchmark command shares: options, result rows, tasks, the recorder.

`python -m benchmarks` (see `benchmarks/__main__.py`) collects `Task`s from the suites it
is asked for, runs them one by one under a progress bar, and hands every `Row` a task
returns to the `Recorder`, which prints it as a table line at once and rewrites the
JSON and CSV files after each task (an interrupted run keeps what it measured).

A row is one measured case of one system (Pooled, a peer framework, or plaintext
pandas/statsmodels): time as a median over repetitions with its spread, and the
communication counters that explain it. Counters a system does not report stay None.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench"
DEFAULT_DOC = ROOT / "docs" / "benchmarks.md"
RESULTS_HEADING = "## Benchmark results"
"""Heading of the section of docs/benchmarks.md that `python -m benchmarks` generates (and rewrites)."""
SYSTEMS = ("pooled", "crypten", "mpyc", "pandas", "statsmodels", "duckdb", "postgresql")
SINGLE_THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
"""One compute thread per process: Pooled's nodes and the peers' parties alike, so the comparison is thread
for thread."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class BenchOptions:
    """What the user asked for on the command line."""

    suites: tuple[str, ...]
    parties: tuple[int, ...] = (3,)
    wan_rtt_ms: tuple[float, ...] = (0.0,)
    """Round-trip times to emulate on every party-to-party and dealer link (0: plain loopback)."""
    peers: bool = False
    """Run CrypTen and MPyC on the same operations, interleaved with Pooled's runs."""
    repeat: int = 3
    quick: bool = False
    """Small sizes: a smoke run of every code path (used by the tests), not a measurement."""
    out: Path = DEFAULT_OUT
    doc: Path | None = DEFAULT_DOC
    command: str = ""


@dataclass
class Row:
    """One measured case of one system."""

    suite: str
    case: str
    system: str
    parties: int
    size: int | None = None
    """Elements, rows per party or features: what `case` says it is."""
    rtt_ms: float = 0.0
    seconds: float | None = None
    """Median over `runs` timed repetitions."""
    spread: float | None = None
    """Max minus min over the repetitions."""
    runs: int = 0
    bytes_per_party: int | None = None
    """Bytes one party sent (maximum over parties), dealer traffic apart."""
    messages_per_party: int | None = None
    rounds: int | None = None
    dealer_bytes: int | None = None
    error: float | None = None
    """Max absolute error against plaintext, or what `extra['error_kind']` says."""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Task:
    """One unit of the progress bar: a label and the function that measures it."""

    label: str
    run: Callable[[], list[Row]]


def timed_runs(fn: Callable[[], _T], repeat: int, warmup: int = 1) -> tuple[list[float], list[_T]]:
    """`warmup` untimed calls of `fn` (connections, buffers, caches), then `repeat` timed ones.

    Returns the timed calls' wall-clock seconds and their results, in order. Jobs over a
    consortium also carry the nodes' own compute time (`JobResult.compute_seconds`), which
    the suites report where the analyst's round trip should not count.
    """
    for _ in range(warmup):
        fn()
    seconds, results = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        results.append(fn())
        seconds.append(time.perf_counter() - t0)
    return seconds, results


def median_spread(seconds: Sequence[float]) -> tuple[float, float]:
    return statistics.median(seconds), max(seconds) - min(seconds)


def machine() -> dict[str, Any]:
    """The machine a run was made on: CPU, cores, load, versions."""
    import numpy as np

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    try:
        import grpc

        grpc_version = grpc.__version__
    except ImportError:  # pragma: no cover - a dependency
        grpc_version = "missing"
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "load_average": load,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "grpcio": grpc_version,
        "platform": platform.platform(),
    }


def command_line(argv: Sequence[str] | None) -> str:
    args = sys.argv[1:] if argv is None else list(argv)
    return "python -m benchmarks " + shlex.join(args)


class Recorder:
    """Collects rows; prints each as it arrives; keeps results.json and results.csv current."""

    COLUMNS = ("suite", "case", "system", "parties", "size", "rtt_ms", "seconds", "spread", "runs",
               "bytes_per_party", "messages_per_party", "rounds", "dealer_bytes", "error")

    def __init__(self, options: BenchOptions, write: Callable[[str], None] = print) -> None:
        self.options = options
        self.rows: list[Row] = []
        self.machine = machine()
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._write = write
        self._header_done = False

    @property
    def json_path(self) -> Path:
        return self.options.out / "results.json"

    @property
    def csv_path(self) -> Path:
        return self.options.out / "results.csv"

    def add(self, rows: Iterable[Row]) -> None:
        for row in rows:
            if row.system not in SYSTEMS:
                raise ValueError(f"unknown system {row.system!r}; expected one of {SYSTEMS}")
            self.rows.append(row)
            self._print(row)
        self.save()

    def _print(self, row: Row) -> None:
        if not self._header_done:
            self._write(f"{'suite':10s} {'case':34s} {'system':8s} {'n':>2s} {'rtt':>4s} {'seconds':>9s} "
                        f"{'spread':>7s} {'MB/party':>9s} {'rounds':>6s} {'error':>8s}")
            self._header_done = True
        mb = "" if row.bytes_per_party is None else f"{row.bytes_per_party / 1e6:9.2f}"
        secs = "" if row.seconds is None else f"{row.seconds:9.3f}"
        spread = "" if row.spread is None else f"{row.spread:7.3f}"
        rounds = "" if row.rounds is None else f"{row.rounds:6d}"
        err = "" if row.error is None else f"{row.error:8.1e}"
        self._write(f"{row.suite:10s} {row.case[:34]:34s} {row.system:8s} {row.parties:2d} {row.rtt_ms:4.0f} "
                    f"{secs:>9s} {spread:>7s} {mb:>9s} {rounds:>6s} {err:>8s}")

    def report(self) -> dict[str, Any]:
        return {
            "command": self.options.command,
            "date": self.started,
            "machine": self.machine,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.options).items()},
            "rows": [r.as_dict() for r in self.rows],
        }

    def save(self) -> None:
        self.options.out.mkdir(parents=True, exist_ok=True)
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.report(), indent=2, default=str))
        tmp.replace(self.json_path)
        with open(self.csv_path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(self.COLUMNS)
            for row in self.rows:
                d = row.as_dict()
                out.writerow(["" if d[c] is None else d[c] for c in self.COLUMNS])


def load_report(path: Path) -> dict[str, Any]:
    """A results.json written by `Recorder.save`, rows turned back into `Row`s."""
    report = json.loads(path.read_text())
    report["rows"] = [Row(**r) for r in report["rows"]]
    return report


def write_section(doc: Path, section: str, heading: str = RESULTS_HEADING) -> None:
    """Replace the section of `doc` that starts at `heading` (up to the next "## ") with `section`.

    The section is appended when `doc` has no such heading; the rest of the file stays byte-identical.
    """
    text = doc.read_text() if doc.exists() else ""
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    else:
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("" if nxt < 0 else "\n" + text[nxt + 1 :])
    doc.write_text(text)
