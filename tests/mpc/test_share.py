"""`reconstruct`: n random shares add up to the secret in either ring; mismatched shares are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.prg import random_ring_elements
from mpc.ring import RING64, RING128, Ring
from mpc.share import Share, reconstruct


def _deal(ring: Ring, secret: np.ndarray, n: int, frac: int = 0) -> list[Share]:
    """n uniformly random shares of `secret`: n - 1 drawn, the last the difference."""
    drawn = [random_ring_elements(ring, secret.shape) for _ in range(n - 1)]
    last = secret
    for d in drawn:
        last = ring.sub(last, d)
    return [Share(d, ring, frac) for d in [*drawn, last]]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([RING64, RING128]), st.integers(1, 5),
       st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=12))
def test_random_shares_reconstruct_to_the_secret(ring: Ring, n: int, values: list[int]) -> None:
    secret = ring.reduce(np.array(values, dtype=object))
    total = reconstruct(_deal(ring, secret, n, frac=20))
    assert [int(v) for v in ring.to_signed(total)] == values


@pytest.mark.parametrize(
    ("other", "match"),
    [
        (Share(RING128.zeros((3,)), RING128, 20), "Z_2"),
        (Share(RING64.zeros((3,)), RING64, 16), "fractional bits"),
        (Share(RING64.zeros((4,)), RING64, 20), "shapes"),
    ],
)
def test_mismatched_shares_are_refused(other: Share, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reconstruct([Share(RING64.zeros((3,)), RING64, 20), other])


def test_no_shares_is_refused() -> None:
    with pytest.raises(ValueError, match="no shares"):
        reconstruct([])
