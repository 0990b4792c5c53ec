"""The Newton step of `protocols.cox` in few rounds, with the coefficients held as u = beta log2(e).

`protocols.cox` takes e = 2^((x - m)' u) with u = beta log2(e) (`protocols.exp_log.exp2_capped`:
no product by log2(e) to truncate), so its steps move u: u += log2(e) H^-1 g. The factor log2(e)
rides in the Jacobi scaling of g (`scalings`: a second table of the same lookup), the step comes
untruncated from Newton-Schulz's last round (`protocols.poisson_steps.fused_step`'s recipe), and
the cut of the next u to X_FRAC bits is its only truncation (`next_point`). The last step moves beta
itself (scaling d, not log2(e) d) and releases beta = u ln 2 + delta (`last`).
"""

from __future__ import annotations

import math

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat
from protocols.arith import rescale_up
from protocols.beaver import mul
from protocols.logistic import X_FRAC, symmetric
from protocols.newton_schulz import newton_schulz_times
from protocols.normalize import exponent, tables
from protocols.poisson_steps import DIAGONAL_BOUND, identity_start
from protocols.regression import RECIPROCAL_SHIFT
from protocols.trunc_mul import truncate_times
from protocols.truncation import truncate, truncate_each

LOG2E_BITS = 20
"""log2(e) is held to this many bits in the scaling of g (relative error 2^-21): the intermediate
steps are scaled by it, which the next Newton step corrects; the last step uses d itself."""


def scalings(ctx: PartyContext, m: Share) -> tuple[Share, Share]:
    """[d] of `protocols.poisson_steps.power_scaling` (d_j = 2^-e_j, 2^(e_j - 1) <= M_jj < 2^e_j) and
    [log2(e) d] at the same scale, from one lookup (two tables of M_jj's leading one). M_jj must be
    below DIAGONAL_BOUND."""
    p = m.shape[0]
    diag = Share(np.array([m.data[j, j] for j in range(p)], dtype=m.data.dtype), m.ring, m.frac)
    frac = m.frac + RECIPROCAL_SHIFT
    c = int(round(math.log2(math.e) * 2**LOG2E_BITS))
    d, d_u = tables(ctx, exponent(ctx, diag, DIAGONAL_BOUND), [
        lambda q: 1 << (frac + m.frac - 1 - q),
        lambda q: c << (frac + m.frac - 1 - q - LOG2E_BITS),
    ])
    return d.with_frac(frac), d_u.with_frac(frac)


def step(
    ctx: PartyContext, g: Share, h: Share, p: int, inv_a: Share | None, steps: int, d: Share, d_g: Share
) -> tuple[Share, Share, Share]:
    """A^-1 (D_g g) untruncated (at Newton-Schulz's scale), A^-1 and A = D H, for H from its pairs `h`:
    D H and D_g g in one product and truncation, A^-1 by `steps` of Newton-Schulz from `inv_a`
    (None: from I/p) with the product by D_g g in its last round."""
    hmat = symmetric(h, p)
    d_rows = Share(np.repeat(d.data[:, None], p, axis=1), d.ring, d.frac)
    both = truncate(ctx, mul(ctx, concat([d_rows.reshape(p * p), d_g]), concat([hmat.reshape(p * p), g])), d.frac)
    a, scaled = both[: p * p].reshape(p, p), both[p * p :]
    inv_a, raw = newton_schulz_times(ctx, a, identity_start(ctx, p) if inv_a is None else inv_a, steps, scaled)
    return raw, inv_a, a


def next_point(ctx: PartyContext, u: Share, raw: Share) -> tuple[Share, Share]:
    """u + raw (u at X_FRAC bits, raw an untruncated step in u) cut to X_FRAC bits, in one truncation: in
    Z_2^64 (what the next step's products take) and in Z_2^128 (where the next step starts from)."""
    (down,) = truncate_each(ctx, [(rescale_up(u, raw.frac - u.frac) + raw, raw.frac - X_FRAC)])
    return Share(ctx.fixed.ring.reduce(down.data), ctx.fixed.ring, X_FRAC), down


def last(ctx: PartyContext, u: Share, raw: Share, g: Share) -> tuple[Share, Share]:
    """beta = u ln 2 + delta and g o delta at frac + g's frac (delta: the untruncated step `raw` in beta,
    truncated to ctx.precise's frac), in one round. u is held at X_FRAC bits, so u ln 2 is formed exactly
    at raw's scale, with ln 2 to raw.frac - X_FRAC bits."""
    extra = raw.frac - ctx.precise.frac
    start = u.scale_int(int(round(math.log(2) * 2 ** (raw.frac - X_FRAC)))).with_frac(raw.frac)
    zero = Share(g.ring.zeros(g.shape), g.ring, g.frac)
    both, by_g = truncate_times(ctx, concat([raw, start + raw]), extra, concat([g, zero]))
    n = g.size
    return both[n:], by_g[:n]
