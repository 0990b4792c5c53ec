"""Kinds of correlated randomness the dealer hands out.

Each kind says which of its components are *free* (uniformly random, so every party can
draw its share from the seed it shares with the dealer) and which are *derived* (a
function of the free secrets, like c = a*b in a Beaver triple). For a derived component,
parties 0..n-2 still draw their shares from their seeds and only the last party receives
a correction share from the dealer — the one message the dealer must send. No computing
party ever holds a whole triple: each sees only its own shares.

Components live in one of two domains: `arith` (additive shares in a ring) and `xor`
(XOR shares of packed uint64 bit-words, for the boolean circuits of comparisons). An
*owned* component is held in the clear by one party (a mask for that party's own private
matrix, used to multiply it with shared values); a *persistent* one is the same in every
request of a session (so a masked matrix can be sent once and reused every iteration).

Kinds are looked up in an explicit read-only table passed to both the party side and the
dealer (`CORE_KINDS` here, extended by `protocols/`); protocols name a kind and its
parameters in a `MaterialRequest`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from mpc.registry import extended
from mpc.ring import Limbs, Ring, ring_of

Domain = Literal["arith", "xor"]
Secrets = dict[str, np.ndarray]


class Drawn(dict[str, np.ndarray]):
    """A request's free secrets as the dealer hands them to a kind's `derive`, with a way to the
    Z_2^64 limbs of the persistent ones (`limbs_of`): split once a session, not once a request."""

    def __init__(self) -> None:
        super().__init__()
        self.splitters: dict[str, Callable[[], Limbs]] = {}


def limbs_of(s: Secrets, name: str) -> Limbs:
    """The Z_2^64 limbs of free secret `name`: those the dealer keeps for a persistent secret, else split now."""
    split = s.splitters.get(name) if isinstance(s, Drawn) else None
    return split() if split is not None else Limbs.of(s[name])


@dataclass(frozen=True)
class Component:
    """One named array of a piece of material: its domain, shape and ring."""

    name: str
    domain: Domain
    shape: tuple[int, ...]
    ring_bits: int = 64
    owner: int | None = None
    """Set for a component one party holds in the clear (a mask of its own private data):
    only that party and the dealer draw it; the other parties receive nothing."""
    persistent: str | None = None
    """Set for a component that must be the same across requests of a session (a mask that
    is reused): its stream is addressed by this name instead of by the request number."""

    @property
    def ring(self) -> Ring:
        return ring_of(self.ring_bits)

    @property
    def nbytes(self) -> int:
        count = math.prod(self.shape)  # math.prod: a tenth of np.prod's cost on a tuple
        return count * (8 if self.domain == "xor" else self.ring_bits // 8)


@dataclass(frozen=True)
class MaterialRequest:
    """What a protocol asks for: a kind and its JSON-able parameters."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "params": self.params}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> MaterialRequest:
        obj = json.loads(text)
        return MaterialRequest(obj["kind"], obj["params"])


@dataclass(frozen=True)
class MaterialKind:
    """How to lay out and derive one kind of correlated randomness."""

    name: str
    free: Callable[[dict[str, Any]], list[Component]]
    derived: Callable[[dict[str, Any]], list[Component]]
    derive: Callable[[dict[str, Any], Secrets], Secrets]


def _shape(params: dict[str, Any], key: str = "shape") -> tuple[int, ...]:
    return tuple(int(d) for d in params[key])


def _bits(params: dict[str, Any]) -> int:
    return int(params.get("ring", 64))


# -- Beaver triples (elementwise) -----------------------------------------------------------
def _triple_free(p: dict[str, Any]) -> list[Component]:
    return [Component("a", "arith", _shape(p), _bits(p)), Component("b", "arith", _shape(p), _bits(p))]


def _triple_derived(p: dict[str, Any]) -> list[Component]:
    return [Component("c", "arith", _shape(p), _bits(p))]


def _triple_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    return {"c": ring_of(_bits(p)).mul(s["a"], s["b"])}


# -- matrix triples: C = A @ B ------------------------------------------------------------------
def _mat_free(p: dict[str, Any]) -> list[Component]:
    return [
        Component("a", "arith", _shape(p, "shape_a"), _bits(p)),
        Component("b", "arith", _shape(p, "shape_b"), _bits(p)),
    ]


