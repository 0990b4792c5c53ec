"""Tests here that start processes (marked network or peers) run the benchmark harness: they are also `bench`."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        here = HERE in Path(item.path).resolve().parents
        if here and (item.get_closest_marker("network") or item.get_closest_marker("peers")):
            item.add_marker(pytest.mark.bench)
