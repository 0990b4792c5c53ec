"""One party's additive share of a secret array.

The secret is the sum of all parties' shares in the ring; `frac` records how many
fractional bits the encoded secret carries (0 for integers), so protocols can tell when
a product needs truncating. Shares combine locally (addition, subtraction, negation,
multiplication by a public integer) with no communication; anything that needs the other
parties lives in `protocols/`. `reconstruct` adds up every party's share of one secret:
what the analyst does with the released outputs, and what tests do to check a protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mpc.ring import Ring


@dataclass(frozen=True)
class Share:
    """This party's share `data` of a secret in `ring` with `frac` fractional bits."""

    data: np.ndarray
    ring: Ring
    frac: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def size(self) -> int:
        return int(self.data.size)

    def _check(self, other: Share) -> None:
        if other.ring != self.ring:
            raise ValueError(f"cannot combine shares of Z_2^{self.ring.bits} and Z_2^{other.ring.bits}")
        if other.frac != self.frac:
            raise ValueError(f"cannot add shares with {self.frac} and {other.frac} fractional bits")

    def __add__(self, other: Share) -> Share:
        self._check(other)
        return Share(self.ring.add(self.data, other.data), self.ring, self.frac)

    def __sub__(self, other: Share) -> Share:
        self._check(other)
        return Share(self.ring.sub(self.data, other.data), self.ring, self.frac)

    def __neg__(self) -> Share:
        return Share(self.ring.neg(self.data), self.ring, self.frac)

    def scale_int(self, k: Any) -> Share:
        """Multiply by public integers `k` (scalar or array); the scale is unchanged."""
        return Share(self.ring.mul(self.data, _as_ring(self.ring, k)), self.ring, self.frac)

    def __getitem__(self, index: Any) -> Share:
        return Share(self.data[index], self.ring, self.frac)

    def reshape(self, *shape: int) -> Share:
        return Share(self.data.reshape(*shape), self.ring, self.frac)

    def with_frac(self, frac: int) -> Share:
        """The same ring elements relabelled with another scale (no arithmetic)."""
        return Share(self.data, self.ring, frac)


def _as_ring(ring: Ring, k: Any) -> Any:
    if isinstance(k, (int, np.integer)):
        return ring.constant(int(k))
    return ring.reduce(np.asarray(k))


def concat(shares: list[Share]) -> Share:
    """Flatten and concatenate shares of one ring and scale into one vector."""
    first = shares[0]
    for s in shares[1:]:
        first._check(s)
    return Share(np.concatenate([s.data for s in shares], axis=None), first.ring, first.frac)


def split_like(flat: Share, like: list[Share]) -> list[Share]:
    """Undo `concat`: cut a flat share into pieces shaped like `like`."""
    out, pos = [], 0
    for s in like:
        out.append(Share(flat.data[pos : pos + s.size].reshape(s.shape), flat.ring, flat.frac))
        pos += s.size
    return out


def reconstruct(shares: Sequence[Share]) -> np.ndarray:
    """The secret behind every party's share of it: their sum in the ring, as ring elements.

    Decode the result with `FixedPoint.decode` (frac > 0) or `Ring.to_signed` (frac 0).
    ValueError if there are no shares or they differ in ring, scale or shape.
    """
    if not shares:
        raise ValueError("nothing to reconstruct: no shares given")
    first = shares[0]
    total = first.data
    for s in shares[1:]:
        first._check(s)
        if s.shape != first.shape:
            raise ValueError(f"cannot add shares of shapes {first.shape} and {s.shape}")
        total = first.ring.add(total, s.data)
    return total