def _mat_derived(p: dict[str, Any]) -> list[Component]:
    shape_c = _shape(p, "shape_a")[:-1] + _shape(p, "shape_b")[1:]
    return [Component("c", "arith", shape_c, _bits(p))]


def _mat_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    return {"c": ring_of(_bits(p)).matmul(s["a"], s["b"])}


# -- truncation material: r, r >> f (logical) and msb(r) ------------------------------------
def _trunc_free(p: dict[str, Any]) -> list[Component]:
    return [Component("r", "arith", _shape(p), _bits(p))]


def _trunc_derived(p: dict[str, Any]) -> list[Component]:
    return [Component("r_shift", "arith", _shape(p), _bits(p)), Component("r_msb", "arith", _shape(p), _bits(p))]


def _trunc_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring, f = ring_of(_bits(p)), int(p["f"])
    r = s["r"]
    # r >> f of r without its top bit: the protocol adds the top bit back separately.
    low = ring.sub(r, ring.lshift(ring.reduce(ring.msb(r)), ring.bits - 1))
    return {"r_shift": ring.rshift_logical(low, f), "r_msb": ring.reduce(ring.msb(r))}


# -- boolean AND triples on packed words --------------------------------------------------------
def _bool_free(p: dict[str, Any]) -> list[Component]:
    return [Component("a", "xor", _shape(p)), Component("b", "xor", _shape(p))]


def _bool_derived(p: dict[str, Any]) -> list[Component]:
    return [Component("c", "xor", _shape(p))]


def _bool_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    return {"c": s["a"] & s["b"]}


# -- products of a party's private matrix with a shared vector -------------------------------
def _owned_free(p: dict[str, Any]) -> list[Component]:
    rows, cols = _shape(p, "shape_a")
    vec = rows if p.get("transpose") else cols
    return [
        Component("a", "arith", (rows, cols), _bits(p), owner=int(p["owner"]), persistent=str(p["name"])),
        Component("b", "arith", (vec,), _bits(p)),
    ]


def _owned_derived(p: dict[str, Any]) -> list[Component]:
    rows, cols = _shape(p, "shape_a")
    out = cols if p.get("transpose") else rows
    return [Component("c", "arith", (out,), _bits(p))]


def _owned_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = ring_of(_bits(p))
    if not ring.native:
        return {"c": ring.matmul(s["a"].T if p.get("transpose") else s["a"], s["b"])}
    return {"c": limbs_of(s, "a").times(s["b"], bool(p.get("transpose")))}  # A's limbs split once a session


def _mask_free(p: dict[str, Any]) -> list[Component]:
    return [Component("a", "arith", _shape(p, "shape_a"), _bits(p), owner=int(p["owner"]), persistent=str(p["name"]))]


def _no_components(p: dict[str, Any]) -> list[Component]:
    return []


def _nothing_derived(p: dict[str, Any], s: Secrets) -> Secrets:
    return {}


CORE_KINDS: Mapping[str, MaterialKind] = MappingProxyType(
    {
        "triple": MaterialKind("triple", _triple_free, _triple_derived, _triple_derive),
        "matmul_triple": MaterialKind("matmul_triple", _mat_free, _mat_derived, _mat_derive),
        "trunc": MaterialKind("trunc", _trunc_free, _trunc_derived, _trunc_derive),
        "bool_triple": MaterialKind("bool_triple", _bool_free, _bool_derived, _bool_derive),
        "owned_mask": MaterialKind("owned_mask", _mask_free, _no_components, _nothing_derived),
        "owned_matvec": MaterialKind("owned_matvec", _owned_free, _owned_derived, _owned_derive),
    }
)
"""The kinds the core protocols use; `protocols.material.KINDS` extends this table."""


def with_kinds(base: Mapping[str, MaterialKind], *extra: MaterialKind) -> Mapping[str, MaterialKind]:
    """A new read-only table: `base` plus `extra` kinds (names must be new)."""
    return extended(base, extra, "material kind")


def lookup(kinds: Mapping[str, MaterialKind], name: str) -> MaterialKind:
    try:
        return kinds[name]
    except KeyError:
        raise ValueError(f"unknown kind of dealer material: {name!r}") from None


def correction_bytes(kinds: Mapping[str, MaterialKind], request: MaterialRequest) -> int:
    """Bytes the dealer sends for one request (the derived components of the last party)."""
    return sum(c.nbytes for c in lookup(kinds, request.kind).derived(request.params))
