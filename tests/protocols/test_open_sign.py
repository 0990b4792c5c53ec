"""Comparisons whose answer is opened: one bit per element, or one bit for all, fewer rounds than ltz + reveal."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.share import Share
from protocols.open_sign import all_within, open_less_than_public
from protocols.sharing import split
from tests.support import rounds_of, run_on_shares


def _shares(fp: FixedPoint, values: np.ndarray, n: int) -> list[Share]:
    return [Share(s, fp.ring, fp.frac) for s in split(fp.ring, fp.encode(values), n)]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("fp", [pytest.param(FAST, id="z64"), pytest.param(PRECISE, id="z128")])
def test_opened_comparisons_answer_exactly(n: int, fp: FixedPoint) -> None:
    unit = 1e-7 if fp is PRECISE else 1e-3  # well above the encoding's resolution
    values = np.array([-3.0, -10, 0.0, 10, 0.5, 2.0, 0.01, -0.01]) * np.array([1, unit, 1, unit, 1, 1, unit, unit])
    small = np.array([[1.0, -5.0], [0.0, 9.0]]) * unit
    one_off = small.copy()
    one_off[1, 0] = -20 * unit

    def program(ctx: PartyContext, x: Share, s: Share, o: Share) -> tuple[list[bool], bool, bool, int, int]:
        below, rounds_below = rounds_of(ctx, lambda: open_less_than_public(ctx, x, unit))
        inside, rounds_within = rounds_of(ctx, lambda: all_within(ctx, s, 10 * unit))
        return list(below), inside, all_within(ctx, o, 10 * unit), rounds_below, rounds_within

    below, inside, outside, rounds_below, rounds_within = run_on_shares(
        n, program, _shares(fp, values, n), _shares(fp, small, n), _shares(fp, one_off, n))[0]
    assert below == list(values < unit)
    assert inside and not outside
    levels = 4 if fp is PRECISE else 3  # the comparator: ceil(log4(k - 1))
    assert rounds_below == 1 + levels + 1
    assert rounds_within == 1 + levels + 2 + 1  # 8 sign bits: an AND tree of two levels
