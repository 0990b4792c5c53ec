"""Order-preserving integer keys of a party's values, for the secret quantile search.

Each party turns its own values into unsigned keys in plaintext: x < y implies
key(x) <= key(y), and ties stay ties. The search (`protocols.rank_select`) finds the key
of a rank without anyone learning it, and `queries.quantiles` turns that key back into a
fixed-point value in MPC. The narrower the keys, the fewer search steps, so:

* integer columns: key = x + 2^e, e + 2 bits, exact, where 2^e is the public power of two
  at or above the column's largest |x| over every party's kept rows (`queries.scaling.exponents`
  opens e; e is taken in [0, 45]): 10 bits for values below 2^8 instead of 46;
* other numeric columns with e <= 18 (max |x| <= 2^18): a fixed-point key
  floor(x 2^40) + 2^(e + 40) of e + 42 bits (e taken at least -40), which orders the values
  as the result's resolution of 2^-40 does: 48 bits for values below 2^6 instead of 60;
* other numeric columns: a compact floating-point key of 60 bits — sign, a 7-bit
  exponent code and float64's 52 mantissa bits. Values of magnitude below 2^-42
  (2.3e-13, under the result's resolution of 2^-40) count as zero.

Both need |x| < 2^45 (3.5e13): the result is computed with 40 fractional bits in Z_2^128,
where the interpolation's product needs that headroom. A party holding a value beyond it
refuses the query (the message names no value).
"""

from __future__ import annotations

import math

import numpy as np

from queries.errors import QueryError

VALUE_BITS = 45
"""Values of MEDIAN/QUANTILE columns must satisfy |x| < 2^VALUE_BITS."""

TINY_BITS = 42
"""Values with |x| < 2^-TINY_BITS count as zero in the floating-point key."""

INT_KEY_BITS = VALUE_BITS + 1
FLOAT_KEY_BITS = 60
_MANT = 52
_EXP_BIAS = TINY_BITS + 1  # exponent code E' = e + 43 for |x| = 2^e (1 + M / 2^52), e in [-42, 44]
_SIGN = 1 << (FLOAT_KEY_BITS - 1)


def int_scale(scale: int) -> int:
    """The integer key's offset exponent for an opened column scale e (max |x| <= 2^e): e in [0, 45]."""
    return min(max(scale, 0), VALUE_BITS)


def key_bits(integer: bool, scale: int = VALUE_BITS) -> int:
    """The key width for max |x| <= 2^e: e + 2 for integers (46 at most, as |x| < 2^45); for
    other columns e + 42 with e <= 18 (the fixed-point key), else 60."""
    if integer:
        return min(int_scale(scale) + 2, INT_KEY_BITS)
    e = fixed_scale(scale)
    return FLOAT_KEY_BITS if e is None else e + FIXED_FRAC + 2


FIXED_FRAC = 40
"""Fractional bits of the fixed-point key (the result's resolution)."""

FIXED_MAX_SCALE = FLOAT_KEY_BITS - FIXED_FRAC - 2
"""Float columns with max |x| <= 2^18 get the fixed-point key: at most 60 bits, as the float key."""


def fixed_scale(scale: int) -> int | None:
    """The fixed-point key's offset exponent e for a float column's opened scale, None beyond 2^18."""
    return max(scale, -FIXED_FRAC) if scale <= FIXED_MAX_SCALE else None


def fixed_keys(values: np.ndarray, scale: int) -> np.ndarray:
    """floor(x 2^40) + 2^(e + 40) for |x| <= 2^e, e = `fixed_scale(scale)` (uint64), e + 42 bits."""
    e = fixed_scale(scale)
    assert e is not None
    low = np.floor(np.asarray(values, dtype=np.float64) * 2.0**FIXED_FRAC).astype(np.int64)
    return (low + (1 << (e + FIXED_FRAC))).astype(np.uint64)


def scale_of(values: np.ndarray) -> int:
    """The least e with max |x| <= 2^e (plaintext; what `queries.scaling.exponents` opens for the
    pooled values, for predictions and tests), -60 for no values or only zeros."""
    top = float(np.max(np.abs(values))) if len(values) else 0.0
    if top == 0:
        return -60
    fraction, e = math.frexp(top)  # top = fraction 2^e, fraction in [0.5, 1)
    return max(-60, e - 1 if fraction == 0.5 else e)


