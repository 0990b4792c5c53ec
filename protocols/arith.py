"""Local operations on shares: adding and multiplying by public values, no messages.

Adding a public constant is done by party 0 alone (everyone adding it would add it n
times); multiplying by a public integer is done by everyone. Multiplying by a public
real multiplies by its fixed-point encoding, which adds that encoding's fractional bits
to the share's scale — truncate afterwards if the scale must come back down.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.fixedpoint import FixedPoint
from mpc.share import Share


def fixed_for(ctx: PartyContext, share: Share) -> FixedPoint:
    """The fixed-point settings of the ring `share` lives in."""
    return ctx.fixed if share.ring == ctx.fixed.ring else ctx.precise


def add_public(ctx: PartyContext, x: Share, value: Any) -> Share:
    """[x] + c for a public real (or integer) c, encoded at x's scale."""
    enc = fixed_for(ctx, x).encode(np.asarray(value), x.frac)
    if not ctx.is_leader:
        return x
    return Share(x.ring.add(x.data, enc), x.ring, x.frac)


def add_public_encoded(ctx: PartyContext, x: Share, encoded: Any) -> Share:
    """[x] + c for c already encoded as ring elements at x's scale."""
    if not ctx.is_leader:
        return x
    if np.isscalar(encoded):
        value = x.ring.constant(int(np.asarray(encoded).item()))
    else:
        value = x.ring.reduce(np.asarray(encoded))
    return Share(x.ring.add(x.data, value), x.ring, x.frac)


def mul_public(ctx: PartyContext, x: Share, value: Any, frac: int | None = None) -> Share:
    """[x] * c for a public real c encoded with `frac` bits (default: the context's).

    The result carries x.frac + frac fractional bits; truncate to bring it back.
    """
    fixed = fixed_for(ctx, x)
    f = fixed.frac if frac is None else frac
    enc = fixed.encode(np.asarray(value, dtype=np.float64), f)
    return Share(x.ring.mul(x.data, enc), x.ring, x.frac + f)


def rescale_up(x: Share, bits: int) -> Share:
    """Multiply by 2^bits exactly (raise the scale, e.g. integers to fixed point)."""
    return Share(x.ring.lshift(x.data, bits), x.ring, x.frac + bits)
