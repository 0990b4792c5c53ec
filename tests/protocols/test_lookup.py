"""Table lookup by a shared index, and daBit conversion of rows in the same opening: one round."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FixedPoint
from mpc.inprocess import run_parties
from protocols.bits import rows_to_arith
from protocols.boolean import pack_lanes
from protocols.lookup import lookup
from protocols.material import KINDS
from protocols.opening import reveal_int
from tests.protocols.nonlinear_support import PARTIES, RINGS, xor_split
from tests.support import rounds_of


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_table_lookup_and_row_conversion(n: int, fp: FixedPoint) -> None:
    rng = np.random.default_rng(n)
    count, bits = 300, 5
    index = rng.integers(0, 2**bits, count)
    flags = rng.integers(0, 2, (2, count))
    tables = [list(range(2**bits)), [int(v) for v in rng.integers(-(2**40), 2**40, 2**bits)]]
    rows = np.stack([pack_lanes((index >> i) & 1) for i in range(bits)])
    flag_rows = np.stack([pack_lanes(f) for f in flags])
    args = list(zip(xor_split(rows, n, 1), xor_split(flag_rows, n, 2)))

    def program(ctx: PartyContext, arg: tuple[np.ndarray, np.ndarray]) -> tuple[Any, ...]:
        idx, fl = arg
        (found, converted), rounds = rounds_of(ctx, lambda: lookup(ctx, idx, count, fp.ring, tables, fl))
        plain_conv, r2 = rounds_of(ctx, lambda: rows_to_arith(ctx, fl, count, fp.ring))
        assert converted is not None and converted.shape == (2, count)
        return [reveal_int(ctx, f) for f in found], reveal_int(ctx, converted), reveal_int(ctx, plain_conv), rounds, r2

    found, conv, plain_conv, rounds, r2 = run_parties(n, program, args=args, kinds=KINDS)[0]
    assert [int(v) for v in found[0]] == list(index)
    assert [int(v) for v in found[1]] == [tables[1][i] for i in index]
    assert np.array_equal(np.asarray(conv, dtype=np.int64), flags)
    assert np.array_equal(np.asarray(plain_conv, dtype=np.int64), flags)
    assert (rounds, r2) == (1, 1)
