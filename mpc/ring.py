"""The rings Z_2^64 and Z_2^128 on numpy arrays.

Every secret in Pooled lives in one of two rings. Z_2^64 is the fast ring: numpy
`uint64` arrays whose arithmetic wraps by itself, used for anything with one value per
row. Z_2^128 is the precise ring: numpy object arrays of Python ints reduced after each
operation, used for the handful of per-group values at the end of a query (a mean, a
standard deviation, a matrix inverse), where 40 fractional bits are worth more than speed.

A `Ring` is an immutable description plus the arithmetic; arrays are plain numpy arrays,
so protocols can slice, reshape and concatenate them freely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class Ring:
    """Z_2^bits for bits in {64, 128}; element arrays are uint64 (64) or object (128)."""

    bits: int

    def __post_init__(self) -> None:
        if self.bits not in (64, 128):
            raise ValueError(f"unsupported ring Z_2^{self.bits}: use 64 or 128")

    # -- construction -----------------------------------------------------------------
    @property
    def native(self) -> bool:
        """True when elements are numpy uint64 (wrapping is free)."""
        return self.bits == 64

    @property
    def dtype(self) -> Any:
        return np.uint64 if self.native else object

    @property
    def modulus(self) -> int:
        return 1 << self.bits

    @property
    def element_bytes(self) -> int:
        return self.bits // 8

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        if self.native:
            return np.zeros(shape, dtype=np.uint64)
        out = np.empty(shape, dtype=object)
        out.fill(0)
        return out

    def reduce(self, a: Any) -> np.ndarray:
        """Any integer array (or Python ints) reduced into this ring."""
        if self.native:
            arr = np.asarray(a)
            if arr.dtype == np.uint64:
                return arr
            if arr.dtype.kind in "iub":
                return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)
            if arr.dtype == object:
                return np.array([int(v) & _M64 for v in arr.ravel()], dtype=np.uint64).reshape(arr.shape)
            raise TypeError(f"cannot reduce {arr.dtype} into Z_2^64")
        arr = np.asarray(a)
        if arr.dtype.kind in "iub":
            arr = arr.astype(object)
        elif arr.dtype != object:
            raise TypeError(f"cannot reduce {arr.dtype} into Z_2^128")
        return self._wrap(arr)

    def constant(self, value: int) -> Any:
        """A scalar of this ring, safe to combine with element arrays."""
        v = int(value) % self.modulus
        return np.uint64(v) if self.native else v

    # -- arithmetic ---------------------------------------------------------------------
    def add(self, a: np.ndarray, b: Any) -> np.ndarray:
        return a + b if self.native else self._wrap(a + b)

    def sub(self, a: np.ndarray, b: Any) -> np.ndarray:
        return a - b if self.native else self._wrap(a - b)

    def neg(self, a: np.ndarray) -> np.ndarray:
        return (np.uint64(0) - a) if self.native else self._wrap(-a)

    def mul(self, a: np.ndarray, b: Any) -> np.ndarray:
        return a * b if self.native else self._wrap(a * b)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.native:
            return _matmul_u64(a, b)
        return self._wrap(np.dot(a, b))

    def sum(self, a: np.ndarray, axis: int | None = None) -> np.ndarray:
        if self.native:
            return np.asarray(np.sum(a, axis=axis, dtype=np.uint64))
        return self._wrap(np.asarray(np.sum(a, axis=axis)))

    def lshift(self, a: np.ndarray, s: int) -> np.ndarray:
        return (a << np.uint64(s)) if self.native else self._wrap(a * (1 << s))

    def rshift_logical(self, a: np.ndarray, s: int) -> np.ndarray:
        """Unsigned right shift (the k-bit value read as an integer in [0, 2^k))."""
        if self.native:
            return a >> np.uint64(s)
        return np.asarray(np.asarray(a, dtype=object) >> s, dtype=object)

    def rshift_arith(self, a: np.ndarray, s: int) -> np.ndarray:
        """Signed right shift (the value read in two's complement)."""
        if self.native:
            return (a.view(np.int64) >> np.int64(s)).view(np.uint64)
        return self._wrap(self._signed_obj(np.asarray(a, dtype=object)) >> s)

    def msb(self, a: np.ndarray) -> np.ndarray:
        """The top bit of each element as 0/1 integers (uint64 array)."""
        if self.native:
            return a >> np.uint64(63)
        return np.array([int(v) >> 127 for v in np.ravel(a)], dtype=np.uint64).reshape(np.shape(a))

    # -- conversion -----------------------------------------------------------------------
    def to_signed(self, a: np.ndarray) -> np.ndarray:
        """Two's-complement reading: int64 for Z_2^64, Python ints for Z_2^128."""
        if self.native:
            return np.asarray(a).view(np.int64)
        return self._signed_obj(np.asarray(a))

    def from_signed(self, a: Any) -> np.ndarray:
        """Signed integers (int64 array or Python ints) into ring elements."""
        return self.reduce(a)

    def to_bytes(self, a: np.ndarray) -> bytes:
        if self.native:
            return np.ascontiguousarray(a, dtype=np.uint64).tobytes()
        flat = np.ravel(np.asarray(a, dtype=object))
        if flat.size == 0:
            return b""
        lo = (flat & _M64).astype(np.uint64)
        hi = (flat >> 64).astype(np.uint64)
        return np.stack([lo, hi], axis=1).tobytes()

    def from_bytes(self, data: bytes | memoryview, shape: tuple[int, ...]) -> np.ndarray:
        words = np.frombuffer(data, dtype=np.uint64)
        if self.native:
            return words.reshape(shape).copy()
        pairs = words.reshape(-1, 2).astype(object)
        return np.asarray((pairs[:, 1] << 64) | pairs[:, 0], dtype=object).reshape(shape)

    def from_random_bytes(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform ring elements from uniformly random bytes (exactly nbytes(shape))."""
        return self.from_bytes(data, shape)

    def nbytes(self, shape: tuple[int, ...]) -> int:
        return math.prod(shape) * self.element_bytes  # math.prod: a tenth of np.prod's cost on a tuple

    # -- helpers ----------------------------------------------------------------------------
    def _wrap(self, a: Any) -> np.ndarray:
        return np.asarray(np.asarray(a, dtype=object) & (self.modulus - 1), dtype=object)

    def _signed_obj(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=object)
        return np.asarray(a - ((a >> (self.bits - 1)) << self.bits), dtype=object)


def _matmul_u64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact uint64 matrix product mod 2^64.

    numpy's integer matmul has no BLAS path, so the product is assembled from float64
    BLAS products of 22-bit limbs (only the limb pairs that land below bit 64). Each
    partial product is exact because the inner dimension is cut into blocks of 512,
    which keeps every partial sum below 2^53.
    """
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    a_limbs = _limbs(a)
    b_limbs = _limbs(b)
    inner = a.shape[-1]
    out: np.ndarray | None = None
    for lo in range(0, inner, _BLOCK):
        hi = min(inner, lo + _BLOCK)
        for i in range(3):
            for j in range(3 - i):
                part = np.matmul(a_limbs[i][..., lo:hi], b_limbs[j][lo:hi, ...]).astype(np.uint64)
                part <<= np.uint64(_LIMB_BITS * (i + j))
                out = part if out is None else out + part
    assert out is not None
    return out


def _limbs(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """A uint64 array as three float64 arrays of 22 bits each: a = sum_i limb_i 2^(22 i)."""
    a = np.asarray(a, dtype=np.uint64)
    mask = np.uint64((1 << _LIMB_BITS) - 1)
    return tuple(((a >> np.uint64(_LIMB_BITS * i)) & mask).astype(np.float64) for i in range(3))


@dataclass(frozen=True)
class Limbs:
    """A uint64 matrix kept as its three float64 limbs, for a matrix multiplied many times.

    `Ring.matmul` in Z_2^64 splits both factors into limbs on every call; a matrix that
    meets many vectors (a published masked matrix, reused in every Newton step) is split
    once here and `times` converts only the vector. The result is the exact product mod
    2^64, the same bits as `Ring.matmul`.
    """

    parts: tuple[np.ndarray, ...]

    @staticmethod
    def of(a: np.ndarray) -> Limbs:
        return Limbs(_limbs(a))

    def times(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        """(M' b if `transpose` else M b) mod 2^64 for a uint64 vector or matrix b. Each limb of M meets
        the limbs of b it needs (those that land below bit 64) in one BLAS product, side by side."""
        limbs_a = [p.T if transpose else p for p in self.parts]
        vector = b.ndim == 1
        limbs_b = [v[:, None] if vector else v for v in _limbs(b)]
        k = limbs_b[0].shape[1]
        inner = limbs_a[0].shape[-1]
        out = np.zeros((limbs_a[0].shape[0], k), dtype=np.uint64)
        for lo in range(0, inner, _BLOCK):
            hi = min(inner, lo + _BLOCK)
            for i in range(3):
                side = np.concatenate([limbs_b[j][lo:hi] for j in range(3 - i)], axis=1)
                prod = np.matmul(limbs_a[i][:, lo:hi], side)
                for j in range(3 - i):
                    part = prod[:, j * k : (j + 1) * k].astype(np.uint64)
                    part <<= np.uint64(_LIMB_BITS * (i + j))
                    out += part
        return out[:, 0] if vector else out


_LIMB_BITS = 22
_BLOCK = 512


RING64 = Ring(64)
RING128 = Ring(128)


def ring_of(bits: int) -> Ring:
    """The ring Z_2^bits, the shared instance (a Ring is immutable: no need to make one per use)."""
    return RING64 if bits == 64 else RING128 if bits == 128 else Ring(bits)
