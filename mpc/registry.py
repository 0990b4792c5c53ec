"""Read-only tables of named things, extended only by making a new table.

Dealer material kinds (`mpc.material.with_kinds`) and a node's jobs
(`parties.jobs.with_jobs`) are such tables: built once, passed explicitly, never
changed in place, so no module holds a registry that code elsewhere could alter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def extended(base: Mapping[str, N], extra: Iterable[N], what: str) -> Mapping[str, N]:
    """A new read-only table: `base` plus `extra` by name; ValueError names a `what` defined twice."""
    table = dict(base)
    for item in extra:
        if item.name in table:
            raise ValueError(f"{what} {item.name!r} is defined twice")
        table[item.name] = item
    return MappingProxyType(table)
