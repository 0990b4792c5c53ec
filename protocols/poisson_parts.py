"""The row-level pieces of `protocols.poisson`: linear predictors, scores and informations as
products of every party's published matrix [X_hi | X_lo | Z_hi | Z_lo] with shared vectors.

A Z_2^64 owned product (`protocols.owned`) holds 20 fractional bits per factor; X, Z and the
means need about 40. So each is held as two halves on the 20-bit grid, v = v_hi + 2^-20 v_lo
(|v_lo| <= 1), and a product of two such values is v_hi w_hi + 2^-20 (v_hi w_lo + v_lo w_hi),
the 2^-40 term left out (below the resolution kept). The halves' products of one round are
added, lifted to Z_2^128 in one conversion and rescaled there by one truncation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.beaver import mul
from protocols.convert import extend_ring
from protocols.logistic import X_FRAC
from protocols.owned import OwnedMatrix, owned_matvec_many
from protocols.truncation import truncate, truncate_each

SPLIT = 20
"""Bits per half (the second half is scaled up by 2^SPLIT)."""

LOG2E = math.log2(math.e)
"""The fit exponentiates u = eta log2(e) = X (beta log2(e)) + o log2(e) (`exp2_capped`): beta is scaled
where it is truncated anyway, the offsets by their owners."""

DELTA_SHIFT = 10
"""Extra bits of the last step delta in `moved` (it is small)."""


@dataclass(frozen=True)
class Layout:
    """Every party's published matrix and row count; columns [X_hi | X_lo | Z_hi | Z_lo]."""

    p: int
    rows: list[int]
    matrices: list[OwnedMatrix] = field(default_factory=list)

    def with_matrices(self, matrices: list[OwnedMatrix]) -> Layout:
        return replace(self, matrices=matrices)

    @property
    def q(self) -> int:
        return self.p * (self.p + 1) // 2

    @property
    def width(self) -> int:
        return 2 * self.p + 2 * self.q

    def vector(self, parts: Sequence[Share | None]) -> Share:
        """[v_X_hi; v_X_lo; 0; 0] from up to two p-vectors of one ring and scale (None: zeros)."""
        first = next(v for v in parts if v is not None)
        ring = first.ring
        blocks = [v.data if v is not None else ring.zeros((self.p,)) for v in parts]
        blocks += [ring.zeros((self.p,))] * (2 - len(parts)) + [ring.zeros((2 * self.q,))]
        return Share(np.concatenate(blocks), ring, first.frac)

    def like(self, ring_share: Share) -> list[Share]:
        """Per-party pieces shaped like the rows (for `split_like`)."""
        return [Share(ring_share.ring.zeros((r,)), ring_share.ring, ring_share.frac) for r in self.rows]

    def own(self, ctx: PartyContext, values: np.ndarray, like: Share) -> Share:
        """A share, of `like`'s ring and scale, of the vector holding this party's own `values` on its
        rows and 0 elsewhere: the party's share is its values, everyone else's 0 (no message)."""
        ring = like.ring
        fixed = ctx.fixed if ring.native else ctx.precise
        pieces = [ring.zeros((r,)) for r in self.rows]
        pieces[ctx.rank] = ring.reduce(fixed.encode(values, like.frac))
        return Share(np.concatenate(pieces), ring, like.frac)


def _products(ctx: PartyContext, layout: Layout, vectors: Sequence[Share], label: str) -> list[Share]:
    """M_i v for every party i and every vector (one round), in that order."""
    pairs = [(om, v, False) for v in vectors for om in layout.matrices]
    return owned_matvec_many(ctx, pairs, label)


def _transposed(ctx: PartyContext, layout: Layout, vectors: Sequence[Share], label: str) -> list[Share]:
    """sum_i M_i' v_i for each row vector v (all parties' rows, one round): width-long sums."""
    pairs = [(om, v, True) for flat in vectors for om, v in zip(layout.matrices, split_like(flat, layout.like(flat)))]
    parts = owned_matvec_many(ctx, pairs, label)
    k = len(layout.matrices)
    out = []
    for j in range(len(vectors)):
        total = parts[j * k]
        for extra in parts[j * k + 1 : (j + 1) * k]:
            total = total + extra
        out.append(total)
    return out


def eta_fast(ctx: PartyContext, layout: Layout, beta: Share, offsets: np.ndarray) -> Share:
    """[X beta + o] in Z_2^64 at X_FRAC bits for `beta` in Z_2^64 at X_FRAC bits."""
    k = len(layout.matrices)
    prods = _products(ctx, layout, [layout.vector([beta]), layout.vector([None, beta])], "poisson-eta")
    cut = truncate_each(ctx, [(s, X_FRAC) for s in prods[:k]] + [(s, X_FRAC + SPLIT) for s in prods[k:]])
    eta = concat([hi + lo.with_frac(X_FRAC) for hi, lo in zip(cut[:k], cut[k:])])
    return eta + layout.own(ctx, offsets, eta)


