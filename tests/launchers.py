"""One launcher for a test session's local consortia (per pytest-xdist worker), not one each.

A `LocalConsortium` started without a `launcher` starts its own (`parties.launcher`): a process
that imports the dealer's and the nodes' code, about a CPU-second each time. The network tests
start dozens of consortia in the same environment, so the session fixture `shared_launchers`
stands in for `parties.local.Launcher`: a consortium (a test's own, a module fixture's, or the one
`pooled local` starts when run in this process) whose environment and working directory are
the session's default gets the launcher already running for them, and leaves it running when
it stops; the fixture closes it at the end of the session. A consortium in any other
environment (a test that set PGPASSWORD, the benchmarks' single-thread nodes) gets a launcher
of its own, as without the fixture. Every process of a consortium is still its own fork, stopped
by the consortium by PID. Tests of the launcher itself use `parties.launcher.Launcher` directly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest


def _steady(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without what pytest changes from test to test (PYTEST_CURRENT_TEST names the running one)."""
    return {k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"}


class _Borrowed:
    """The shared launcher as one consortium sees it: it forks through it; closing it leaves it running."""

    def __init__(self, launcher: object, lock: threading.Lock) -> None:
        self._launcher = launcher
        self._lock = lock

    def spawn(self, argv: list[str], log: Path, exit_file: Path) -> object:
        with self._lock:  # one request and its answer at a time on the launcher's pipes
            return self._launcher.spawn(argv, log, exit_file)  # type: ignore[attr-defined]

    def close(self, timeout_s: float = 5.0) -> None:
        """Nothing: the session's fixture closes the launcher."""


class SharedLaunchers:
    """`Launcher.start` for `parties.local`: the session's launcher for the default environment and
    working directory (started on first use, again if it died), a fresh one for any other."""

    def __init__(self, directory: Path) -> None:
        from parties.local import child_env

        self._directory = directory
        self._env = _steady(child_env())
        self._cwd = os.getcwd()
        self._lock = threading.Lock()
        self._shared: object | None = None

    def start(self, env: Mapping[str, str], log: Path) -> object:
        from parties.launcher import Launcher

        if _steady(env) != self._env or os.getcwd() != self._cwd:
            return Launcher.start(env, log)
        with self._lock:
            if self._shared is None or not self._shared.running():  # type: ignore[attr-defined]
                self._shared = Launcher.start(env, self._directory / "launcher.log")
        return _Borrowed(self._shared, self._lock)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()  # type: ignore[attr-defined]
            self._shared = None


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
