"""Helpers shared by the tests of the nonlinear protocols: run one protocol on n parties, pick points."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.share import Share
from mpc.stats import CommStats
from protocols.opening import reveal, reveal_int
from tests.support import run_on_shares

PARTIES = [2, 3]
"""Two parties, and three: the protocols treat party 0, the parties between and the last party
alike for every n >= 3, so three parties take every role a larger consortium has."""
RINGS = [pytest.param(FAST, id="z64"), pytest.param(PRECISE, id="z128")]


def run_protocol(
    n: int, fn: Callable[[PartyContext, Share], Share], shares: list[Share], reveal_as: str = "fixed"
) -> tuple[np.ndarray, CommStats]:
    """Run fn on n parties; party 0's opened result (floats, or exact Python ints) and its counters."""

    def program(ctx: PartyContext, x: Share) -> tuple[np.ndarray, CommStats]:
        before = ctx.stats.snapshot()
        out = fn(ctx, x)
        spent = ctx.stats.since(before)
        if reveal_as == "int":
            return np.array([int(v) for v in np.ravel(reveal_int(ctx, out))], dtype=object), spent
        return np.ravel(reveal(ctx, out)), spent

    return run_on_shares(n, program, shares)[0]


def points(fp: FixedPoint, lo: float, hi: float, count: int, log_scale: bool = False, seed: int = 0) -> np.ndarray:
    """count random points of [lo, hi] (150 at most in Z_2^128), both ends included, as the parties hold them."""
    rng = np.random.default_rng(seed)
    n = count if fp.ring.native else min(count, 150)
    pts = np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if log_scale else rng.uniform(lo, hi, n)
    pts[:2] = [lo, hi]
    return fp.decode(fp.encode(pts))


def xor_split(rows: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """n random XOR shares of 64-bit rows (what the parties of a boolean protocol hold)."""
    rng = np.random.default_rng(seed)
    parts = [rng.integers(0, 2**64, rows.shape, dtype=np.uint64) for _ in range(n - 1)]
    last = rows.copy()
    for p in parts:
        last ^= p
    return parts + [last]
