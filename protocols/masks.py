"""Dealer material for comparisons: a random mask in arithmetic and bitwise form, plus a daBit.

`cmp_mask` gives, for n elements: [r] additively shared in the ring; the bits of r
XOR-shared in the bit-sliced layout of `protocols.boolean` (k rows of lanes(n) words:
row i holds bit i of every element); and a daBit per element — a random bit s XOR-shared
(one row) and additively shared — for turning the circuit's output bit back into an
arithmetic share. Only the bits of r and the additive daBit are derived, so the dealer
sends the last party k bits and one ring element per element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.material import Component, MaterialKind, Secrets
from mpc.ring import Ring
from protocols.boolean import lanes, to_slices, unpack_lanes

_M64 = (1 << 64) - 1


def words_per_element(ring: Ring) -> int:
    return ring.bits // 64


def to_words(ring: Ring, values: np.ndarray) -> np.ndarray:
    """Ring elements to their bits packed in uint64 words, shape (n, words), low word first."""
    flat = np.ravel(values)
    if ring.native:
        return np.asarray(flat, dtype=np.uint64).reshape(-1, 1)
    lo = np.array([int(v) & _M64 for v in flat], dtype=np.uint64)
    hi = np.array([int(v) >> 64 for v in flat], dtype=np.uint64)
    return np.stack([lo, hi], axis=1)


def _n(p: dict[str, Any]) -> int:
    return int(np.prod([int(d) for d in p["shape"]], dtype=np.int64))


def _bits(p: dict[str, Any]) -> int:
    return int(p.get("ring", 64))


def _cmp_free(p: dict[str, Any]) -> list[Component]:
    n = _n(p)
    return [Component("r", "arith", (n,), _bits(p)), Component("s", "xor", (lanes(n),))]


def _cmp_derived(p: dict[str, Any]) -> list[Component]:
    n = _n(p)
    return [Component("r_bits", "xor", (_bits(p), lanes(n))), Component("s_arith", "arith", (n,), _bits(p))]


def _cmp_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = Ring(_bits(p))
    bit = unpack_lanes(s["s"], _n(p))
    s_arith = ring.reduce(bit if ring.native else bit.astype(object))
    return {"r_bits": to_slices(to_words(ring, s["r"])), "s_arith": s_arith}


CMP_MASK = MaterialKind("cmp_mask", _cmp_free, _cmp_derived, _cmp_derive)
