"""Multiplication of shared values with dealer-supplied Beaver triples.

`mul_many` multiplies any number of pairs elementwise in one round, `matmul` multiplies
shared matrices with a matrix triple (communication proportional to the inputs, not to
the product's inner work), and `fixed_mul`/`fixed_matmul` add the truncation that brings
a fixed-point product back to its scale (one more round).

Reference: D. Beaver, "Efficient Multiparty Protocols Using Circuit Randomization",
CRYPTO 1991; matrix triples as in Mohassel & Zhang, "SecureML", IEEE S&P 2017, §4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.share import Share, concat, split_like
from protocols.opening import open_arith, packed
from protocols.truncation import truncate, truncate_many


def mul(ctx: PartyContext, x: Share, y: Share) -> Share:
    """[x * y] elementwise; the scale is x.frac + y.frac. One round."""
    (z,) = mul_many(ctx, [(x, y)])
    return z


def mul_many(ctx: PartyContext, pairs: Sequence[tuple[Share, Share]]) -> list[Share]:
    """Elementwise products of several same-shaped pairs, all in one round.

    With a triple ([a], [b], [c = a*b]) from the dealer:
    1. Open e = x - a and d = y - b (batched: one message per peer for every pair).
    2. [z] = [c] + e [b] + d [a] + e d   (party 0 alone adds the public e d).
    """
    if not pairs:
        return []
    pending = PendingMul.begin(ctx, pairs)
    return pending.finish(ctx, open_arith(ctx, pending.shares(), "beaver"), reuse=True)


class PendingMul:
    """`mul_many` in two halves, for protocols that open other values in the same round:
    `begin` takes the triple, `shares` are what to open, `finish` takes their openings."""

    def __init__(self, pairs: Sequence[tuple[Share, Share]], triple: Mapping[str, np.ndarray], fx: Share, fy: Share):
        self._pairs, self._t, self._fx, self._fy = list(pairs), triple, fx, fy

    @staticmethod
    def begin(ctx: PartyContext, pairs: Sequence[tuple[Share, Share]]) -> PendingMul:
        for x, y in pairs:
            if x.shape != y.shape:
                raise ValueError(f"elementwise product of shapes {x.shape} and {y.shape}")
            if x.ring != y.ring:
                raise ValueError("cannot multiply shares of different rings")
        fx = _flat([x for x, _ in pairs])
        fy = _flat([y for _, y in pairs])
        ring = fx.ring
        t = ctx.dealer(MaterialRequest("triple", {"shape": [fx.size], "ring": ring.bits}))
        return PendingMul(pairs, t, fx, fy)

    def shares(self) -> list[Share]:
        """The masked values to open: x - a, y - b."""
        ring = self._fx.ring
        if not ring.native:
            return [Share(ring.sub(self._fx.data, self._t["a"]), ring),
                    Share(ring.sub(self._fy.data, self._t["b"]), ring)]
        e, d = packed(ring, self._fx.size, 2)  # one buffer: the opening sends it without a copy
        np.subtract(self._fx.data, self._t["a"], out=e)
        np.subtract(self._fy.data, self._t["b"], out=d)
        return [Share(e, ring), Share(d, ring)]

    def finish(self, ctx: PartyContext, opened: Sequence[np.ndarray], reuse: bool = False) -> list[Share]:
        """The products (scale: the sum of the factors' scales) from the opened e and d.

        `reuse`: e and d are the caller's to overwrite (fresh arrays of the opening), so the
        sums are computed in them instead of in new arrays.
        """
        e, d = opened
        ring = self._fx.ring
        a, b = self._t["a"], self._t["b"]
        # Party 0 folds the public e*d into e*(b + d): one product fewer. c is read only now: the
        # dealer's part of it travels while e and d are opened.
        if ring.native:  # the same sums, with no temporary array beyond b + d
            z = np.multiply(e, (b + d) if ctx.is_leader else b, out=e if reuse else None)
            z += np.multiply(d, a, out=d if reuse else None)
            z += self._t["c"]
        else:
            z = ring.add(self._t["c"], ring.add(ring.mul(e, ring.add(b, d) if ctx.is_leader else b), ring.mul(d, a)))
        xs = [x for x, _ in self._pairs]
        pieces = split_like(Share(z, ring), xs)
        return [Share(p.data, ring, x.frac + y.frac) for p, (x, y) in zip(pieces, self._pairs)]


def _flat(shares: list[Share]) -> Share:
    """The shares flattened into one vector at scale 0: a view of a single share's data, else a new array."""
    if len(shares) == 1:
        return Share(shares[0].data.reshape(-1), shares[0].ring)
    return concat([s.with_frac(0) for s in shares])


def matmul(ctx: PartyContext, x: Share, y: Share) -> Share:
    """[X @ Y] for shared matrices (or matrix-vector); the scale adds. One round.

    With a matrix triple ([A], [B], [C = A @ B]) of the same shapes:
    1. Open E = X - A and D = Y - B.
    2. [Z] = [C] + E [B] + [A] D + E D   (party 0 alone adds E D).
    """
    if x.ring != y.ring:
        raise ValueError("cannot multiply shares of different rings")
    if x.data.ndim != 2 or y.data.ndim not in (1, 2) or x.shape[1] != y.shape[0]:
        raise ValueError(f"matrix product of shapes {x.shape} and {y.shape}")
    ring = x.ring
    t = ctx.dealer(
        MaterialRequest("matmul_triple", {"shape_a": list(x.shape), "shape_b": list(y.shape), "ring": ring.bits})
    )
    a, b = t["a"], t["b"]
    e, d = open_arith(ctx, [Share(ring.sub(x.data, a), ring), Share(ring.sub(y.data, b), ring)], "matmul")
    # Party 0 folds the public E D into E (B + D): one matrix product fewer. C is read after the opening.
    z = ring.add(t["c"], ring.add(ring.matmul(e, ring.add(b, d) if ctx.is_leader else b), ring.matmul(a, d)))
    return Share(z, ring, x.frac + y.frac)


def fixed_mul(ctx: PartyContext, x: Share, y: Share) -> Share:
    """Fixed-point product at x's scale: Beaver product then truncation. Two rounds."""
    return truncate(ctx, mul(ctx, x, y), y.frac)


def fixed_mul_many(ctx: PartyContext, pairs: Sequence[tuple[Share, Share]]) -> list[Share]:
    """Several fixed-point products in two rounds (all pairs' second factors share a scale)."""
    if not pairs:
        return []
    fracs = {y.frac for _, y in pairs}
    if len(fracs) != 1:
        raise ValueError("fixed_mul_many needs second factors of one scale")
    products = mul_many(ctx, pairs)
    by_frac: dict[int, list[int]] = {}
    for i, p in enumerate(products):
        by_frac.setdefault(p.frac, []).append(i)
    m = fracs.pop()
    out: list[Share | None] = [None] * len(products)
    if len(by_frac) == 1:
        return truncate_many(ctx, products, m)
    for idx in by_frac.values():  # different first-factor scales: one truncation round each
        for i, t in zip(idx, truncate_many(ctx, [products[i] for i in idx], m)):
            out[i] = t
    return [o for o in out if o is not None]


def fixed_matmul(ctx: PartyContext, x: Share, y: Share) -> Share:
    """Fixed-point matrix product at x's scale. Two rounds."""
    return truncate(ctx, matmul(ctx, x, y), y.frac)
