"""A whole consortium on one machine: a dealer and n party nodes as real processes.

`LocalConsortium` is a context manager. On entry it starts a launcher (`parties.launcher`: one
process that imports the dealer's and the nodes' code once, then forks each of them), writes
certificates into a working directory meanwhile (keys mode 0600, the CA key in its own
`ca-private/`), starts the dealer and every node (`pooled dealer ...`, `pooled node ...`; a
node's `--data` a file or a database URL: `data`) at once, each on 127.0.0.1 with an ephemeral
port read back from its port file, and waits until all are serving: each node reads the
dealer's address from the dealer's port file (`--dealer-port-file`). `prepare()` starts the
launcher ahead, so that its imports overlap a caller's own checks. On exit it stops every
process it started, by PID: SIGTERM, then SIGKILL after a timeout, then the launcher.
Processes also watch their parent (the launcher, which ends with the process that started
it) and stop if it dies. Consortia started one after another (a test session) may share one
launcher (`launcher`, started with `Launcher.start(child_env(), log)`), so that the code is
imported once for all of them; its owner closes it. This backs the demos, `pooled local`, the
network tests and the benchmarks.

Its nodes run queries only, like deployed ones; `bench_jobs=True` starts them with
`--bench-jobs`, adding the demo and benchmark jobs (`product`, `secure_sum`,
`repeat_mul`, `bench_*`), for `pooled demo-core`, the benchmarks and the tests of those jobs.

With a `relay` (any object with `front(name)` and `connect(name, address)`, such as the
benchmarks' latency-injecting `benchmarks.wan.DelayRelay`), every party-to-party link and
every node-to-dealer link goes through the relay: each node is told the relay's front
for the dealer and for each peer (fixed `--peer` addresses, which the node prefers to the
dealer's directory), and to advertise the port of its data front (`data_front(name)`,
`--advertise-data-port`), which peers dial on the relay's host for their messages to it;
the fronts are pointed at the real addresses (data ports from each node's Status) once
those are known. The analyst still talks to the nodes directly (`addresses` are the real ones), so
a WAN benchmark delays the MPC traffic, not the analyst's request.

The launcher, and so every process it forks, runs with `MALLOC_MMAP_THRESHOLD_`,
`MALLOC_TRIM_THRESHOLD_` and `MALLOC_ARENA_MAX=1` (unless `env` says otherwise) so that glibc
keeps freed memory in one heap and reuses it instead of returning it to the system: otherwise
every fresh 8 MB array (numpy results, gRPC buffers in other threads' arenas) costs thousands
of page faults, which measured as the largest single cost of a 1,000,000-element
multiplication on this machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import parties
from parties.certs import CA_KEY, CertFiles, Identity, create_consortium
from parties.launcher import Child, Launcher
from parties.lifecycle import Lifecycle

if TYPE_CHECKING:
    from parties.client import ConsortiumClient
    from queries.result import Result

FAST_MALLOC_ENV: Mapping[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 32),
    "MALLOC_ARENA_MAX": "1",
}


class LaunchError(RuntimeError):
    """A process of the local consortium failed to start."""


class Relay(Protocol):
    """Something that stands between processes: dial `front(name)` to reach what `connect(name, ...)` names."""

    def front(self, name: str) -> str:
        """The host:port to dial instead of `name` (the same answer for the same name)."""
        ...

    def connect(self, name: str, address: str) -> None:
        """Forward what arrives at `front(name)` to `address`."""
        ...


def data_front(name: str) -> str:
    """The relay front standing for node `name`'s data port."""
    return f"{name}/data"


