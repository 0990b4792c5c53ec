"""Local consortia for the benchmark suites: started on first use, shared by a group of tasks, always stopped.

Starting a dealer and its nodes costs seconds, so the tasks that measure one configuration
(party count, emulated RTT, data) share one `ConsortiumSession`: the first task that needs
it starts it, and `guarded_tasks` stops it after the group's last task, or at once when a
task raises (the benchmark command stops at an exception, so the last task would never
run). An atexit hook covers an interrupted run. Every node runs with `NODE_ENV`: one
compute thread (BLAS/OpenMP pinned to 1), as the peers' processes have, and
`LocalConsortium`'s malloc tuning.

The suites' data files (Parquet, one per party) live in a `Scratch` directory, written
once per key and removed after the suite's last task or at exit.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks.framework import SINGLE_THREAD_ENV, Row, Task
from parties.client import ConsortiumClient
from parties.local import FAST_MALLOC_ENV, LocalConsortium

NAMES = ("a", "b", "c", "d", "e", "f", "g", "h")
NODE_ENV: Mapping[str, str] = {**FAST_MALLOC_ENV, **SINGLE_THREAD_ENV}
"""The nodes' environment (see the module docstring)."""


def party_names(n: int) -> list[str]:
    """The parties' names: "a".."h" for up to eight, "p0".."p{n-1}" beyond."""
    return list(NAMES[:n]) if n <= len(NAMES) else [f"p{i}" for i in range(n)]


class ConsortiumSession:
    """One `LocalConsortium` and its analyst client, started lazily (see the module docstring).

    `data`, if given, returns {party: Parquet file} when the consortium starts. `relay_rtt_ms`
    routes every party-to-party and dealer link through a `benchmarks.wan.DelayRelay` adding
    that round-trip time (0 still relays: the relay counts the bytes on the wire); None
    connects directly. Also a context manager: `with ConsortiumSession(...) as session`.
    """

    def __init__(self, names: Sequence[str], data: Callable[[], Mapping[str, Path]] | None = None,
                 relay_rtt_ms: float | None = None) -> None:
        self.names = list(names)
        self.relay_rtt_ms = relay_rtt_ms
        self._data = data
        self._consortium: LocalConsortium | None = None
        self._client: ConsortiumClient | None = None
        self.relay: Any = None
        """The running `DelayRelay`, if any (its `stats()` count the bytes it forwarded)."""

    @property
    def started(self) -> bool:
        return self._consortium is not None

    def client(self) -> ConsortiumClient:
        """The analyst client, starting the relay, dealer and nodes on first use."""
        if self._client is None:
            atexit.register(self.close)
            try:
                if self.relay_rtt_ms is not None:
                    from benchmarks.wan import DelayRelay

                    self.relay = DelayRelay(self.relay_rtt_ms)
                    self.relay.start()
                data = None if self._data is None else dict(self._data())
                self._consortium = LocalConsortium(self.names, data=data, env=NODE_ENV, relay=self.relay,
                                                   bench_jobs=True)
                self._consortium.start()
                self._client = self._consortium.client()
            except BaseException:
                self.close()
                raise
        return self._client

    def close(self) -> None:
        """Stop the processes (by PID, in `LocalConsortium.stop`) and the relay (idempotent)."""
        atexit.unregister(self.close)
        client, consortium, relay = self._client, self._consortium, self.relay
        self._client, self._consortium, self.relay = None, None, None
        try:
            if client is not None:
                client.close()
        finally:
            try:
                if consortium is not None:
                    consortium.stop()
            finally:
                if relay is not None:
                    relay.close()

    def __enter__(self) -> ConsortiumSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def guarded_tasks(cleanup: Callable[[], None], tasks: Sequence[Task]) -> list[Task]:
    """`tasks` such that `cleanup()` runs after the last one, and at once if any of them raises."""

    def run(task: Task, last: bool) -> list[Row]:
        try:
            rows = task.run()
        except BaseException:
            cleanup()
            raise
        if last:
            cleanup()
        return rows

    return [Task(t.label, partial(run, t, i == len(tasks) - 1)) for i, t in enumerate(tasks)]


class Scratch:
    """A temporary directory of data files, each set written once per key; removed by `remove` or at exit."""

    def __init__(self, prefix: str = "pooled-bench-") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self._written: dict[str, dict[str, Path]] = {}
        atexit.register(self.remove)

    def files(self, key: str, write: Callable[[Path], Mapping[str, Path]]) -> dict[str, Path]:
        """{party: file} that `write(directory)` wrote for `key` (called on the first request only)."""
        if key not in self._written:
            directory = self.root / key
            directory.mkdir(parents=True)
            self._written[key] = dict(write(directory))
        return self._written[key]

    def remove(self) -> None:
        atexit.unregister(self.remove)
        self._written.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def cohort_files(directory: Path, names: Sequence[str], rows: int, seed: int) -> dict[str, Path]:
    """Each party's synthetic cohort (`queries.synth.cohort`, seed + its index) as `<name>.parquet`."""
    from queries.synth import cohort

    files = {}
    for i, name in enumerate(names):
        files[name] = directory / f"{name}.parquet"
        cohort(rows, seed=seed + i).to_parquet(files[name])
    return files
