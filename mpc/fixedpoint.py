"""Fixed-point encoding of real numbers into ring elements.

A real x is stored as the ring element round(x * 2^f) (two's complement), where f is the
number of fractional bits. Two settings are used:

* `FAST` — Z_2^64 with f = 20: resolution 2^-20 ~ 9.5e-7. Values below 2^41 ~ 2.2e12 can
  be stored and added; a product is safe while |x * y| < 2^(62 - 2f) = 2^22 ~ 4.2e6,
  because truncation needs the double-scaled product below 2^62.
* `PRECISE` — Z_2^128 with f = 40: resolution 2^-40 ~ 9.1e-13, values below 2^85, products
  safe while |x * y| < 2^46 ~ 7.0e13. Used for the few per-group values at the end of a
  query, where precision is cheap.

Encoding is refused, never wrapped: NaN, infinities and values outside the storable range
raise `EncodingError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mpc.errors import EncodingError
from mpc.ring import RING64, RING128, Ring


@dataclass(frozen=True)
class FixedPoint:
    """A ring and a number of fractional bits."""

    ring: Ring
    frac: int

    def __post_init__(self) -> None:
        if not 0 <= self.frac <= self.ring.bits // 2 - 2:
            raise ValueError(f"{self.frac} fractional bits do not fit Z_2^{self.ring.bits}")

    @property
    def scale(self) -> int:
        return 1 << self.frac

    @property
    def max_abs(self) -> float:
        """Magnitudes must stay strictly below this to be encoded (headroom for sums)."""
        return float(2 ** (self.ring.bits - 3 - self.frac))

    @property
    def max_product(self) -> float:
        """Largest |x * y| a multiplication followed by truncation handles exactly."""
        return float(2 ** (self.ring.bits - 2 - 2 * self.frac))

    @property
    def resolution(self) -> float:
        return 2.0 ** -self.frac

    def encode(self, values: Any, frac: int | None = None) -> np.ndarray:
        """Reals (or integers) to ring elements with `frac` (default: self.frac) fractional bits."""
        f = self.frac if frac is None else frac
        bound = 2 ** (self.ring.bits - 3 - f)
        arr = np.asarray(values)
        if arr.dtype.kind in "iub" or (arr.dtype == object and all(isinstance(v, int) for v in arr.ravel())):
            ints = [int(v) for v in arr.ravel()]
            if any(abs(v) >= bound for v in ints):
                raise EncodingError(_range_message(arr, float(bound)))
            if self.ring.native:
                return (arr.astype(np.int64) << np.int64(f)).view(np.uint64)
            return self.ring.reduce(np.array([v << f for v in ints], dtype=object).reshape(arr.shape))
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise EncodingError(f"cannot encode values of type {arr.dtype} as numbers") from None
        if arr.size and not np.isfinite(arr).all():
            bad = "NaN" if np.isnan(arr).any() else "an infinite value"
            raise EncodingError(f"cannot encode {bad} in fixed point")
        if arr.size and (np.abs(arr) >= bound).any():
            raise EncodingError(_range_message(arr, float(bound)))
        scaled = np.round(arr * float(1 << f))
        if self.ring.native:
            return scaled.astype(np.int64).view(np.uint64)
        return self.ring.reduce(np.array([int(v) for v in scaled.ravel()], dtype=object).reshape(arr.shape))

    def decode(self, elements: np.ndarray, frac: int | None = None) -> np.ndarray:
        """Ring elements with `frac` fractional bits back to float64."""
        f = self.frac if frac is None else frac
        signed = self.ring.to_signed(np.asarray(elements))
        if self.ring.native:
            return signed.astype(np.float64) / float(1 << f)
        flat = [int(v) / (1 << f) for v in np.ravel(signed)]
        return np.array(flat, dtype=np.float64).reshape(np.shape(signed))

    def decode_int(self, elements: np.ndarray) -> np.ndarray:
        """Ring elements holding integers (f = 0) to exact int64 (or Python ints)."""
        return self.ring.to_signed(np.asarray(elements))


def _range_message(arr: np.ndarray, bound: float) -> str:
    return (
        f"value out of the fixed-point range: magnitudes must stay below {bound:.4g} "
        f"(largest given: {float(np.max(np.abs(arr.astype(np.float64)))):.4g})"
    )


FAST = FixedPoint(RING64, 20)
PRECISE = FixedPoint(RING128, 40)
