"""Ring arithmetic agrees with Python integers modulo 2^k, in both rings."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.ring import RING64, RING128, Limbs, Ring

ints64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
ints128 = st.integers(min_value=-(2**127), max_value=2**128 - 1)


def _arr(ring: Ring, values: list[int]) -> np.ndarray:
    return ring.reduce(np.array(values, dtype=object))


def _matches_python(ring: Ring, pairs: list[tuple[int, int]]) -> None:
    mod = ring.modulus
    a = _arr(ring, [p[0] for p in pairs])
    b = _arr(ring, [p[1] for p in pairs])
    assert [int(v) for v in ring.add(a, b)] == [(x + y) % mod for x, y in pairs]
    assert [int(v) for v in ring.sub(a, b)] == [(x - y) % mod for x, y in pairs]
    assert [int(v) for v in ring.mul(a, b)] == [(x * y) % mod for x, y in pairs]
    assert [int(v) for v in ring.neg(a)] == [(-x) % mod for x, _ in pairs]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ints64, ints64), min_size=1, max_size=20))
def test_ring64_matches_python_modular_arithmetic(pairs: list[tuple[int, int]]) -> None:
    _matches_python(RING64, pairs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ints128, ints128), min_size=1, max_size=10))
def test_ring128_matches_python_modular_arithmetic(pairs: list[tuple[int, int]]) -> None:
    _matches_python(RING128, pairs)


@settings(max_examples=40, deadline=None)
@given(st.lists(ints128, min_size=1, max_size=10), st.integers(min_value=0, max_value=120))
def test_shifts_and_signed_reading(values: list[int], s: int) -> None:
    for ring in (RING64, RING128):
        k = ring.bits
        vals = [v % 2**k for v in values]
        arr = _arr(ring, vals)
        signed = [v - 2**k if v >= 2 ** (k - 1) else v for v in vals]
        assert [int(v) for v in ring.to_signed(arr)] == signed
        shift = s % (k - 1)
        assert [int(v) for v in ring.rshift_logical(arr, shift)] == [v >> shift for v in vals]
        assert [int(v) for v in ring.rshift_arith(arr, shift)] == [(v >> shift) % 2**k for v in signed]
        assert [int(v) for v in ring.msb(arr)] == [v >> (k - 1) for v in vals]


def test_bytes_round_trip_both_rings() -> None:
    for ring in (RING64, RING128):
        arr = _arr(ring, [0, 1, -1, 2 ** (ring.bits - 1), 12345678901234567890])
        back = ring.from_bytes(ring.to_bytes(arr), arr.shape)
        assert [int(v) for v in back] == [int(v) for v in arr]
        assert len(ring.to_bytes(arr)) == ring.nbytes(arr.shape)


def test_uint64_matmul_is_exact_for_long_inner_dimensions() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 2**64 - 1, size=(7, 1500), dtype=np.uint64)
    b = rng.integers(0, 2**64 - 1, size=(1500, 3), dtype=np.uint64)
    expected = np.array(
        [[sum(int(a[i, t]) * int(b[t, j]) for t in range(1500)) % 2**64 for j in range(3)] for i in range(7)],
        dtype=object,
    )
    got = RING64.matmul(a, b)
    assert [[int(v) for v in row] for row in got] == [[int(v) for v in row] for row in expected]
    vec = RING64.matmul(a, b[:, 0])
    assert [int(v) for v in vec] == [int(v) for v in expected[:, 0]]


def test_cached_limbs_give_the_same_bits_as_ring_matmul() -> None:
    rng = np.random.default_rng(6)
    m = rng.integers(0, 2**64 - 1, size=(1100, 9), dtype=np.uint64)
    limbs = Limbs.of(m)
    for transpose in (False, True):
        inner = m.shape[0] if transpose else m.shape[1]
        for b in (rng.integers(0, 2**64 - 1, size=(inner,), dtype=np.uint64),
                  rng.integers(0, 2**64 - 1, size=(inner, 4), dtype=np.uint64)):
            want = RING64.matmul(m.T if transpose else m, b)
            got = limbs.times(b, transpose)
            assert got.dtype == np.uint64 and got.shape == want.shape
            assert np.array_equal(got, want)


def test_ring128_matmul() -> None:
    a = _arr(RING128, [2**100, -3, 7, 2**127]).reshape(2, 2)
    b = _arr(RING128, [5, -1, 2**90, 3]).reshape(2, 2)
    exp = [[(int(a[i, 0]) * int(b[0, j]) + int(a[i, 1]) * int(b[1, j])) % 2**128 for j in range(2)] for i in range(2)]
    assert [[int(v) for v in row] for row in RING128.matmul(a, b)] == exp
