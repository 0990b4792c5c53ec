"""Ring extension Z_2^64 -> Z_2^128: the same signed integer, exactly, in 5 rounds."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST
from mpc.share import Share
from protocols.convert import extend_ring
from protocols.sharing import split
from tests.protocols.nonlinear_support import PARTIES, run_protocol


@pytest.mark.parametrize("n", PARTIES)
def test_ring_extension_is_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    vals = [int(v) for v in rng.integers(-(2**62) + 1, 2**62 - 1, 500)]
    vals += [int(v) >> int(s) for v, s in zip(rng.integers(-(2**62), 2**62, 100), rng.integers(0, 62, 100))]
    vals += [0, 1, -1, 2**62 - 1, -(2**62) + 1, 2**20, -(2**20)]
    shares = [Share(p, FAST.ring, 20) for p in split(FAST.ring, FAST.ring.reduce(np.array(vals, dtype=object)), n)]
    got, spent = run_protocol(n, extend_ring, shares, "int")
    assert list(got) == vals
    assert spent.rounds == 5


def test_ring_extension_keeps_shape_and_scale() -> None:
    x = np.arange(-6, 6).reshape(3, 4) * 1.25

    def program(ctx: PartyContext, s: Share) -> Share:
        big = extend_ring(ctx, s)
        assert big.ring.bits == 128 and big.frac == s.frac and big.shape == (3, 4)
        return big

    got, _ = run_protocol(3, program, [Share(p, FAST.ring, 20) for p in split(FAST.ring, FAST.encode(x), 3)])
    assert np.array_equal(got, x.ravel())
