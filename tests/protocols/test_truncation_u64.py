"""The Z_2^64 finish of the truncation (`protocols.truncation._finish_u64`) against its recipe, step by step."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.ring import Ring
from protocols.truncation import _finish_u64

RING = Ring(64)
K = 64


def recipe(leader: bool, m: int, c: np.ndarray, r_shift: np.ndarray, r_msb: np.ndarray) -> np.ndarray:
    """Steps 3-5 of `protocols.truncation.truncate` as written there, one ring operation at a time."""
    c_msb = RING.msb(c)
    c_low = RING.sub(c, RING.lshift(c_msb, K - 1))
    w = RING.mul(r_msb, np.uint64(1) - c_msb)
    out = RING.sub(RING.neg(r_shift), RING.lshift(r_msb, K - 1 - m))
    out = RING.add(out, RING.lshift(w, K - m))
    if leader:
        out = RING.add(out, RING.add(RING.rshift_logical(c_low, m), RING.lshift(c_msb, K - 1 - m)))
        out = RING.sub(out, RING.constant(1 << (K - 2 - m)))
    return out


@pytest.mark.parametrize("m", [1, 16, 40, 61])
@pytest.mark.parametrize("leader", [True, False])
def test_finish_u64_matches_the_recipe(m: int, leader: bool) -> None:
    rng = np.random.default_rng(m)
    c = rng.integers(0, 2**64, 10_000, dtype=np.uint64)
    c[:4] = [0, 2**63, 2**63 - 1, 2**64 - 1]  # both sides of the top bit
    r_shift = rng.integers(0, 2**64, c.size, dtype=np.uint64)
    r_msb = rng.integers(0, 2, c.size, dtype=np.uint64)
    want = recipe(leader, m, c, r_shift, r_msb)
    assert np.array_equal(_finish_u64(leader, m, c.copy(), r_shift, r_msb), want)
