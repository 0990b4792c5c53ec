"""Comparison, selection, bit decomposition, ring extension and the numeric functions.

Every protocol runs for 2, 3 and 5 in-process parties through the same code as a node, in
both rings where it applies, over its stated range (ends included), against numpy; the
round count is part of each protocol's contract and asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.share import Share
from protocols.bits import bit_decompose, lanes_to_arith, leading_one
from protocols.compare import greater_equal, is_zero, less_than, less_than_public, ltz
from protocols.convert import extend_ring
from protocols.division import divide, reciprocal
from protocols.exp_log import exp, log
from protocols.opening import open_xor, reveal, reveal_int
from protocols.roots import rsqrt, sqrt
from protocols.select import absolute, clip, maximum, minimum, select
from protocols.sharing import split
from protocols.sigmoid import sigmoid
from tests.support import deal, rounds_of, run_on_shares

PARTIES = [2, 3, 5]
RINGS = [pytest.param(FAST, id="z64"), pytest.param(PRECISE, id="z128")]


def _run(
    n: int, fn: Callable[[PartyContext, Share], Share], shares: list[Share], reveal_as: str = "fixed"
) -> tuple[np.ndarray, int]:
    """Run fn on n parties; the opened result (floats, or exact Python ints) and its rounds."""

    def program(ctx: PartyContext, x: Share) -> tuple[np.ndarray, int]:
        out, rounds = rounds_of(ctx, lambda: fn(ctx, x))
        if reveal_as == "int":
            return np.array([int(v) for v in np.ravel(reveal_int(ctx, out))], dtype=object), rounds
        return np.ravel(reveal(ctx, out)), rounds

    return run_on_shares(n, program, shares)[0]


def _points(fp: FixedPoint, lo: float, hi: float, count: int, log_scale: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = count if fp.ring.native else min(count, 150)
    pts = np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if log_scale else rng.uniform(lo, hi, n)
    pts[:2] = [lo, hi]
    return fp.decode(fp.encode(pts))  # the values the parties actually hold


# -- comparison -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_sign_and_equality_are_exact(n: int, fp: FixedPoint) -> None:
    x = _points(fp, -1e6, 1e6, 3000, seed=n)
    x[2:8] = [0.0, fp.resolution, -fp.resolution, fp.max_abs * 0.99, -fp.max_abs * 0.99, 0.0]
    x = fp.decode(fp.encode(x))
    neg, rounds = _run(n, ltz, deal(fp, x, n), "int")
    assert list(neg) == [int(v < 0) for v in x]
    assert rounds == (8 if fp.ring.native else 9)
    zero, rounds = _run(n, is_zero, deal(fp, x, n), "int")
    assert list(zero) == [int(v == 0) for v in x]
    assert rounds == (8 if fp.ring.native else 9)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40)), min_size=1, max_size=12))
def test_less_than_is_exact_for_any_pair(pairs: list[tuple[int, int]]) -> None:
    a = np.array([p[0] for p in pairs]) / 2**20
    b = np.array([p[1] for p in pairs]) / 2**20

    def program(ctx: PartyContext, xa: Share, xb: Share) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (reveal_int(ctx, less_than(ctx, xa, xb)), reveal_int(ctx, greater_equal(ctx, xa, xb)),
                reveal_int(ctx, less_than_public(ctx, xa, 0.5)))

    lt, ge, half = run_on_shares(3, program, deal(FAST, a, 3), deal(FAST, b, 3))[0]
    assert [int(v) for v in lt] == [int(u < v) for u, v in zip(a, b)]
    assert [int(v) for v in ge] == [int(u >= v) for u, v in zip(a, b)]
    assert [int(v) for v in half] == [int(u < 0.5) for u in a]


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_select_max_min_abs_clip(n: int, fp: FixedPoint) -> None:
    a = _points(fp, -500, 500, 2000, seed=1)
    b = _points(fp, -500, 500, 2000, seed=2)

    def program(ctx: PartyContext, xa: Share, xb: Share) -> dict[str, Any]:
        out: dict[str, Any] = {}
        bit = ltz(ctx, xa - xb)
        out["select"], out["select_rounds"] = rounds_of(ctx, lambda: reveal(ctx, select(ctx, bit, xa, xb)))
        out["max"], out["max_rounds"] = rounds_of(ctx, lambda: reveal(ctx, maximum(ctx, xa, xb)))
        out["min"] = reveal(ctx, minimum(ctx, xa, xb))
        out["abs"] = reveal(ctx, absolute(ctx, xa))
        out["clip"], out["clip_rounds"] = rounds_of(ctx, lambda: reveal(ctx, clip(ctx, xa, -100.0, 250.5)))
        return out

    out = run_on_shares(n, program, deal(fp, a, n), deal(fp, b, n))[0]
    assert np.array_equal(out["select"], np.where(a < b, a, b))
    assert np.array_equal(out["max"], np.maximum(a, b)) and np.array_equal(out["min"], np.minimum(a, b))
    assert np.array_equal(out["abs"], np.abs(a)) and np.array_equal(out["clip"], np.clip(a, -100.0, 250.5))
    k = 0 if fp.ring.native else 1
    assert (out["select_rounds"], out["max_rounds"], out["clip_rounds"]) == (2, 10 + k, 10 + k)  # reveal included


@pytest.mark.parametrize("fp", RINGS)
def test_bit_decomposition_leading_one_and_lanes(fp: FixedPoint) -> None:
    rng = np.random.default_rng(3)
    k = fp.ring.bits
    vals = [int(v) << (k - 64) | int(w) for v, w in zip(rng.integers(0, 2**62, 120), rng.integers(0, 2**60, 120))]
    vals[:4] = [0, 1, 2 ** (k - 1), 2**k - 1]
    shares = [Share(p, fp.ring, 0) for p in split(fp.ring, fp.ring.reduce(np.array(vals, dtype=object)), 3)]

    def program(ctx: PartyContext, x: Share) -> tuple[Any, ...]:
        bits, r1 = rounds_of(ctx, lambda: bit_decompose(ctx, x))
        lead, r2 = rounds_of(ctx, lambda: leading_one(ctx, bits))
        lanes = lanes_to_arith(ctx, bits, [(0, 0), (bits.shape[1] - 1, 63)], fp.ring)
        return (*open_xor(ctx, [bits, lead]), r1, r2, reveal_int(ctx, lanes))

    bits, lead, r1, r2, lanes = run_on_shares(3, program, shares)[0]
    words = bits.shape[1]
    as_int = [sum(int(bits[i, w]) << (64 * w) for w in range(words)) for i in range(len(vals))]
    assert as_int == vals
    assert [sum(int(lead[i, w]) << (64 * w) for w in range(words)) for i in range(len(vals))] == [
        1 << (v.bit_length() - 1) if v else 0 for v in vals
    ]
    assert [[int(t) for t in row] for row in lanes] == [[v & 1, v >> (k - 1)] for v in vals]
    assert (r1, r2) == ((7, 6) if fp.ring.native else (8, 7))


@pytest.mark.parametrize("n", PARTIES)
def test_ring_extension_is_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    vals = [int(v) for v in rng.integers(-(2**62) + 1, 2**62 - 1, 500)] + [0, 1, -1, 2**62 - 1, -(2**62) + 1]
    shares = [Share(p, FAST.ring, 0) for p in split(FAST.ring, FAST.ring.reduce(np.array(vals, dtype=object)), n)]
    got, rounds = _run(n, extend_ring, shares, "int")
    assert list(got) == vals
    assert rounds == 8


# -- numeric functions, over the target ranges (precise ring) and the fast ring's own -------
@pytest.mark.parametrize("n", PARTIES)
def test_division_meets_1e5_relative_for_counts_to_ten_million(n: int) -> None:
    rng = np.random.default_rng(n)
    y = np.round(np.exp(rng.uniform(0, np.log(1e7), 150)))
    y[:2] = [1, 1e7]
    q = np.exp(rng.uniform(np.log(1e-4), np.log(1e6), 150))
    q[:2] = [1e-4, 1e6]
    x = PRECISE.decode(PRECISE.encode(q * y))

    def program(ctx: PartyContext, xs: Share, ys: Share) -> tuple[np.ndarray, int]:
        out, rounds = rounds_of(ctx, lambda: divide(ctx, xs, ys, y_bound=2**24))
        return reveal(ctx, out), rounds

    got, rounds = run_on_shares(n, program, deal(PRECISE, x, n), deal(PRECISE, y, n, 0))[0]
    assert np.abs(got / (x / y) - 1).max() <= 1e-5
    assert rounds == 39


@pytest.mark.parametrize("fp", RINGS)
def test_reciprocal_within_its_bound(fp: FixedPoint) -> None:
    y = _points(fp, 2**-10, 2**19 if fp.ring.native else 2**39, 2000, log_scale=True)
    got, rounds = _run(3, reciprocal, deal(fp, y, 3))
    assert np.all(np.abs(got - 1 / y) <= 4 * fp.resolution + 2**-(fp.frac - 2) / y)
    assert rounds == (31 if fp.ring.native else 37)


@pytest.mark.parametrize("n", PARTIES)
def test_sqrt_meets_1e5_relative_over_1e4_to_1e8(n: int) -> None:
    y = _points(PRECISE, 1e-4, 1e8, 150, log_scale=True, seed=n)
    got, rounds = _run(n, lambda ctx, x: sqrt(ctx, x, y_bound=2**27), deal(PRECISE, y, n))
    assert np.abs(got / np.sqrt(y) - 1).max() <= 1e-5
    inv, _ = _run(n, lambda ctx, x: rsqrt(ctx, x, y_bound=2**27), deal(PRECISE, y, n))
    assert np.abs(inv * np.sqrt(y) - 1).max() <= 1e-5
    assert rounds == 43


def test_sqrt_and_rsqrt_in_the_fast_ring() -> None:
    y = _points(FAST, 1e-2, 1e5, 3000, log_scale=True)
    got, _ = _run(3, lambda ctx, x: sqrt(ctx, x), deal(FAST, y, 3))
    assert np.all(np.abs(got - np.sqrt(y)) <= 4e-6 * np.sqrt(y) + 4 * FAST.resolution)


@pytest.mark.parametrize("n", PARTIES)
def test_exp_and_log_meet_1e4_relative(n: int) -> None:
    x = _points(PRECISE, -20, 10, 150, seed=n)
    got, rounds = _run(n, lambda ctx, v: exp(ctx, v, out_frac=72), deal(PRECISE, x, n))
    assert np.abs(got / np.exp(x) - 1).max() <= 1e-4
    assert rounds == 24
    y = _points(PRECISE, 1e-4, 1e8, 150, log_scale=True, seed=n)
    y[2] = 1.0
    logs, _ = _run(n, lambda ctx, v: log(ctx, v, y_bound=2**27), deal(PRECISE, y, n))
    want = np.log(y)
    big = np.abs(want) > 1e-6
    assert np.abs(logs[big] / want[big] - 1).max() <= 1e-4
    assert np.abs(logs - want).max() <= 1e-9


def test_exp_in_the_fast_ring() -> None:
    x = _points(FAST, -16, 10, 3000)
    got, _ = _run(3, lambda ctx, v: exp(ctx, v, out_frac=44), deal(FAST, x, 3))
    assert np.all(np.abs(got - np.exp(x)) <= 1e-5 * np.exp(x) + 2**-40)


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_sigmoid_is_within_1e4_over_minus_40_to_40(n: int, fp: FixedPoint) -> None:
    x = _points(fp, -40, 40, 3000, seed=n)
    x[2:5] = [0.0, fp.resolution, -fp.resolution]
    got, rounds = _run(n, sigmoid, deal(fp, x, n))
    assert np.abs(got - 1 / (1 + np.exp(-x))).max() <= 1e-5
    assert rounds == (45 if fp.ring.native else 53)