def check_range(values: np.ndarray, column: str) -> None:
    """Refuse a value a quantile cannot handle, without naming it."""
    bad = ~np.isfinite(values) | (np.abs(values) >= 2.0**VALUE_BITS)
    if bad.any():
        raise QueryError(
            f"a value of {column!r} at this party is infinite or beyond the range MEDIAN and QUANTILE "
            f"support (|x| < 2^{VALUE_BITS}, about {2.0**VALUE_BITS:.2g})",
            name=column,
        )


def int_keys(values: np.ndarray, scale: int = VALUE_BITS) -> np.ndarray:
    """x + 2^e for integer-valued x with |x| <= 2^e and |x| < 2^45, e = `int_scale(scale)` (uint64)."""
    offset = 1 << int_scale(scale)
    return (np.asarray(values, dtype=np.float64).astype(np.int64) + offset).astype(np.uint64)


def float_keys(values: np.ndarray) -> np.ndarray:
    """The 60-bit key: 2^59 + mag for x >= 0, 2^59 - 1 - mag for x < 0, where
    mag = E' 2^52 + M for |x| = 2^(E' - 43) (1 + M / 2^52), and mag = 0 for |x| < 2^-42."""
    x = np.asarray(values, dtype=np.float64)
    mag_x = np.abs(x)
    _, e = np.frexp(mag_x)  # |x| = f 2^e with f in [0.5, 1): the binary exponent is e - 1
    code = (e.astype(np.int64) - 1 + _EXP_BIAS).astype(np.uint64)
    mantissa = mag_x.view(np.uint64) & np.uint64((1 << _MANT) - 1)
    mag = np.where(mag_x >= 2.0**-TINY_BITS, (code << np.uint64(_MANT)) | mantissa, np.uint64(0))
    negative = (x < 0) & (mag > 0)
    return np.where(negative, np.uint64(_SIGN - 1) - mag, np.uint64(_SIGN) + mag).astype(np.uint64)


def from_int_keys(keys: np.ndarray, scale: int = VALUE_BITS) -> np.ndarray:
    """Plaintext inverse of `int_keys` (for tests)."""
    return np.asarray(keys, dtype=np.uint64).astype(np.int64).astype(np.float64) - 2.0 ** int_scale(scale)


def from_float_keys(keys: np.ndarray) -> np.ndarray:
    """Plaintext inverse of `float_keys`, up to the flushing of tiny values (for tests)."""
    keys = np.asarray(keys, dtype=np.uint64)
    positive = keys >= np.uint64(_SIGN)
    mag = np.where(positive, keys - np.uint64(_SIGN), np.uint64(_SIGN - 1) - keys)
    code = (mag >> np.uint64(_MANT)).astype(np.int64)
    mantissa = (mag & np.uint64((1 << _MANT) - 1)).astype(np.float64)
    value = np.ldexp(1.0 + mantissa / 2.0**_MANT, code - _EXP_BIAS)
    return np.where(code == 0, 0.0, np.where(positive, value, -value))


def float_scale_tables(frac: int, shift: int) -> tuple[list[int], list[int]]:
    """Public tables for decoding a float key to fixed point with `frac` fractional bits.

    Indexed by E' + 128 s (s = 1 for x >= 0): x 2^frac = (2^52 + M) 2^(E' - 43 - 52 + frac)
    = (2^52 + M) high[i] + ((2^52 + M) low[i]) / 2^shift, where high holds the
    non-negative powers and low the negative ones raised by `shift` (so that the product
    stays an integer and is truncated once). Signed; zero for E' = 0 and unused codes.
    """
    high, low = [0] * 256, [0] * 256
    top = VALUE_BITS - 1 + _EXP_BIAS
    for index in range(256):
        code, sign = index % 128, 1 if index >= 128 else -1
        if not 1 <= code <= top:
            continue
        power = code - _EXP_BIAS - _MANT + frac
        if power >= 0:
            high[index] = sign * (1 << power)
        else:
            low[index] = sign * (1 << (power + shift))
    return high, low
