"""Fixed-point encoding: round trips within resolution, and loud refusal out of range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.errors import EncodingError
from mpc.fixedpoint import FAST, PRECISE, FixedPoint


@pytest.mark.parametrize("fp", [FAST, PRECISE], ids=["fast", "precise"])
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_round_trip_within_half_a_unit(fp: FixedPoint, data: st.DataObject) -> None:
    limit = fp.max_abs * (1 - 2**-40)
    values = data.draw(st.lists(st.floats(min_value=-limit, max_value=limit, allow_nan=False), min_size=1, max_size=20))
    arr = np.array(values)
    back = fp.decode(fp.encode(arr))
    # Half a unit from rounding, plus float64's own relative precision for large magnitudes.
    assert np.all(np.abs(back - arr) <= fp.resolution / 2 + np.abs(arr) * 2**-52)


@pytest.mark.parametrize("fp", [FAST, PRECISE], ids=["fast", "precise"])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_integers_are_exact(fp: FixedPoint, data: st.DataObject) -> None:
    bound = min(int(fp.max_abs), 2**62)
    values = data.draw(st.lists(st.integers(min_value=-bound + 1, max_value=bound - 1), min_size=1, max_size=10))
    enc = fp.encode(np.array(values, dtype=np.int64))
    assert [int(v) for v in fp.ring.to_signed(enc)] == [v << fp.frac for v in values]
    assert [int(v) for v in fp.decode_int(fp.encode(np.array(values, dtype=np.int64), 0))] == values


@pytest.mark.parametrize("fp", [FAST, PRECISE], ids=["fast", "precise"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(fp: FixedPoint, bad: float) -> None:
    with pytest.raises(EncodingError):
        fp.encode(np.array([1.0, bad]))


@pytest.mark.parametrize("fp", [FAST, PRECISE], ids=["fast", "precise"])
def test_out_of_range_is_refused_not_wrapped(fp: FixedPoint) -> None:
    with pytest.raises(EncodingError, match="out of the fixed-point range"):
        fp.encode(np.array([fp.max_abs * 4]))
    with pytest.raises(EncodingError):
        fp.encode(np.array([-fp.max_abs * 4]))
    huge_int = int(fp.max_abs) * 8
    with pytest.raises(EncodingError):
        fp.encode(np.array([huge_int], dtype=object if huge_int > 2**62 else np.int64))
    fp.encode(np.array([fp.max_abs * 0.99]))  # just inside: accepted


def test_documented_ranges() -> None:
    assert FAST.ring.bits == 64 and FAST.frac == 20
    assert PRECISE.ring.bits == 128 and PRECISE.frac == 40
    assert FAST.max_product == 2.0**22
    assert FAST.resolution == 2.0**-20


def test_non_numeric_input_is_refused() -> None:
    with pytest.raises(EncodingError):
        FAST.encode(np.array(["a", "b"]))
