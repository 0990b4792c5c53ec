"""Suite-wide rules: every test that starts a Python process says so with a marker, and
Hypothesis draws the same examples on every CI run.

The lanes (markers registered in pyproject.toml):
- `python -m pytest`: everything, on as many workers as the machine has cores (pytest-xdist,
  `-n auto --dist loadgroup` in pyproject.toml; `-n 0` runs in this process);
- `python -m pytest -m "not network and not bench"`: the fast lane, in-process tests only.

The tests of a file that share a module-scoped fixture and start processes run on one worker
(an `xdist_group` per file), so a consortium that the fixture starts is started once; the
rest spread test by test. Files whose tests start processes are collected first (the longest
tests: started last, one would keep a single worker busy after the other ran out of work).

A local consortium started in a test forks its processes from the session's launcher
(`tests.launchers`: one per worker) instead of starting a launcher of its own.

A test starts a Python process only if it carries one of `PROCESS_MARKERS`: while any other
test sets up or runs, `subprocess.Popen` of a Python interpreter fails the test with the
reason, so a consortium (LocalConsortium, `pooled init` + `pooled node`, `pooled local`) can
never slip into the fast lane unmarked. Other programs (e.g. matplotlib asking fc-list for
fonts) are not affected.

Compiled modules are cached (`__pycache__`) even where PYTHONDONTWRITEBYTECODE is set: each
worker and each process a test starts would otherwise compile the project and re-rewrite
every test module's asserts (about 3.5 CPU-s per worker), and reading a cache is never turned off.

After collection, everything alive (the project, the libraries, the collected tests) is moved out of
the garbage collector's sight (`gc.freeze`): none of it is garbage, and every full collection during
the tests would otherwise walk all of it again.
"""

from __future__ import annotations

import gc
import sys

sys.dont_write_bytecode = False  # before the project and the test modules are imported (docstring)

import os  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from tests.launchers import shared_launchers  # noqa: F401, E402  (autouse: one launcher per session for local consortia)
from tests.pg import pg_db, postgres  # noqa: F401, E402  (fixtures: registered here, one PostgreSQL server per session)

PROCESS_MARKERS = ("network", "bench", "peers", "subprocess")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def runs_python(args: Any) -> bool:
    """Whether Popen `args` (a string or a sequence) start a Python interpreter."""
    argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
    if not argv:
        return False
    program = os.fsdecode(argv[0])
    if isinstance(args, str | bytes):  # a command line: its first word
        program = (program.split() or [""])[0]
    return program == sys.executable or Path(program).name.startswith("python")


def refusing_popen(nodeid: str) -> type[subprocess.Popen]:
    """subprocess.Popen as the test `nodeid` without a process marker gets it: refusing Python."""
    real = subprocess.Popen

    class RefusingPopen(real):  # type: ignore[valid-type, misc]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            if runs_python(args):
                pytest.fail(
                    f"{nodeid} starts a Python process ({args!r}) but carries none of the markers "
                    f"{', '.join(PROCESS_MARKERS)}: mark it (network for real nodes over gRPC) so the fast lane "
                    "stays in-process",
                    pytrace=False,
                )
            super().__init__(args, *rest, **kwargs)

    return RefusingPopen


def _guarded(item: pytest.Item) -> Iterator[None]:
    if any(item.get_closest_marker(m) for m in PROCESS_MARKERS):
        yield
        return
    real = subprocess.Popen
    subprocess.Popen = refusing_popen(item.nodeid)  # type: ignore[misc]
    try:
        yield
    finally:
        subprocess.Popen = real  # type: ignore[misc]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _guarded(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _guarded(item)


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module-scoped fixture of its own file (a consortium started once for it)."""
    file = item.nodeid.split("::")[0]
    infos = getattr(item, "_fixtureinfo", None)
    defs = [] if infos is None else [d for ds in infos.name2fixturedefs.values() for d in ds]
    return any(d.scope == "module" and d.baseid == file for d in defs)


HEAVY_FIRST = ("peers", "bench", "network")
"""Files with tests of these markers run first, in this order: their tests are the longest, and a long one
started last would leave the other worker idle at the end of the run."""


def _weight(item: pytest.Item) -> int:
    """The item's rank in HEAVY_FIRST (len(HEAVY_FIRST) for an in-process test)."""
    return next((i for i, m in enumerate(HEAVY_FIRST) if item.get_closest_marker(m)), len(HEAVY_FIRST))


def heavy_files_first(items: list[pytest.Item]) -> None:
    """Sort `items` in place by their file's heaviest test, keeping each file's tests together and in
    order (so a module-scoped fixture is still set up once per file without pytest-xdist)."""
    files: dict[str, int] = {}
    for item in items:
        file = item.nodeid.split("::")[0]
        files[file] = min(files.get(file, len(HEAVY_FIRST)), _weight(item))
    items.sort(key=lambda item: files[item.nodeid.split("::")[0]])


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(m) for m in PROCESS_MARKERS) and _shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    heavy_files_first(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()  # the modules and test items live to the end: later collections skip them (docstring)
