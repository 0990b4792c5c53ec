"""Starting, bounding and reaping the peer frameworks' party processes (loopback only).

Both peers run one OS process per party (CrypTen: one per rank plus the trusted third
party; MPyC: one per `-I` index). This module holds what the two launchers and their
workers share: ephemeral ports on 127.0.0.1, the single-thread environment, a run with a
deadline that kills every process group it started, the JSON line each worker prints
after a fixed marker and its summary over the parties, and the operations' inputs,
numpy oracles and error measures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.framework import SINGLE_THREAD_ENV

ROOT = Path(__file__).resolve().parents[2]
MARK = "POOLED-PEER-RESULT "
"""Prefix of the one stdout line in which a worker reports its measurements as JSON."""

LOOPBACK = "127.0.0.1"


class PeerRunError(RuntimeError):
    """A peer's processes failed, timed out or printed no result."""


def free_ports(count: int) -> list[int]:
    """`count` distinct ports the kernel just handed out on 127.0.0.1 (bind port 0, read back).

    The sockets are closed before the peers bind them, so another process could take one in
    between; the launchers treat a failed bind like any other failure of the run.
    """
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def single_thread_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment with one compute thread per process and the repo importable."""
    env = {**os.environ, **SINGLE_THREAD_ENV}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Finished:
    """What one worker process left behind."""

    name: str
    returncode: int | None
    stdout: str
    stderr: str

    def result(self) -> dict[str, Any] | None:
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        return None

    def tail(self, lines: int = 15) -> str:
        text = (self.stderr.strip() + "\n" + self.stdout.strip()).strip()
        return "\n".join(text.splitlines()[-lines:])


def run_all(commands: dict[str, tuple[list[str], dict[str, str]]], timeout: float) -> dict[str, Finished]:
    """Start every `name -> (argv, env)` at once, wait at most `timeout` seconds for all, reap all.

    Each process gets its own session (process group), so a timeout or a failure kills it
    with everything it spawned, by group id: never by name. Output goes to temporary files
    (large tracebacks cannot block a pipe). Raises PeerRunError, with the tails of the
    workers' output, if any process is still running at the deadline or exits non-zero.
    """
    procs: dict[str, tuple[subprocess.Popen[bytes], Any, Any]] = {}
    deadline = time.monotonic() + timeout
    restore = _exit_on_sigterm()
    try:
        for name, (argv, env) in commands.items():
            out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            proc = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )
            procs[name] = (proc, out, err)
        failed: str | None = None
        while time.monotonic() < deadline:
            codes = {name: p.poll() for name, (p, _, _) in procs.items()}
            bad = [n for n, c in codes.items() if c not in (None, 0)]
            if bad:
                failed = f"{bad[0]} exited with code {codes[bad[0]]}"
                time.sleep(0.5)  # let the others print their own error before they are killed
                break
            if all(c == 0 for c in codes.values()):
                break
            time.sleep(0.05)
        else:
            failed = f"timed out after {timeout:.0f} s"
    finally:
        for proc, _, _ in procs.values():
            _kill_group(proc)
        restore()
    done = {name: Finished(name, p.returncode, _read(out), _read(err)) for name, (p, out, err) in procs.items()}
    if failed is not None:
        tails = "\n".join(f"--- {f.name} (rc={f.returncode}):\n{f.tail()}" for f in done.values())
        raise PeerRunError(f"{failed}\n{tails}")
    return done


def _exit_on_sigterm() -> Any:
    """While workers run, turn SIGTERM into SystemExit so `run_all`'s cleanup still kills them."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
        print(f"warning: process {proc.pid} did not exit", file=sys.stderr)


def _read(handle: Any) -> str:
    handle.seek(0)
    text = handle.read().decode("utf-8", "replace")
    handle.close()
    return text


def errors(got: np.ndarray, want: np.ndarray, kind: str) -> dict[str, Any]:
    """Error of `got` against the numpy oracle `want`: "abs", "rel" (plus abs) or "mismatch".

    Outputs off by more than 1 (abs) or 100% (rel) are counted apart as `wrong_outputs`
    (CrypTen's probabilistic truncation, for one, rarely wraps and returns values ~2^32 off),
    and `*_excluding_wrong` give the error of the others: the approximation error proper.
    """
    if kind == "mismatch":
        return {"mismatches": int(np.count_nonzero(got != want))}
    abs_err = np.abs(got - want)
    err = np.abs(got / want - 1) if kind == "rel" else abs_err
    wrong = err > 1.0
    out: dict[str, Any] = {"wrong_outputs": int(np.count_nonzero(wrong)), "max_abs_error": float(abs_err.max())}
    out["max_abs_error_excluding_wrong"] = float(abs_err[~wrong].max()) if (~wrong).any() else None
    if kind == "rel":
        out["max_rel_error"] = float(err.max())
        out["max_rel_error_excluding_wrong"] = float(err[~wrong].max()) if (~wrong).any() else None
    return out


def emit(result: dict[str, Any]) -> None:
    """Worker side: print the result line the launcher looks for."""
    print(MARK + json.dumps(result), flush=True)