class LocalConsortium(Lifecycle):
    """Dealer + party nodes as subprocesses on 127.0.0.1 (use as a context manager)."""

    def __init__(
        self,
        parties: Sequence[str] = ("a", "b", "c"),
        *,
        analyst: str = "analyst",
        workdir: str | Path | None = None,
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 5.0,
        node_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        data: Mapping[str, str | Path] | None = None,
        audit_dir: str | Path | None = None,
        relay: Relay | None = None,
        bench_jobs: bool = False,
        launcher: Launcher | None = None,
    ) -> None:
        self.party_names = list(parties)
        self.analyst = analyst
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._node_args = list(node_args)
        self._data = dict(data or {})  # checked and resolved on start
        self._audit_dir = Path(audit_dir).resolve() if audit_dir is not None else None
        self._env = dict(FAST_MALLOC_ENV if env is None else env)
        self._relay = relay
        self._bench_jobs = bench_jobs
        if launcher is not None and env is not None:
            raise ValueError("a shared launcher's environment is its own: give env to Launcher.start (child_env)")
        self._shared_launcher = launcher
        self._launcher: Launcher | None = None
        self._procs: dict[str, Child] = {}
        self._logs: dict[str, Path] = {}
        self.addresses: dict[str, str] = {}
        self.dealer_address = ""
        self.workdir = Path()
        self._own_workdir = False

    # -- paths ------------------------------------------------------------------------------------
    @property
    def certs_dir(self) -> Path:
        return self.workdir / "certs"

    @property
    def ca_key(self) -> Path:
        """The consortium CA's private key, apart from every member's files (to add members in tests)."""
        return self.workdir / "ca-private" / CA_KEY

    def analyst_files(self) -> CertFiles:
        return CertFiles.in_dir(self.certs_dir, Identity.analyst(self.analyst))

    def pid(self, name: str) -> int:
        """PID of a node (by party name) or of the dealer ("dealer")."""
        return self._procs[name].pid

    def log(self, name: str) -> str:
        return self._logs[name].read_text(errors="replace")

    # -- lifecycle (a `with` block starts and stops it: `parties.lifecycle`) ----------------------
    def prepare(self) -> None:
        """Make the working directory and start the launcher, which imports the processes' code
        meanwhile (`parties.launcher`); nothing is read and nothing listens yet. `start` does this
        first if it is not done: a caller that checks its input first calls it before the checks."""
        if self._launcher is not None:
            return
        if self._workdir_arg is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="pooled-local-"))
            self._own_workdir = True
        else:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        self._launcher = self._shared_launcher or Launcher.start(child_env(self._env), self.workdir / "launcher.log")

    def start(self) -> None:
        try:
            self.prepare()
            data = {name: _data_arg(path) for name, path in self._data.items()}
            create_consortium(self.certs_dir, self.party_names, dealer=True, analysts=[self.analyst],
                              ca_key=self.ca_key)
            self._spawn("dealer", ["dealer", "--certs", str(self.certs_dir)])
            relay = self._relay
            dealer_for_nodes = ["--dealer-port-file", str(self._port_file("dealer"))]
            if relay is not None:  # the relay's front must lead to the dealer before any node dials it
                self.dealer_address = self._wait_ready(["dealer"])["dealer"]
                dealer_for_nodes = ["--dealer", relay.front("dealer")]
                relay.connect("dealer", self.dealer_address)
            for name in self.party_names:
                args = ["node", "--certs", str(self.certs_dir), "--name", name, *dealer_for_nodes]
                if relay is not None:
                    for other in self.party_names:
                        if other != name:
                            args += ["--peer", f"{other}={relay.front(other)}"]
                    args += ["--advertise-data-port", relay.front(data_front(name)).rsplit(":", 1)[1]]
                if name in data:
                    args += ["--data", data[name]]
                if self._audit_dir is not None:
                    args += ["--audit", str(self._audit_dir / f"{name}.audit.jsonl")]
                if self._bench_jobs:
                    args.append("--bench-jobs")
                self._spawn(name, args + self._node_args)
            ready = self._wait_ready(["dealer", *self.party_names])
            self.dealer_address = ready.pop("dealer")
            self.addresses = ready
            if relay is not None:
                with self.client() as client:
                    for name in self.party_names:
                        relay.connect(name, self.addresses[name])
                        host = self.addresses[name].rsplit(":", 1)[0]
                        relay.connect(data_front(name), f"{host}:{client.status(name).data_port}")
        except BaseException:
            self.stop()
            raise

    def _port_file(self, name: str) -> Path:
        return self.workdir / f"{name}.port"

    def _spawn(self, name: str, args: list[str]) -> None:
        assert self._launcher is not None
        port_file = self._port_file(name)
        port_file.unlink(missing_ok=True)
        log = self.workdir / f"{name}.log"
        argv = [*args, "--listen", "127.0.0.1:0", "--port-file", str(port_file), "--exit-with-parent"]
        self._procs[name] = self._launcher.spawn(argv, log, self.workdir / f"{name}.exit")
        self._logs[name] = log

    def _wait_ready(self, names: list[str]) -> dict[str, str]:
        deadline = time.monotonic() + self._startup_timeout_s
        found: dict[str, str] = {}
        while len(found) < len(names):
            for name in names:
                if name in found:
                    continue
                port_file = self._port_file(name)
                if port_file.exists():
                    found[name] = port_file.read_text().strip()
                elif self._procs[name].poll() is not None:
                    raise LaunchError(f"{name} exited with {self._procs[name].returncode}:\n{self.log(name)[-2000:]}")
            if time.monotonic() > deadline:
                missing = [n for n in names if n not in found]
                raise LaunchError(f"not ready after {self._startup_timeout_s:.0f} s: {missing}")
            if len(found) < len(names):
                time.sleep(0.01)
        return {name: found[name] for name in names}

    def stop(self) -> None:
        """Stop every process started here: SIGTERM, then SIGKILL after the timeout."""
        for proc in self._procs.values():
            if proc.poll() is None:
                _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout_s
        for proc in self._procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGCONT)
                _signal(proc, signal.SIGKILL)
                proc.wait(timeout=5.0)
        self._procs.clear()
        if self._launcher is not None and self._launcher is not self._shared_launcher:
            self._launcher.close(self._stop_timeout_s)
        self._launcher = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._own_workdir = False

    # -- use ----------------------------------------------------------------------------------------
    def client(self) -> ConsortiumClient:
        """An analyst client connected to every node."""
        from parties.client import ConsortiumClient
        from parties.tls import TlsMaterial

        return ConsortiumClient(TlsMaterial.load(self.analyst_files()), self.addresses)

    def query(self, text: str, min_cell: int = 0, yates: bool = False) -> Result:
        """Ask one query as the analyst; the result has `.to_pandas()`, `.to_csv()`, `.to_json()`,
        `.to_table()`. `yates`: a CROSSTAB's chi-square with Yates' continuity correction."""
        from parties.analyst import ask

        with self.client() as client:
            result, _, _ = ask(client, self.party_names, text, min_cell=min_cell, yates=yates)
        return result


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a launcher and so of the processes it forks: this process's, with `env`
    (default `FAST_MALLOC_ENV`) and this checkout first on PYTHONPATH."""
    out = dict(os.environ)
    out.update(FAST_MALLOC_ENV if env is None else env)
    root = str(Path(parties.__file__).resolve().parent.parent)
    out["PYTHONPATH"] = os.pathsep.join([root, out["PYTHONPATH"]]) if out.get("PYTHONPATH") else root
    return out


def _data_arg(data: str | Path) -> str:
    """A node's --data: a file's absolute path, or a database URL as given; NAME=... keeps its name."""
    from queries.source_names import named_spec

    name, text = named_spec(str(data))
    spec = text if "://" in text else str(Path(text).resolve())
    return f"{name}={spec}" if name else spec


def _signal(proc: Child, sig: signal.Signals) -> None:
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
