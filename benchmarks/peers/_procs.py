"""Starting, bounding and reaping the peer frameworks' party processes (loopback only).

Both peers run one OS process per party (CrypTen: one per rank plus the trusted third
party; MPyC: one per `-I` index). This module holds what the two launchers share:
ephemeral ports on 127.0.0.1, the single-thread environment, a run with a deadline that
kills every process group it started, and the parsing of the JSON line each worker
prints after a fixed marker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[key] = "1"
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
