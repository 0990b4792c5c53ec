"""The bits POISSON opens at the end of its fit: the decrements' comparisons and the residual check
side by side (`protocols.poisson_steps.open_final_bits`), the same bits as one after the other, in fewer
rounds."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.fixedpoint import PRECISE
from protocols.open_sign import all_within, open_less_than_public
from protocols.poisson_steps import open_final_bits
from tests.support import deal, run_on_shares

GAPS = np.array([-3e-9, 2e-9, -0.5, 7.0, 0.0])


@pytest.mark.parametrize("largest", [9e-7, -9e-7, 1.1e-6, -1.1e-6, 3.0])
def test_the_bits_are_those_of_the_two_checks(largest: float) -> None:
    residual = np.array([[1e-8, -2e-7, 0.0], [3e-7, -5e-7, 4e-9], [1e-9, largest, -1e-7]])

    def both(ctx, gaps, res):  # type: ignore[no-untyped-def]
        before = ctx.stats.rounds
        bits = open_final_bits(ctx, gaps.with_frac(60), res, 1e-6)
        return bits, ctx.stats.rounds - before

    def apart(ctx, gaps, res):  # type: ignore[no-untyped-def]
        before = ctx.stats.rounds
        below = open_less_than_public(ctx, gaps.with_frac(60), 0.0)
        return ([bool(v) for v in below], all_within(ctx, res, 1e-6)), ctx.stats.rounds - before

    gaps = deal(PRECISE, GAPS, 3, frac=60)
    res = deal(PRECISE, residual, 3)
    (bits, rounds), *rest = run_on_shares(3, both, gaps, res)
    (want, rounds_apart), *_ = run_on_shares(3, apart, gaps, res)
    assert all(r[0] == bits for r in rest)  # every party learns the same bits
    assert bits == want
    assert bits == ([bool(v) for v in GAPS < 0], abs(largest) < 1e-6)
    assert rounds < rounds_apart
