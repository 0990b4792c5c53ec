"""Fused Newton-Schulz steps (the same inverse as the four-round step, in two rounds a step) and
`truncate_times`, the one-round truncation and product they are built on."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.share import Share
from protocols.arith import add_public
from protocols.beaver import fixed_matmul
from protocols.newton_schulz import newton_schulz_fused
from protocols.opening import reveal
from protocols.sharing import split
from protocols.trunc_mul import truncate_times
from protocols.truncation import truncate
from tests.support import rounds_of, run_on_shares


def _plain(ctx: PartyContext, a: Share, x: Share, steps: int) -> Share:
    """The four-round step: two Beaver matrix products, each truncated in a round of its own."""
    for _ in range(steps):
        x = fixed_matmul(ctx, x, add_public(ctx, -fixed_matmul(ctx, a, x), 2.0 * np.eye(a.shape[0])))
    return x


def _system(p: int, seed: int) -> np.ndarray:
    """A Jacobi-scaled SPD matrix (unit diagonal) with a condition number in the hundreds."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, p))
    x[:, -1] = x[:, 0] + 0.05 * rng.normal(size=40)  # nearly collinear columns
    m = x.T @ x
    d = 1 / np.sqrt(np.diag(m))
    return m * d[:, None] * d[None, :]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("fp", [pytest.param(PRECISE, id="z128"), pytest.param(FAST, id="z64")])
def test_fused_steps_invert_like_the_plain_ones_in_half_the_rounds(n: int, fp: FixedPoint) -> None:
    p = 5
    a = _system(p, n)
    a_shares = [Share(s, fp.ring, fp.frac) for s in split(fp.ring, fp.encode(a), n)]
    x0 = [Share(s, fp.ring, fp.frac) for s in split(fp.ring, fp.encode(np.eye(p) / p), n)]
    steps = 20 if fp is PRECISE else 16

    def program(ctx: PartyContext, sa: Share, sx: Share) -> tuple[np.ndarray, np.ndarray, int, int]:
        fused, fused_rounds = rounds_of(ctx, lambda: newton_schulz_fused(ctx, sa, sx, steps))
        plain, plain_rounds = rounds_of(ctx, lambda: _plain(ctx, sa, sx, steps))
        return reveal(ctx, fused), reveal(ctx, plain), fused_rounds, plain_rounds

    fused, plain, fused_rounds, plain_rounds = run_on_shares(n, program, a_shares, x0)[0]
    exact = np.linalg.inv(a)
    tol = 1e-8 if fp is PRECISE else 1e-3
    assert np.max(np.abs(fused - exact)) < tol * np.max(np.abs(exact))
    assert np.max(np.abs(fused - plain)) < tol * np.max(np.abs(exact))
    assert (fused_rounds, plain_rounds) == (2 * steps + 1, 4 * steps)


def test_fused_steps_refuse_mixed_scales() -> None:
    fp = PRECISE
    a = Share(fp.ring.zeros((2, 2)), fp.ring, fp.frac)
    x0 = Share(fp.ring.zeros((2, 2)), fp.ring, fp.frac + 1)
    with pytest.raises(ValueError, match="same scale"):
        newton_schulz_fused(None, a, x0, 1)  # type: ignore[arg-type]  # refused before any round


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("fp", [pytest.param(PRECISE, id="z128"), pytest.param(FAST, id="z64")])
def test_truncate_times_is_a_truncation_and_a_product_in_one_round(n: int, fp: FixedPoint) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=9) * 50
    y = rng.normal(size=9)
    raw = [Share(s, fp.ring, 2 * fp.frac) for s in split(fp.ring, fp.encode(x, 2 * fp.frac), n)]
    ys = [Share(s, fp.ring, fp.frac) for s in split(fp.ring, fp.encode(y), n)]

    def program(ctx: PartyContext, sx: Share, sy: Share) -> tuple[np.ndarray, np.ndarray, int]:
        (t, prod), rounds = rounds_of(ctx, lambda: truncate_times(ctx, sx, fp.frac, sy))
        return reveal(ctx, t), reveal(ctx, truncate(ctx, prod, fp.frac)), rounds

    t, prod, rounds = run_on_shares(n, program, raw, ys)[0]
    ulp = 2.0**-fp.frac
    assert np.max(np.abs(t - x)) <= 2 * ulp and np.max(np.abs(prod - x * y)) <= 100 * ulp
    assert rounds == 1


def test_truncate_times_refuses_mismatched_operands() -> None:
    fp = PRECISE
    with pytest.raises(ValueError, match="one ring and shape"):
        truncate_times(None, Share(fp.ring.zeros((3,)), fp.ring, 80), 40,  # type: ignore[arg-type]
                       Share(fp.ring.zeros((2,)), fp.ring, 40))
