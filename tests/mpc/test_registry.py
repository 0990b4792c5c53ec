"""Read-only tables of material kinds: extending makes a new table; a name defined twice is refused."""

from __future__ import annotations

import pytest

from mpc.material import CORE_KINDS, MaterialKind, with_kinds


def _kind(name: str) -> MaterialKind:
    return MaterialKind(name, lambda p: [], lambda p: [], lambda p, s: {})


def test_extending_makes_a_new_read_only_table() -> None:
    table = with_kinds(CORE_KINDS, _kind("extra"))
    assert set(table) == set(CORE_KINDS) | {"extra"} and "extra" not in CORE_KINDS
    with pytest.raises(TypeError):
        table["other"] = _kind("other")  # type: ignore[index]


def test_a_kind_defined_twice_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="material kind 'triple' is defined twice"):
        with_kinds(CORE_KINDS, _kind("triple"))
    with pytest.raises(ValueError, match="material kind 'x' is defined twice"):
        with_kinds({}, _kind("x"), _kind("x"))
