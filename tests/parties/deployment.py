"""Test support: a consortium written by `pooled init` and run from its TOML files as real processes.

`Deployment` runs `pooled init` (in this process: it starts nothing) into a temporary
directory on a free block of loopback ports, starts the dealer and every node with
`--config` together (each its own process, watching its parent; the nodes wait for the
dealer's port file), and stops them by PID. The processes are forked from a launcher that
imported their code once (`parties.launcher`, as `pooled local` starts its processes; under
pytest the session's, `tests.launchers`): each runs `pooled dealer|node --config FILE` as a
process started with those arguments would, without an interpreter's start-up. Nodes can
be killed, frozen, thawed and restarted by name, and queries asked through the `pooled
query` command (`query_cli`, its own process), its code run in this process (`query_here`:
the same output and exit code, no interpreter to start) or, where the command itself is not
under test, through the Python client with the same analyst's file (`ask`).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

import parties

if TYPE_CHECKING:
    from parties.launcher import Child
    from queries.result import Result

ROOT = Path(parties.__file__).resolve().parent.parent


def free_port_block(count: int, low: int = 20000, high: int = 32000, tries: int = 200) -> int:
    """A base port such that base .. base+count-1 are all free on 127.0.0.1 (below the ephemeral range).

    Under pytest-xdist each worker draws from its own slice of the range, so that two workers
    never settle on overlapping blocks between checking the ports and starting the nodes."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    span = (high - low) // workers
    low, high = low + worker * span, low + (worker + 1) * span
    for _ in range(tries):
        base = random.randrange(low, high - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no block of {count} free ports found")


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), e.get("PYTHONPATH", "")) if p)
    return e


