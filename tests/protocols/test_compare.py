"""Comparison and equality: exact over the whole ring, 5 rounds in Z_2^64 (6 in Z_2^128), few bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.share import Share
from protocols.boolean import pack_lanes
from protocols.compare import (
    equal_public,
    greater_equal,
    greater_equal_public,
    is_zero,
    is_zero_and_all,
    less_than,
    less_than_public,
    ltz,
    signs_and_zeros,
    signs_zeros_and_jobs,
)
from protocols.opening import reveal_int
from protocols.sharing import share_words, split
from tests.protocols.nonlinear_support import PARTIES, RINGS, run_protocol
from tests.support import deal, run_on_shares


def _raw_values(fp: FixedPoint, count: int, seed: int) -> list[int]:
    """Signed integers spread over the whole ring, with its edges and small values."""
    k = fp.ring.bits
    rng = np.random.default_rng(seed)
    half = 1 << (k - 1)
    vals = [int.from_bytes(rng.bytes(k // 8), "little") - half for _ in range(count)]
    vals[: count // 4] = [int(v) >> int(s) for v, s in zip(vals[: count // 4], rng.integers(0, k, count // 4))]
    edges = [0, 1, -1, 2, -2, half - 1, -half + 1, -half, 1 << (k - 2), -(1 << (k - 2)), 1 << fp.frac, -(1 << fp.frac)]
    return edges + vals


def _share_raw(fp: FixedPoint, vals: list[int], n: int) -> list[Share]:
    elements = fp.ring.reduce(np.array(vals, dtype=object))
    return [Share(p, fp.ring, fp.frac) for p in split(fp.ring, elements, n)]


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_sign_is_exact_for_every_ring_element(n: int, fp: FixedPoint) -> None:
    vals = _raw_values(fp, 3000 if fp.ring.native else 300, n)
    got, spent = run_protocol(n, ltz, _share_raw(fp, vals, n), "int")
    assert list(got) == [int(v < 0) for v in vals]
    assert spent.rounds == (5 if fp.ring.native else 6)
    per_element_and_peer = spent.bytes_sent / len(vals) / (n - 1)
    assert per_element_and_peer <= (40 if fp.ring.native else 82)  # ring element + ~2k ANDs + 1 bit


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_equality_to_zero_is_exact(n: int, fp: FixedPoint) -> None:
    vals = _raw_values(fp, 600 if fp.ring.native else 150, n)
    vals += [0] * 20 + [1 << i for i in range(fp.ring.bits)]  # a single set bit anywhere must count
    got, spent = run_protocol(n, is_zero, _share_raw(fp, vals, n), "int")
    assert list(got) == [int(v == 0) for v in vals]
    assert spent.rounds == (5 if fp.ring.native else 6)


@pytest.mark.parametrize("n", PARTIES)
def test_an_and_over_the_parties_rides_in_the_rounds_of_a_zero_test(n: int) -> None:
    # each party's private bits, XOR-shared from the pairwise seeds; their AND beside [x == 0]
    fp = PRECISE
    vals = _raw_values(fp, 40, n) + [0] * 5
    rng = np.random.default_rng(n)
    count = 150
    bits = rng.random((n, count)) < 0.8  # most ANDs are 0, some 1
    bits[:, :10] = True

    def program(ctx: PartyContext, x: Share) -> tuple[list[int], list[int], int, int]:
        words = share_words(ctx, pack_lanes(bits[ctx.rank]), [(pack_lanes(bits[0]).size,)] * ctx.n)
        before, sent = ctx.stats.rounds, ctx.stats.bytes_sent
        zero, every = is_zero_and_all(ctx, x, np.stack(words), count)
        rounds, spent = ctx.stats.rounds - before, ctx.stats.bytes_sent - sent
        return [int(v) for v in reveal_int(ctx, zero)], [int(v) for v in reveal_int(ctx, every)], rounds, spent

    def alone(ctx: PartyContext, x: Share) -> int:
        before = ctx.stats.bytes_sent
        is_zero(ctx, x)
        return ctx.stats.bytes_sent - before

    zero, every, rounds, spent = run_on_shares(n, program, _share_raw(fp, vals, n))[0]
    assert zero == [int(v == 0) for v in vals]
    assert every == [int(b) for b in bits.all(axis=0)]
    assert rounds == 6  # those of is_zero in Z_2^128: the AND tree over n rows is shallower
    extra = spent - run_on_shares(n, alone, _share_raw(fp, vals, n))[0]
    assert extra <= (n - 1) * (2 * (n - 1) + 1) * 3 * 8  # 2 (n - 1) + 1 bits per element and peer (3 words)


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("with_rows", [False, True])
def test_signs_and_zeros_run_side_by_side_in_the_rounds_of_one(n: int, with_rows: bool) -> None:
    # ltz, is_zero and the AND over the parties' bits at once: the same answers, 9 rounds rather than 18
    fp = PRECISE
    vals = _raw_values(fp, 60, n)
    zeros = _raw_values(fp, 30, n + 1) + [0] * 7
    count = 70
    bits = np.random.default_rng(n).random((n, count)) < 0.9
    bits[:, :5] = True

    def program(ctx: PartyContext, x: Share, z: Share) -> tuple[list[int], list[int], list[int] | None, int, int]:
        words = share_words(ctx, pack_lanes(bits[ctx.rank]), [(pack_lanes(bits[0]).size,)] * ctx.n)
        rows = np.stack(words) if with_rows else None
        before, sent = ctx.stats.rounds, ctx.stats.bytes_sent
        if with_rows:
            lt, eq, every, _, _ = signs_zeros_and_jobs(ctx, x, z, rows, count)
        else:
            (lt, eq), every = signs_and_zeros(ctx, x, z), None
        rounds, spent = ctx.stats.rounds - before, ctx.stats.bytes_sent - sent
        assert lt.shape == x.shape and eq.shape == z.shape and (every is None) == (not with_rows)
        opened = [[int(v) for v in reveal_int(ctx, s)] for s in (lt, eq)]
        all_of = [int(v) for v in reveal_int(ctx, every)] if every is not None else None
        return opened[0], opened[1], all_of, rounds, spent

    def apart(ctx: PartyContext, x: Share, z: Share) -> int:
        before = ctx.stats.bytes_sent
        ltz(ctx, x), is_zero(ctx, z)
        return ctx.stats.bytes_sent - before

    dealt = (_share_raw(fp, vals, n), _share_raw(fp, zeros, n))
    lt, eq, every, rounds, spent = run_on_shares(n, program, *dealt)[0]
    assert lt == [int(v < 0) for v in vals]
    assert eq == [int(v == 0) for v in zeros]
    assert every == ([int(b) for b in bits.all(axis=0)] if with_rows else None)
    assert rounds == 6
    if not with_rows:
        assert spent == run_on_shares(n, apart, *dealt)[0]  # the same messages' contents, fewer rounds


@pytest.mark.parametrize("n", PARTIES)
def test_chosen_bits_of_a_value_ride_in_the_same_rounds(n: int) -> None:
    # a bit decomposition (as protocols.bits.decompose_rows + rows_to_arith) beside the sign and zero tests
    fp = PRECISE
    vals = _raw_values(fp, 40, n + 2)
    wanted = [0, 1, 5, 63, 64, 100, 126, 127]

    def program(ctx: PartyContext, x: Share, d: Share) -> tuple[list[int], list[list[int]], int]:
        before = ctx.stats.rounds
        lt, _, every, bits, _ = signs_zeros_and_jobs(ctx, x, x, None, 0, d, wanted)
        rounds = ctx.stats.rounds - before
        assert every is None and bits is not None and bits.shape == (len(wanted), d.size)
        return [int(v) for v in reveal_int(ctx, lt)], [[int(v) for v in reveal_int(ctx, row)] for row in bits], rounds

    lt, bits, rounds = run_on_shares(n, program, _share_raw(fp, vals, n), _share_raw(fp, vals[::-1], n))[0]
    unsigned = [v % (1 << fp.ring.bits) for v in vals[::-1]]
    assert lt == [int(v < 0) for v in vals]
    assert bits == [[(u >> j) & 1 for u in unsigned] for j in wanted]
    assert rounds == 6  # the borrow prefix over 127 bits has 4 levels, as the comparator


_PAIRS = st.lists(st.tuples(st.integers(-(2**60), 2**60), st.integers(-(2**60), 2**60)), min_size=1, max_size=10)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.tuples(_PAIRS, st.integers(-(2**40), 2**40)), min_size=4, max_size=4))
def test_order_and_public_comparisons_match_numpy(cases: list[tuple[list[tuple[int, int]], int]]) -> None:
    # four cases (pairs and a public threshold) per run: each element is compared with its own case's
    # threshold (a public array is read as a number is, `add_public`), so one run checks four
    a = np.array([p[0] for pairs, _ in cases for p in pairs], dtype=object)
    b = np.array([p[1] for pairs, _ in cases for p in pairs], dtype=object)
    c_raw = [c for pairs, c in cases for _ in pairs]
    c = np.array(c_raw, dtype=np.float64) / 2**20  # exactly representable at f = 20
    first = np.cumsum([0] + [len(pairs) for pairs, _ in cases[:-1]])
    a[first] = [cases[i][1] for i in range(len(cases))]  # one element of each case sits exactly on its threshold
    fa = [float(v) / 2**20 for v in a]

    def program(ctx: PartyContext, xa: Share, xb: Share) -> list[list[int]]:
        outs = [
            less_than(ctx, xa, xb),
            greater_equal(ctx, xa, xb),
            less_than_public(ctx, xa, c),
            greater_equal_public(ctx, xa, c),
            equal_public(ctx, xa, c),
        ]
        return [[int(v) for v in reveal_int(ctx, o)] for o in outs]

    sa = [Share(p, FAST.ring, 20) for p in split(FAST.ring, FAST.ring.reduce(a), 3)]
    sb = [Share(p, FAST.ring, 20) for p in split(FAST.ring, FAST.ring.reduce(b), 3)]
    lt, ge, ltc, gec, eqc = run_on_shares(3, program, sa, sb)[0]
    assert lt == [int(u < v) for u, v in zip(a, b)]
    assert ge == [int(u >= v) for u, v in zip(a, b)]
    assert ltc == [int(u < t) for u, t in zip(fa, c)] and gec == [int(u >= t) for u, t in zip(fa, c)]
    assert eqc == [int(u == t) for u, t in zip(fa, c)]


@pytest.mark.parametrize("fp", RINGS)
def test_public_threshold_arrays_and_shapes(fp: FixedPoint) -> None:
    x = np.array([[-1.5, 0.0, 2.25], [7.0, -0.0, 3.0]])
    thresholds = np.array([[-1.5, 0.5, 2.0], [7.5, 0.0, -3.0]])

    def program(ctx: PartyContext, xs: Share) -> tuple[np.ndarray, np.ndarray]:
        lt = less_than_public(ctx, xs, thresholds)
        eq = equal_public(ctx, xs, thresholds)
        assert lt.shape == x.shape and lt.frac == 0 and eq.ring == xs.ring
        return reveal_int(ctx, lt), reveal_int(ctx, eq)

    lt, eq = run_on_shares(2, program, deal(fp, x, 2))[0]
    assert np.array_equal(np.asarray(lt, dtype=np.int64), (x < thresholds).astype(np.int64))
    assert np.array_equal(np.asarray(eq, dtype=np.int64), (x == thresholds).astype(np.int64))
