"""Start a local consortium's processes by forking one process that has already imported their code.

A dealer or node started as `python -m parties ...` spends most of its start-up importing
(numpy, pandas, pyarrow, DuckDB, sqlglot, gRPC, cryptography): about 0.9 CPU-seconds per node
and 0.3 per dealer measured on a 2-core machine, paid again by every process. A `Launcher`
starts one process (`python -m parties.launcher`) that imports that code once (`PRELOAD`),
then forks one child per request; each child runs the `pooled` command line
(`parties.cli.main`) with its own arguments, stdin from /dev/null and stdout and stderr in its
own log file, as a process started with those arguments would.

Forking is safe because the launcher creates no gRPC channel or server, opens no file or
database of the children's, and draws no randomness: every child initialises gRPC, TLS and
its seeds (`os.urandom`) after the fork. The launcher runs in the environment the children
should have: what a process fixes when it starts (malloc tuning, the BLAS thread count) is
the launcher's and so theirs.

The launcher reads requests on its stdin, one JSON object a line: `{"argv": [...], "log": PATH,
"exit": PATH}`, and answers each with `{"pid": N}` on its stdout. It reaps its children and
writes each one's exit code (negative: the signal that ended it) to its `exit` file. At the
end of its stdin it leaves; children started with `--exit-with-parent` then stop too.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, NoReturn

PRELOAD: tuple[str, ...] = (
    "parties.node",
    "parties.query_job",
    "parties.dealer_service",
    "parties.audit",
    "parties.audit_heads",
    "parties.bench_jobs",
    "parties.config",
    "parties.policy",
    "parties.process",
    "queries.plan_text",
    "queries.sources",
    "queries.source_duckdb",
    "sqlglot.dialects.duckdb",
    "grpc._channel",
    "grpc._server",
    "grpc.experimental",
    "encodings.idna",
)
"""What a dealer and a node import before they serve and while they answer a query (besides
every command module, `parties.cli.COMMANDS`, which their command line loads)."""


class LauncherError(RuntimeError):
    """The launcher process stopped or answered nonsense."""


class Child:
    """A process the launcher forked: `pid`, and `poll`/`wait`/`returncode` like `subprocess.Popen`'s."""

    def __init__(self, pid: int, exit_file: Path) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exit_file = exit_file

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None (-1: it ended after the launcher, so
        its code is unknown). The launcher writes the code before it reaps the process: a pid gone
        without its exit file was reaped by someone else."""
        if self.returncode is None:
            gone = not _exists(self.pid)
            if self._exit_file.exists():
                self.returncode = int(self._exit_file.read_text())
            elif gone:
                self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code


class Launcher:
    """The client side: start the launcher process, ask it for children, stop it."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self._proc = proc
        self._log = log

    @classmethod
    def start(cls, env: Mapping[str, str], log: Path) -> Launcher:
        """Start the launcher in `env` (it imports `PRELOAD` meanwhile); its own errors go to `log`."""
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "parties.launcher"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=out, env=dict(env))
        return cls(proc, log)

    def spawn(self, argv: list[str], log: Path, exit_file: Path) -> Child:
        """Fork a child running `pooled ARGV`, its output in `log`, its exit code to be written to `exit_file`."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        exit_file.unlink(missing_ok=True)
        request = {"argv": argv, "log": str(log), "exit": str(exit_file)}
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline()
            return Child(int(json.loads(answer)["pid"]), exit_file)
        except (OSError, ValueError, KeyError) as exc:
            tail = self._log.read_text(errors="replace")[-2000:]
            raise LauncherError(f"the launcher stopped ({exc}):\n{tail}") from None

    @property
    def pid(self) -> int:
        """The launcher process's id (its children's parent)."""
        return self._proc.pid

    def running(self) -> bool:
        """Whether the launcher process is still there to fork children."""
        return self._proc.poll() is None

    def close(self, timeout_s: float = 5.0) -> None:
        """End the launcher (its children stay as they are) and wait for it, killing it after `timeout_s`."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5.0)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the launcher process ----------------------------------------------------------------------------
def serve(requests: int, answers: IO[str]) -> None:
    """Import `PRELOAD`, then fork a child per request line read from the file descriptor `requests`
    until it ends (see the module docstring). One loop waits for a request or a child's end and
    handles either, so reaping never interrupts the launcher half-way through anything."""
    from parties.cli import COMMANDS

    for name in (*COMMANDS, *PRELOAD):
        importlib.import_module(name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launching process decides when this one ends
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)  # a child's end (SIGCHLD) wakes the loop
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    exit_files: dict[int, str] = {}
    pending = b""
    while True:
        ready, _, _ = select.select([requests, wake_r], [], [])
        if wake_r in ready:
            while _read_all(wake_r):
                pass
            _reap(exit_files)
        if requests not in ready:
            continue
        chunk = os.read(requests, 1 << 16)
        if not chunk:
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                for fd in (wake_r, wake_w):
                    os.close(fd)
                _child(request["argv"], request["log"])
            exit_files[pid] = request["exit"]
            answers.write(json.dumps({"pid": pid}) + "\n")
            answers.flush()


def _read_all(fd: int) -> bytes:
    try:
        return os.read(fd, 512)
    except BlockingIOError:
        return b""


def _reap(exit_files: dict[int, str]) -> None:
    """Write each ended child's exit code to its exit file, then reap it (so its pid exists until then)."""
    while True:
        try:
            ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if ended is None:
            return
        path = exit_files.pop(ended.si_pid, None)
        if path is not None:
            code = ended.si_status if ended.si_code == os.CLD_EXITED else -ended.si_status
            Path(f"{path}.tmp").write_text(str(code))
            os.replace(f"{path}.tmp", path)
        os.waitpid(ended.si_pid, 0)


def _child(argv: list[str], log: str) -> NoReturn:
    """In the forked child: signals as in a fresh process, output to `log`, run `pooled ARGV`, exit."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.close(null)
        code = _run(argv)
    except BaseException:  # noqa: BLE001 - reported in the child's log, as an uncaught exception would be
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run(argv: list[str]) -> int:
    """`pooled ARGV`'s exit code, a SystemExit's message printed as the interpreter would."""
    from parties.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


if __name__ == "__main__":
    serve(sys.stdin.fileno(), sys.stdout)
    os._exit(0)  # nothing left to write; the interpreter's teardown of what it imported took up to a second