def pooled(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run one `pooled` command to completion."""
    return subprocess.run([sys.executable, "-m", "parties", *args], capture_output=True, text=True,
                          timeout=timeout, env=env(), cwd=ROOT)


def run_here(args: Sequence[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run one `pooled` command's code (`parties.cli.main(args)`) in this process, as `pooled` would run
    it from a shell but without starting an interpreter: its exit code, stdout and stderr. An exception
    the command lets escape fails the test (a real process would print a traceback and exit 1); one
    still running after `timeout` seconds fails it too."""
    from parties.cli import main

    out, err = io.StringIO(), io.StringIO()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                outcome["code"] = main(list(args))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"pooled {args[0]}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"pooled {' '.join(args)} still running after {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return subprocess.CompletedProcess(["pooled", *args], outcome["code"], out.getvalue(), err.getvalue())


def pooled_here(*args: str) -> str:
    """Run one `pooled` command that starts nothing (init, certs) in this process; its output.
    RuntimeError if it fails."""
    from parties.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    if code != 0:
        raise RuntimeError(f"pooled {args[0]} failed: {err.getvalue()}")
    return out.getvalue()


class Deployment:
    """`pooled init` + dealer + nodes from their TOML files (use as a context manager)."""

    def __init__(self, workdir: Path, parties: Sequence[str], analysts: Sequence[str], rows: int = 3000) -> None:
        self.dir = workdir
        self.parties = list(parties)
        self.analysts = list(analysts)
        self.base_port = free_port_block(len(self.parties) + 1)
        pooled_here("init", "--parties", ",".join(self.parties), "--analysts", ",".join(self.analysts),
                    "--out", str(workdir), "--base-port", str(self.base_port), "--synthetic-rows", str(rows))
        self.procs: dict[str, Child] = {}
        self.forced: list[str] = []
        self._forks: Any = None
        self._logs: dict[str, list[Path]] = {}

    # -- files --------------------------------------------------------------------------------
    def node_file(self, party: str) -> Path:
        return self.dir / f"node-{party}.toml"

    def analyst_file(self, analyst: str) -> Path:
        return self.dir / f"analyst-{analyst}.toml"

    def audit_file(self, party: str) -> Path:
        return self.dir / "audit" / f"{party}.audit.jsonl"

    def edit_policy(self, party: str, **policy: Any) -> None:
        """Replace keys of one node's [policy] table (before it starts)."""
        self.edit(party, "policy", **policy)

    def edit(self, party: str, table: str, **keys: Any) -> None:
        """Replace keys of one table of a node's file (before it starts)."""
        path = self.node_file(party)
        doc = tomllib.loads(path.read_text())
        doc.setdefault(table, {}).update(keys)
        path.write_text(tomli_w.dumps(doc))

    # -- processes ------------------------------------------------------------------------------
    def _launcher(self) -> Any:
        """The launcher the processes fork from (`parties.local`'s: under pytest the session's), started on
        first use."""
        if self._forks is None:
            from parties import local

            self._forks = local.Launcher.start(local.child_env(), self.dir / "launcher.log")
        return self._forks

    def _spawn(self, name: str, args: list[str]) -> None:
        port_file = self.dir / f"{name}.port"
        port_file.unlink(missing_ok=True)
        logs = self._logs.setdefault(name, [])  # a restarted process writes a log of its own
        logs.append(self.dir / (f"{name}.log" if not logs else f"{name}.{len(logs) + 1}.log"))
        argv = [*args, "--port-file", str(port_file), "--exit-with-parent"]
        self.procs[name] = self._launcher().spawn(argv, logs[-1], self.dir / f"{name}.{len(logs)}.exit")

    def _wait(self, names: Sequence[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while not (self.dir / f"{name}.port").exists():
                if self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited: {self.log(name)[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {timeout} s")
                time.sleep(0.05)

    def log(self, name: str) -> str:
        """What the process `name` wrote, every start of it in order."""
        return "".join(log.read_text(errors="replace") for log in self._logs.get(name, []) if log.exists())

    def start(self) -> None:
        """The dealer and every node at once: each node waits for the dealer's port file before dialing it."""
        self._spawn("dealer", ["dealer", "--config", str(self.dir / "dealer.toml")])
        for p in self.parties:
            self.start_node(p, wait=False, after_dealer=True)
        self._wait(["dealer", *self.parties])

    def start_node(self, party: str, wait: bool = True, after_dealer: bool = False) -> None:
        extra = ["--dealer-port-file", str(self.dir / "dealer.port")] if after_dealer else []
        self._spawn(party, ["node", "--config", str(self.node_file(party)), "--liveness", "3", *extra])
        if wait:
            self._wait([party])

    def signal(self, name: str, sig: signal.Signals) -> None:
        os.kill(self.procs[name].pid, sig)

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait(10)

    def stop(self) -> list[str]:
        """Stop every process (SIGTERM); return the names that had to be killed after 10 s."""
        forced = []
        for proc in self.procs.values():
            if proc.poll() is None:
                for sig in (signal.SIGCONT, signal.SIGTERM):
                    try:
                        os.kill(proc.pid, sig)
                    except ProcessLookupError:
                        pass
        for name, proc in self.procs.items():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                forced.append(name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._forks is not None:
            self._forks.close()  # the session's shared launcher stays (tests.launchers)
            self._forks = None
        return forced

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.forced = self.stop()

    # -- asking -----------------------------------------------------------------------------------
    def query_cli(
        self, analyst: str, text: str, *extra: str, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """`pooled query` as its own process, as an analyst runs it."""
        return pooled("query", "--config", str(self.analyst_file(analyst)), *extra, text, timeout=timeout)

    def query_here(
        self, analyst: str, text: str, *extra: str, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """`pooled query`'s code run in this process (`run_here`): the same exit code, stdout and stderr
        without an interpreter's start-up, for tests of what the command answers rather than of its process."""
        return run_here(["query", "--config", str(self.analyst_file(analyst)), *extra, text], timeout=timeout)

    def ask(self, analyst: str, text: str) -> Result:
        """What `pooled query` does, from this process: one query with an analyst's file through the
        Python client. A refusal or failure raises (ConsortiumError, QueryError) with the reason
        the command would print."""
        from parties.analyst import ask
        from parties.client import ConsortiumClient
        from parties.config import load_analyst
        from parties.tls import TlsMaterial

        settings = load_analyst(self.analyst_file(analyst))
        with ConsortiumClient(TlsMaterial.load(settings.tls.cert_files), dict(settings.parties)) as client:
            return ask(client, settings.roster, text)[0]

    def query_process(self, analyst: str, text: str) -> subprocess.Popen[str]:
        """`pooled query` started in the background (the caller waits for it)."""
        return subprocess.Popen(
            [sys.executable, "-m", "parties", "query", "--config", str(self.analyst_file(analyst)), text],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
        )
