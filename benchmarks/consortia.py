"""Local consortia for the benchmark suites: started once per configuration, reused, always stopped.

A suite's tasks for one party count (and one emulated RTT) share one `LocalConsortium`:
the first task that needs it starts it, `release` stops it, and `close_all` (registered
by the command, and run at exit) stops whatever an interrupted run left. Every node runs
with one compute thread (BLAS/OpenMP pinned to 1), as the peers do, so the comparison is
thread for thread.
"""

from __future__ import annotations

import atexit
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parties.client import ConsortiumClient
from parties.local import FAST_MALLOC_ENV, LocalConsortium

NAMES = ("a", "b", "c", "d", "e", "f", "g", "h")
ONE_THREAD: Mapping[str, str] = {
    **FAST_MALLOC_ENV,
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class Pool:
    """Running consortia keyed by (parties, rtt_ms, data key); see the module docstring."""

    def __init__(self) -> None:
        self._running: dict[tuple[Any, ...], tuple[LocalConsortium, ConsortiumClient, Any]] = {}
        atexit.register(self.close_all)

    def get(self, parties: int, rtt_ms: float = 0.0, data: Mapping[str, Path] | None = None,
            key: str = "") -> tuple[LocalConsortium, ConsortiumClient]:
        k = (parties, rtt_ms, key)
        if k not in self._running:
            relay = None
            if rtt_ms > 0:
                from benchmarks.wan import DelayRelay

                relay = DelayRelay(rtt_ms)
                relay.start()
            names = list(NAMES[:parties])
            consortium = LocalConsortium(names, env=ONE_THREAD, data=data, relay=relay, bench_jobs=True)
            try:
                consortium.start()
            except BaseException:
                if relay is not None:
                    relay.close()
                raise
            self._running[k] = (consortium, consortium.client(), relay)
        consortium, client, _ = self._running[k]
        return consortium, client

    def release(self, parties: int, rtt_ms: float = 0.0, key: str = "") -> None:
        entry = self._running.pop((parties, rtt_ms, key), None)
        if entry is None:
            return
        consortium, client, relay = entry
        try:
            client.close()
        finally:
            consortium.stop()
            if relay is not None:
                relay.close()

    def close_all(self) -> None:
        for k in list(self._running):
            self.release(*k)
