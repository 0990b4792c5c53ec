"""Order keys of the quantile search: order-preserving, invertible, within their widths, and
their public decoding tables give the value to the resolution of fixed point."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from queries.errors import QueryError
from queries.order_keys import (
    FLOAT_KEY_BITS,
    INT_KEY_BITS,
    TINY_BITS,
    VALUE_BITS,
    check_range,
    fixed_keys,
    float_keys,
    float_scale_tables,
    from_float_keys,
    from_int_keys,
    int_keys,
    key_bits,
    scale_of,
)

LIMIT = 2.0**VALUE_BITS
finite = st.floats(min_value=-LIMIT, max_value=LIMIT, allow_nan=False, exclude_min=True, exclude_max=True)


def _flushed(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 2.0**-TINY_BITS, 0.0, x)


@given(st.lists(finite, min_size=2, max_size=40))
def test_float_keys_preserve_order_and_invert(values: list[float]) -> None:
    x = np.array(values)
    keys = float_keys(x)
    assert int(keys.max()) < 1 << FLOAT_KEY_BITS
    order = np.argsort(keys, kind="stable")
    assert np.all(np.diff(_flushed(x)[order]) >= 0)  # sorting by key sorts the (flushed) values
    np.testing.assert_array_equal(from_float_keys(keys), _flushed(x))
    same = _flushed(x)[:, None] == _flushed(x)[None, :]
    np.testing.assert_array_equal(keys[:, None] == keys[None, :], same)  # ties stay ties, and only ties


@given(st.lists(st.integers(min_value=-(2**45) + 1, max_value=2**45 - 1), min_size=1, max_size=40))
def test_int_keys_preserve_order_and_invert(values: list[int]) -> None:
    x = np.array(values, dtype=np.float64)
    keys = int_keys(x)
    assert int(keys.max()) < 1 << INT_KEY_BITS and int(keys.min()) > 0
    assert np.all(np.diff(x[np.argsort(keys)]) >= 0)
    np.testing.assert_array_equal(from_int_keys(keys), x)


@given(st.lists(st.integers(min_value=-(2**45) + 1, max_value=2**45 - 1), min_size=1, max_size=40))
def test_int_keys_fit_the_width_of_their_opened_scale(values: list[int]) -> None:
    """With e = the least exponent such that max |x| <= 2^e, the keys x + 2^e fit e + 2 bits (at most 46)."""
    x = np.array(values, dtype=np.float64)
    e = scale_of(x)
    assert np.abs(x).max() <= 2.0**e and (e == -60 or np.abs(x).max() > 2.0 ** (e - 1))
    keys = int_keys(x, e)
    assert int(keys.max()) < 1 << key_bits(True, e) and key_bits(True, e) <= INT_KEY_BITS
    assert np.all(np.diff(x[np.argsort(keys, kind="stable")]) >= 0)
    np.testing.assert_array_equal(from_int_keys(keys, e), x)


@given(st.lists(st.floats(min_value=-(2.0**18), max_value=2.0**18, allow_nan=False), min_size=1, max_size=40))
def test_fixed_keys_order_as_the_result_resolution_does(values: list[float]) -> None:
    """Columns with max |x| <= 2^e, e <= 18: floor(x 2^40) + 2^(e + 40) fits e + 42 bits and sorts the values."""
    x = np.array(values)
    e = scale_of(x)
    keys = fixed_keys(x, e)
    assert int(keys.max()) < 1 << key_bits(False, e) and key_bits(False, e) <= FLOAT_KEY_BITS
    assert np.all(np.diff(x[np.argsort(keys, kind="stable")]) >= -(2.0**-40))  # ties only below the resolution
    back = (keys.astype(np.int64) - (1 << (max(e, -40) + 40))) / 2.0**40
    assert np.all((back <= x) & (x - back <= 2.0**-40))  # the key is x to 40 fractional bits, rounded down


def test_scale_of_is_the_power_of_two_at_or_above_the_largest_magnitude() -> None:
    assert [scale_of(np.array(v)) for v in ([200.0, -3.0], [-256.0], [257.0], [0.0], [], [0.75], [1.0])] == [
        8, 8, 9, -60, -60, 0, 0]
    assert [key_bits(True, e) for e in (-60, 0, 8, 44, 45)] == [2, 2, 10, 46, 46]
    assert [key_bits(False, e) for e in (-60, -40, 6, 18, 19, 45)] == [2, 2, 48, 60, 60, 60]


def test_decoding_tables_give_the_value_in_fixed_point() -> None:
    """What the MPC decoding computes, in plaintext: (2^52 + M) high + ((2^52 + M) low >> 54)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 500) * 10.0 ** rng.integers(-14, 13, 500), [0.0, -1.0, 2.0**44.5, 3e-13]])
    keys = float_keys(x)
    high, low = float_scale_tables(40, 54)
    positive = keys >= np.uint64(1 << 59)
    mag = np.where(positive, keys - np.uint64(1 << 59), np.uint64((1 << 59) - 1) - keys)
    for value, m, pos, want in zip(x, mag, positive, _flushed(x)):
        i = int(m) >> 52 | (128 if pos else 0)
        mant = (1 << 52) + (int(m) & ((1 << 52) - 1))
        fixed = mant * high[i] + ((mant * low[i]) >> 54)
        assert abs(fixed / 2**40 - want) <= 2**-40 * (1 + abs(want) * 2**-12), value


@pytest.mark.parametrize("bad", [2.0**45, -(2.0**46), np.inf, -np.inf])
def test_values_beyond_the_range_are_refused_without_naming_them(bad: float) -> None:
    with pytest.raises(QueryError) as err:
        check_range(np.array([1.0, bad]), "x")
    message = str(err.value)
    assert "'x'" in message and "3.5e+13" in message
    assert not np.isfinite(bad) or (str(bad) not in message and f"{bad:g}" not in message)
    check_range(np.array([2.0**45 - 1, -(2.0**45) + 1, 0.0]), "x")  # the edges themselves are fine