def run_workers(label: str, commands: dict[str, tuple[list[str], dict[str, str]]], workers: Sequence[str],
                timeout: float, repeats: int, **head: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a peer's processes (`run_all`) and start its row from the result lines of `workers`.

    The row is `start_row`'s. Returns the row and the workers' results, in order; raises
    PeerRunError if a worker printed no result.
    """
    results, load_before = worker_results(label, commands, workers, timeout)
    return start_row(results, repeats, load_before, **head), results


def worker_results(label: str, commands: dict[str, tuple[list[str], dict[str, str]]], workers: Sequence[str],
                   timeout: float) -> tuple[list[dict[str, Any]], float]:
    """Run a peer's processes (`run_all`): the result lines of `workers`, in order, and the 1-minute load
    average before; PeerRunError if a worker printed no result."""
    load_before = os.getloadavg()[0]
    done = run_all(commands, timeout)
    found = [done[w].result() for w in workers]
    results = [r for r in found if r is not None]
    if len(results) < len(found):
        raise PeerRunError(f"{label} printed no result:\n" + "\n".join(f.tail() for f in done.values()))
    return results, load_before


def start_row(results: list[dict[str, Any]], repeats: int, load_before: float, **head: Any) -> dict[str, Any]:
    """A peer's row from its workers' `results`: `head` (what ran), one compute thread per party, per
    repetition the slowest worker's time with the median and spread (max - min) over repetitions, the
    first worker's errors (`ERROR_KEYS`) and the 1-minute load average before and now."""
    slowest = [max(r["seconds"][i] for r in results) for i in range(repeats)]
    slowest_io = [max(r["seconds_with_input"][i] for r in results) for i in range(repeats)]
    return {
        **head,
        "repeats": repeats,
        "threads_per_party": 1,
        "seconds_median": statistics.median(slowest),
        "seconds_spread": max(slowest) - min(slowest),
        "seconds_runs": slowest,
        "seconds_with_input_median": statistics.median(slowest_io),
        **copy_keys(results[0], ERROR_KEYS),
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


ERROR_KEYS = ("max_abs_error", "max_rel_error", "mismatches", "wrong_outputs", "max_abs_error_excluding_wrong",
              "max_rel_error_excluding_wrong")
"""The keys of `errors`' result, copied from the first worker into a peer's row."""


def copy_keys(source: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: source[k] for k in keys if k in source}


def check_run(peer: str, ops: Sequence[str], op: str, parties: int, missing: str = "") -> None:
    """A ValueError unless `op` is one of the peer's `ops` (`missing` says what it lacks) and there
    are at least 2 parties."""
    if op not in ops:
        raise ValueError(f"{peer} op must be one of {ops}, got {op!r}{missing}")
    if parties < 2:
        raise ValueError("need at least 2 parties")


def peer_job(op: str, size: int, repeats: int, seed: int, reciprocal_range: tuple[float, float],
             **settings: Any) -> dict[str, Any]:
    """What every worker of a run reads (as JSON in POOLED_PEER_JOB): the keys both harnesses
    share, then the peer's own `settings`."""
    common = {"op": op, "size": size, "repeats": int(repeats), "seed": seed,
              "reciprocal_range": [float(v) for v in reciprocal_range]}
    return {**common, **settings}


def cli_parser(description: str, ops: Sequence[str], repeats: int) -> argparse.ArgumentParser:
    """The options both harnesses' command lines share: --ops, --parties, --repeats, --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--ops", default=",".join(ops))
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    return parser


def print_row(row: dict[str, Any], out: Path | None) -> None:
    """Print a peer's row as one JSON line; also append it to `out` if given."""
    line = json.dumps(row)
    print(line, flush=True)
    if out is not None:
        with out.open("a") as f:
            f.write(line + "\n")


# -- the operations, shared by both peers' workers -----------------------------------------------------
def peer_inputs(op: str, size: int, parties: int, seed: int,
                reciprocal_range: Sequence[float]) -> dict[int, np.ndarray]:
    """Each owner's private vector (every process can derive them; only the owner uses its own)."""

    def draw(owner: int, lo: float, hi: float) -> np.ndarray:
        return np.random.default_rng([seed, owner]).uniform(lo, hi, size)

    if op in ("mul", "lt"):
        return {0: draw(0, -100, 100), 1: draw(1, -100, 100)}
    if op == "sigmoid":
        return {0: draw(0, -40, 40)}
    if op == "reciprocal":
        lo, hi = reciprocal_range
        return {0: draw(0, lo, hi)}
    if op == "sum":
        return {r: draw(r, -100, 100) for r in range(parties)}
    raise ValueError(f"unknown op {op!r}")


def total(shared: Sequence[Any]) -> Any:
    """The sum of the inputs, with the peer's own addition."""
    out = shared[0]
    for s in shared[1:]:
        out = out + s
    return out


ORACLES: dict[str, tuple[Callable[[list[np.ndarray]], np.ndarray], str]] = {
    "mul": (lambda v: v[0] * v[1], "abs"),
    "lt": (lambda v: (v[0] < v[1]).astype(np.float64), "mismatch"),
    "sigmoid": (lambda v: 1 / (1 + np.exp(-v[0])), "abs"),
    "reciprocal": (lambda v: 1 / v[0], "rel"),
    "sum": (lambda v: np.sum(v, axis=0), "abs"),
}
"""op -> (numpy oracle on the owners' inputs in owner order, error measure for `errors`)."""