def eta_precise(ctx: PartyContext, layout: Layout, beta: Share, offsets: np.ndarray) -> Share:
    """[X beta log2(e) + o] in Z_2^128 at 40 fractional bits for `beta` in Z_2^128 (2^-42 p absolute),
    `offsets` o already in log2 units: beta log2(e) (log2(e) on the 40-bit grid) is cut into its halves
    where they are cut anyway."""
    scaled = Share(beta.ring.mul(beta.data, beta.ring.constant(int(round(LOG2E * 2**40)))), beta.ring,
                   beta.frac + 40)
    _, b_hi, b_lo = split_raw(ctx, scaled)
    b_hi, b_lo = narrow(ctx, b_hi), narrow(ctx, b_lo)
    k = len(layout.matrices)
    prods = _products(ctx, layout, [layout.vector([b_hi]), layout.vector([b_lo, b_hi])], "poisson-final-eta")
    lows = truncate_each(ctx, [(s, SPLIT) for s in prods[k:]])
    eta = concat([hi + lo.with_frac(hi.frac) for hi, lo in zip(prods[:k], lows)])
    return extend_ring(ctx, eta + layout.own(ctx, offsets, eta))


def split_raw(ctx: PartyContext, x: Share) -> tuple[Share, Share, Share]:
    """From x held with 2 SPLIT bits or more: x at 2 SPLIT bits and its halves hi + 2^-SPLIT lo
    (`halves_fast`), both truncations in one round."""
    full, hi = truncate_each(ctx, [(x, x.frac - 2 * SPLIT), (x, x.frac - SPLIT)])
    ring = x.ring
    return full, hi, Share(ring.sub(full.data, ring.lshift(hi.data, SPLIT)), ring, SPLIT)


def narrow(ctx: PartyContext, x: Share) -> Share:
    """A Z_2^128 share of a value within Z_2^64's range as a Z_2^64 share (the shares reduce mod 2^64)."""
    fast = ctx.fixed.ring
    return Share(fast.reduce(x.data), fast, x.frac)


def halves_fast(ctx: PartyContext, x: Share) -> tuple[Share, Share]:
    """A Z_2^64 share at 2 SPLIT bits as two at SPLIT: x = hi + 2^-SPLIT lo."""
    hi = truncate(ctx, x, x.frac - SPLIT)
    return hi, Share(x.ring.sub(x.data, x.ring.lshift(hi.data, x.frac - SPLIT)), x.ring, SPLIT)


def halves_precise(ctx: PartyContext, x: Share) -> tuple[Share, Share]:
    """A Z_2^128 share at 2 SPLIT bits as two Z_2^64 shares at SPLIT (the shares reduce mod 2^64)."""
    fast = ctx.fixed.ring
    hi, lo = halves_fast(ctx, x)
    return Share(fast.reduce(hi.data), fast, SPLIT), Share(fast.reduce(lo.data), fast, SPLIT)


def _lift(ctx: PartyContext, parts: Sequence[tuple[Share, int]]) -> list[Share]:
    """Each Z_2^64 share in Z_2^128 (one conversion), then truncated by its own bits (one round)."""
    big = extend_ring(ctx, concat([Share(s.data, s.ring, 0) for s, _ in parts]))
    pieces = split_like(big, [Share(s.data, s.ring, 0) for s, _ in parts])
    cut = truncate_each(ctx, [(Share(b.data, b.ring, s.frac), m) for b, (s, m) in zip(pieces, parts)])
    return cut


def score(
    ctx: PartyContext, layout: Layout, mu: tuple[Share, Share], xty: Share, extra: Sequence[tuple[Share, int]]
) -> tuple[Share, Share, list[Share]]:
    """g = X'y' - X'mu and the pairs of H = Z'mu (Z_2^128, 40 bits) from mu's halves; `extra`
    Z_2^64 shares ride along in the conversion (each truncated by its bits)."""
    p, q = layout.p, layout.q
    hi, lo = _transposed(ctx, layout, list(mu), "poisson-score")
    main = concat([hi[:p], hi[2 * p : 2 * p + q]])
    small = concat([hi[p : 2 * p] + lo[:p], hi[2 * p + q :] + lo[2 * p : 2 * p + q]])
    lifted = _lift(ctx, [(main, 0), (small.with_frac(small.frac + SPLIT), SPLIT), *extra])
    total = lifted[0] + lifted[1]
    return xty - total[:p], total[p:], lifted[2:]


def moved(ctx: PartyContext, layout: Layout, delta: Share, mu_hi: Share) -> tuple[Share, Share]:
    """After the step beta + delta: the pairs of Z'(mu o X delta) (the information's first-order
    change, exp(eta + X delta) = mu (1 + X delta + ...)) and r = X'(mu o (X delta)^2) / 2, the
    score's second-order remainder. X_hi, mu_hi and DELTA_SHIFT extra bits of delta suffice:
    both are small corrections."""
    p, q = layout.p, layout.q
    fast = ctx.fixed.ring
    shifted = truncate(ctx, delta, delta.frac - SPLIT - DELTA_SHIFT)  # delta 2^DELTA_SHIFT at SPLIT bits
    v = layout.vector([Share(fast.reduce(shifted.data), fast, SPLIT)])
    xd = concat(truncate_each(ctx, [(s, X_FRAC) for s in _products(ctx, layout, [v], "poisson-move")]))
    w1 = truncate(ctx, mul(ctx, mu_hi, xd), SPLIT)  # mu X delta 2^DELTA_SHIFT
    w2 = truncate(ctx, mul(ctx, w1, xd), SPLIT)  # mu (X delta)^2 2^(2 DELTA_SHIFT)
    by_w1, by_w2 = _transposed(ctx, layout, [w1, w2], "poisson-moved")
    change, remainder = _lift(ctx, [(by_w1[2 * p : 2 * p + q].with_frac(by_w1.frac + DELTA_SHIFT), DELTA_SHIFT),
                                    (by_w2[:p].with_frac(by_w2.frac + 2 * DELTA_SHIFT + 1), 2 * DELTA_SHIFT + 1)])
    return change, remainder
