"""Dealer material for comparisons: a random mask in arithmetic and bitwise form, plus a daBit.

`cmp_mask` gives, per element: [r] additively shared in the ring; the bits of r XOR-shared
and packed into words (one word per 64 bits: 1 for Z_2^64, 2 for Z_2^128, low word first);
and a daBit — a random bit s XOR-shared (bit 0 of a word) and additively shared — for
turning the circuit's output bit back into an arithmetic share. Only the bit-decomposition
and the additive daBit are derived, so the dealer sends the last party 2-3 words per element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.material import Component, MaterialKind, Secrets
from mpc.ring import Ring

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
    return [Component("r", "arith", (n,), _bits(p)), Component("s", "xor", (n,))]


def _cmp_derived(p: dict[str, Any]) -> list[Component]:
    n = _n(p)
    return [Component("r_bits", "xor", (n, _bits(p) // 64)), Component("s_arith", "arith", (n,), _bits(p))]


def _cmp_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = Ring(_bits(p))
    bit = s["s"] & np.uint64(1)
    return {"r_bits": to_words(ring, s["r"]), "s_arith": ring.reduce(bit if ring.native else bit.astype(object))}


CMP_MASK = MaterialKind("cmp_mask", _cmp_free, _cmp_derived, _cmp_derive)
