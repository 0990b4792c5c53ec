"""One launcher for a test session's local consortia (per pytest-xdist worker), not one each.

A `LocalConsortium` started without a `launcher` starts its own (`parties.launcher`): a process
that imports the dealer's and the nodes' code, about a CPU-second each time. The network tests
start dozens of consortia in the same environment, so the session fixture `shared_launchers`
stands in for `parties.local.Launcher`: a consortium (a test's own, a module fixture's, the one
`pooled local` starts when run in this process, a benchmark suite's, a `tests.parties.deployment`)
gets the launcher already running for its environment and working directory (one for the
default environment, one for the benchmarks' single-thread nodes, one for a test that set
PGPASSWORD...), and leaves it running when it stops; the fixture closes them all at the end
of the session. Every process of a consortium is still its own fork, stopped by the
consortium by PID. Tests of the launcher itself use `parties.launcher.Launcher` directly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest


def _steady(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without what pytest changes from test to test (PYTEST_CURRENT_TEST names the running one)."""
    return {k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"}


class _Borrowed:
    """The shared launcher as one consortium sees it: it forks through it; closing it leaves it running."""

    def __init__(self, launcher: Any, lock: threading.Lock) -> None:
        self._launcher = launcher
        self._lock = lock

    def spawn(self, argv: list[str], log: Path, exit_file: Path) -> object:
        with self._lock:  # one request and its answer at a time on the launcher's pipes
            return self._launcher.spawn(argv, log, exit_file)

    def close(self, timeout_s: float = 5.0) -> None:
        """Nothing: the session's fixture closes the launcher."""


class SharedLaunchers:
    """`Launcher.start` for `parties.local`: the session's launcher for the environment and working
    directory asked for, started on first use (again if it died)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._shared: dict[tuple[tuple[tuple[str, str], ...], str], Any] = {}

    def start(self, env: Mapping[str, str], log: Path) -> _Borrowed:
        from parties.launcher import Launcher

        key = (tuple(sorted(_steady(env).items())), os.getcwd())
        with self._lock:
            launcher = self._shared.get(key)
            if launcher is None or not launcher.running():
                launcher = Launcher.start(env, self._directory / f"launcher-{len(self._shared)}.log")
                self._shared[key] = launcher
        return _Borrowed(launcher, self._lock)

    def pids(self) -> set[int]:
        """The running shared launchers' process ids."""
        return {launcher.pid for launcher in self._shared.values() if launcher.running()}

    def close(self) -> None:
        for launcher in self._shared.values():
            launcher.close()
        self._shared.clear()


@pytest.fixture(scope="session", autouse=True)
def shared_launchers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLaunchers]:
    """`parties.local.Launcher` for the session: see the module docstring."""
    import parties.local

    launchers = SharedLaunchers(tmp_path_factory.mktemp("launcher"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parties.local, "Launcher", launchers)
        try:
            yield launchers
        finally:
            launchers.close()
