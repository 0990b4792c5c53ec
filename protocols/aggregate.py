"""Secure aggregation: the sum of every party's private input, revealing only the sum.

Each party secret-shares its input (`protocols.sharing.share_inputs`: no message with
pairwise seeds, else one all-to-all round); the shares of all inputs are added locally.
Opening the result reveals the total and nothing about any single party's contribution,
since every share a party holds of another's input is uniformly random.
"""

from __future__ import annotations

import numpy as np

from mpc.context import PartyContext
from mpc.ring import Ring
from mpc.share import Share
from protocols.sharing import share_inputs


def secure_sum(ctx: PartyContext, encoded: np.ndarray, ring: Ring, frac: int = 0) -> Share:
    """[sum over parties of their `encoded` inputs] (same shape everywhere).

    1. Each party shares its input (`share_inputs`: no round with pairwise seeds, else one).
    2. Each party adds the n shares it holds (one of every party's input).
    """
    total = None
    for s in share_inputs(ctx, encoded, ring, frac, "secure-sum"):
        total = s if total is None else total + s
    assert total is not None
    return total
