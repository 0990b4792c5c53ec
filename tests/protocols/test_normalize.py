"""Signed normalisation: the leading one of |y| found on shares, for values of either sign."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from mpc.fixedpoint import PRECISE
from mpc.share import Share, reconstruct
from protocols.beaver import mul_many
from protocols.compare import signs_zeros_and_jobs
from protocols.normalize import Blur, ExponentJob, exponent, tables
from protocols.products import products
from protocols.sharing import split
from tests.protocols.nonlinear_support import run_protocol
from tests.support import deal, run_on_shares


def test_signed_exponent_normalises_values_of_either_sign() -> None:
    y = PRECISE.decode(PRECISE.encode(np.array([3.0, -3.0, -4.0, 2.0**-38, -(2.0**-38), 1e-9, -123456.789, 0.0])))
    fracs: list[int] = []

    def both(ctx, x):  # type: ignore[no-untyped-def]
        e = exponent(ctx, x, 2.0**20, signed=True)
        (s_tab,) = tables(ctx, e, [lambda p: 1 << (e.top - 1 - p)])
        (ys,) = mul_many(ctx, [(Share(x.data, x.ring, 0), s_tab)])
        fracs[:] = [e.top]
        return Share(np.concatenate([ys.data, e.linear(ctx, lambda p: p + 1 - x.frac).data]), x.ring, 0)

    raw, spent = run_protocol(3, both, deal(PRECISE, y, 3), reveal_as="int")
    signed = [int(v) - (1 << 128) if int(v) >= 1 << 127 else int(v) for v in raw]
    mantissas = [v / 2.0 ** fracs[0] for v in signed[: len(y)]]
    exps = signed[len(y) :]
    assert [m * 2.0**e for m, e in zip(mantissas, exps)] == list(y)  # exact: y's bits, shifted
    assert all(0.5 <= abs(m) <= 1 for m in mantissas[:-1]) and mantissas[-1] == 0
    assert spent.rounds == 10  # bits and leading one of 62 lanes (61 and the sign), digits, table, product



@pytest.mark.parametrize("signed", [False, True])
def test_floored_elements_below_zero_have_no_leading_one(signed: bool) -> None:
    # `floor` marks elements to read as 0 when negative (a variance a hair below 0): no leading one,
    # so their table, `linear` and `offsets` are 0; the others keep theirs (|y| when signed), same rounds
    y = PRECISE.decode(PRECISE.encode(np.array([3.0, -3.0, -(2.0**-38), 2.0**-38, -5.0, 7.5, 0.0])))
    floor = [True, True, True, True, False, False, True]
    if not signed:
        y[4] = 5.0
    fracs: list[int] = []

    def both(ctx, x):  # type: ignore[no-untyped-def]
        e = exponent(ctx, x, 2.0**20, signed=signed, floor=floor)
        (s_tab,) = tables(ctx, e, [lambda p: 1 << (e.top - 1 - p)])
        (ys,) = mul_many(ctx, [(Share(x.data, x.ring, 0), s_tab)])
        fracs[:] = [e.top]
        return Share(np.concatenate([ys.data, e.linear(ctx, lambda p: p + 1 - x.frac).data]), x.ring, 0)

    raw, spent = run_protocol(3, both, deal(PRECISE, y, 3), reveal_as="int")
    got = [int(v) - (1 << 128) if int(v) >= 1 << 127 else int(v) for v in raw]
    values = [m / 2.0 ** fracs[0] * 2.0**e for m, e in zip(got[: len(y)], got[len(y) :])]
    assert values == [max(v, 0.0) if mark else v for v, mark in zip(y, floor)]
    assert [e for e, v, mark in zip(got[len(y) :], y, floor) if mark and v <= 0] == [0, 0, 0]
    assert spent.rounds == 10  # as the signed normalisation: 62 lanes with the sign

def _trailing_zeros(v: int) -> int:
    return (v & -v).bit_length() - 1


def test_blur_fills_every_bit_below_the_values_last_place() -> None:
    # short values (few bits at their scale) and long ones; a zero stays exactly zero
    raw_y = [0, 1, 3, -5, 2**20 + 1, -(2**30), 2**60 + 7, -(2**70) + 1]
    fracs: list[int] = []
    blur = Blur(42)

    def blurred(ctx, x):  # type: ignore[no-untyped-def]
        e = exponent(ctx, x, 2.0**38, signed=True)
        blur.check(e)
        s_tab, gate = tables(ctx, e, [lambda p: 1 << (e.top - 1 - p), blur.gate(e)])
        m = blur.mantissa(products(ctx, blur.pairs(ctx, e, Share(x.data, x.ring, 0), s_tab, gate)))
        fracs[:] = [e.top + blur.bits]
        return Share(np.concatenate([m.data, e.linear(ctx, lambda p: p + 1 - x.frac).data]), x.ring, 0)

    def plain(ctx, x):  # type: ignore[no-untyped-def]
        e = exponent(ctx, x, 2.0**38, signed=True)
        (s_tab,) = tables(ctx, e, [lambda p: 1 << (e.top - 1 - p)])
        return mul_many(ctx, [(Share(x.data, x.ring, 0), s_tab)])[0]

    elements = PRECISE.ring.reduce(np.array(raw_y, dtype=object))
    shares = [Share(p, PRECISE.ring, 40) for p in split(PRECISE.ring, elements, 3)]
    raw, spent = run_protocol(3, blurred, shares, reveal_as="int")
    _, unblurred = run_protocol(3, plain, shares, reveal_as="int")
    signed = [int(v) - (1 << 128) if int(v) >= 1 << 127 else int(v) for v in raw]
    mantissas, exps = signed[: len(raw_y)], signed[len(raw_y) :]
    assert mantissas[0] == 0 and exps[0] == 0
    for y, m, e in zip(raw_y[1:], mantissas[1:], exps[1:]):
        value = Fraction(m, 2 ** fracs[0]) * Fraction(2) ** (e + 40)  # in units of y's last place
        assert abs(value - y) < 3 + Fraction(abs(y), 2**80)  # at most n_sites units, plus the relative addend
        assert _trailing_zeros(m) < 24  # uniform low bits: without the blur, K - p + F zeros
    assert spent.rounds == unblurred.rounds  # the gate's table and the draws' products ride along


def test_blur_without_room_in_the_ring_is_refused() -> None:
    def too_wide(ctx, x):  # type: ignore[no-untyped-def]
        Blur(60).check(exponent(ctx, x, 2.0**38))
        return x

    with pytest.raises(ValueError, match="no room"):
        run_protocol(2, too_wide, deal(PRECISE, np.array([1.0]), 2))


def test_an_exponent_job_rides_in_the_rounds_of_the_flags() -> None:
    # `ExponentJob` beside `signs_zeros_and_jobs`: the exponent `exponent` finds, in the comparisons'
    # opening, circuit levels (the interval tests of `protocols.leading`: 3 + 1 at 45 lanes) and conversion
    counts = np.array([0, 1, 2, 3, 1000, 2**40 + 12345, 2**44 - 1], dtype=np.int64)
    signs = PRECISE.decode(PRECISE.encode(np.array([-1.0, 2.0, 0.0, -3.5, 1e-9, 7.0, -2.0])))

    def program(ctx, x, y):  # type: ignore[no-untyped-def]
        job = ExponentJob.of(ctx, y, 2.0**44)
        before = ctx.stats.rounds
        lt, _, _, _, done = signs_zeros_and_jobs(ctx, x, x, jobs=[job])
        rounds = ctx.stats.rounds - before
        e = job.finish(done[0])
        alone = exponent(ctx, y, 2.0**44)
        out = [e.linear(ctx, lambda p: p), e.linear(ctx, lambda p: 1), alone.linear(ctx, lambda p: p), lt]
        return Share(np.concatenate([s.data for s in out]), x.ring, 0), rounds

    dealt = [deal(PRECISE, signs, 3), deal(PRECISE, counts.astype(float), 3, 0)]
    answers = run_on_shares(3, program, *dealt)
    got = [int(v) for v in PRECISE.ring.to_signed(reconstruct([share for share, _ in answers]))]
    rounds = answers[0][1]
    m = len(counts)
    assert got[:m] == [int(v).bit_length() - 1 if v else 0 for v in counts] == got[2 * m : 3 * m]
    assert got[m : 2 * m] == [int(v > 0) for v in counts]
    assert got[3 * m :] == [int(v < 0) for v in signs]
    assert rounds == 6  # open, 4 levels, conversion: the comparison's alone


@pytest.mark.parametrize(("signed", "floored"), [(False, False), (True, False), (True, True)])
def test_the_leading_one_by_intervals_is_the_leading_one_by_bits(signed: bool, floored: bool) -> None:
    # `exponent(by_intervals=True)` (`protocols.leading`): the same exponent, mantissa and zeros as
    # the bits and suffix OR, in 2 rounds fewer at 61 lanes (open, 3 + 1 levels, conversion against
    # open, 3 + 3 levels, conversion)
    y = PRECISE.decode(PRECISE.encode(np.array([3.0, -3.0, -4.0, 2.0**-38, -(2.0**-38), 1e-9, -123456.789, 0.0,
                                                 2.0**19, -(2.0**19), 1.0, -1.0])))
    if not signed:
        y = np.abs(y)
    floor = [floored and i % 2 == 1 for i in range(len(y))]
    seen: list[int] = []

    def both(ctx, x):  # type: ignore[no-untyped-def]
        out = []
        for fast in (False, True):
            before = ctx.stats.rounds
            e = exponent(ctx, x, 2.0**20, signed=signed, floor=floor, by_intervals=fast)
            if ctx.rank == 0:
                seen.append(ctx.stats.rounds - before)
            out += [e.linear(ctx, lambda p: p), e.linear(ctx, lambda p: 1)]
        return Share(np.concatenate([s.data for s in out]), x.ring, 0)

    raw, _ = run_protocol(3, both, deal(PRECISE, y, 3), reveal_as="int")
    got = np.array([int(v) for v in raw], dtype=object).reshape(4, len(y))
    assert got[0].tolist() == got[2].tolist() and got[1].tolist() == got[3].tolist()
    assert sum(got[1]) == sum(1 for v, mark in zip(y, floor) if v != 0 and not (mark and v < 0))
    assert seen == [8, 6]
