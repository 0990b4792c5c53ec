"""Selection on a shared bit, and what it builds: maximum, minimum, absolute value, clipping.

`select(b, a, c) = c + b (a - c)` costs one Beaver product of a 0/1 integer share by a
fixed-point share, which needs no truncation (the bit has no fractional bits).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from protocols.arith import add_public
from protocols.beaver import mul, mul_many
from protocols.compare import ltz


def select(ctx: PartyContext, bit: Share, a: Share, b: Share) -> Share:
    """[a] where bit == 1, else [b]. One round.

    1. [d] = [a] - [b]        (local)
    2. [out] = [b] + [bit][d]  (one Beaver product; bit has scale 0, so no truncation)
    """
    return b + mul(ctx, bit, a - b).with_frac(a.frac)


def maximum(ctx: PartyContext, a: Share, b: Share) -> Share:
    """Elementwise max: one comparison of a - b, then a select. 6 rounds in Z_2^64."""
    return select(ctx, ltz(ctx, a - b), b, a)


def minimum(ctx: PartyContext, a: Share, b: Share) -> Share:
    """Elementwise min. 6 rounds in Z_2^64."""
    return select(ctx, ltz(ctx, a - b), a, b)


def absolute(ctx: PartyContext, x: Share) -> Share:
    """|x| = x - 2 [x < 0] x. 6 rounds in Z_2^64."""
    neg = ltz(ctx, x)
    return x - mul(ctx, neg, x).with_frac(x.frac).scale_int(2)


def clip(ctx: PartyContext, x: Share, lo: Any, hi: Any) -> Share:
    """x clipped to [lo, hi] (public bounds). Both comparisons share their rounds: 9 in Z_2^64.

    1. [below] = [x - lo < 0], [above] = [hi - x < 0]      (one batched sign test)
    2. [out] = x + below (lo - x) + above (hi - x)         (one round of two products)
    """
    lo_minus = add_public(ctx, -x, np.asarray(lo, dtype=np.float64))
    hi_minus = add_public(ctx, -x, np.asarray(hi, dtype=np.float64))
    both = ltz(ctx, _stack([(-lo_minus), hi_minus]))
    n = x.size
    below = Share(both.data[:n].reshape(x.shape), x.ring, 0)
    above = Share(both.data[n:].reshape(x.shape), x.ring, 0)
    d_lo, d_hi = mul_many(ctx, [(below, lo_minus), (above, hi_minus)])
    return x + d_lo.with_frac(x.frac) + d_hi.with_frac(x.frac)


def _stack(shares: list[Share]) -> Share:
    first = shares[0]
    return Share(np.concatenate([s.data for s in shares], axis=None), first.ring, first.frac)
