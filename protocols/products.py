"""Several products in one round, each distinct operand opened once.

A Beaver product opens both of its factors, masked. When one shared value enters several
products of a round — e in q (1 + e) and e e, a bit times six coefficients, t in t t^2
and t^2 t^2 — opening it once, masked by one dealer value a, serves all of them: the
dealer derives every needed product a_i a_j, and each product's share follows the usual
recipe. A round of P products over U distinct operands then moves U ring elements per
peer instead of 2P; squares cost one opening, not two.

Reference: Beaver, CRYPTO 1991 (circuit randomisation); reusing one masked opening across
products is the multiplication-with-shared-masks form used e.g. for matrix triples
(Mohassel & Zhang, SecureML, S&P 2017).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets
from mpc.ring import ring_of
from mpc.share import Share
from protocols.beaver import mul_many
from protocols.opening import open_arith


def _free(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["n"]), int(p.get("ring", 64))
    return [Component(f"a{i}", "arith", (n,), bits) for i in range(int(p["operands"]))]


def _derived(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["n"]), int(p.get("ring", 64))
    return [Component(f"c{k}", "arith", (n,), bits) for k in range(len(p["pairs"]))]


def _derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = ring_of(int(p.get("ring", 64)))
    return {f"c{k}": ring.mul(s[f"a{i}"], s[f"a{j}"]) for k, (i, j) in enumerate(p["pairs"])}


PRODUCT_MASKS = MaterialKind("product_masks", _free, _derived, _derive)
"""One mask a_i per distinct operand, and the products a_i a_j a round of products needs."""


def products(ctx: PartyContext, pairs: Sequence[tuple[Share, Share]]) -> list[Share]:
    """[x y] for every pair, in one round; an operand passed as the same Share object is opened once.

    With masks [a_i] (one per distinct operand) and [c_ij] = [a_i a_j] from the dealer:
    1. Open d_i = x_i - a_i for every distinct operand (one message per peer).
    2. [x_i x_j] = [c_ij] + d_i [a_j] + d_j [a_i] + d_i d_j (party 0 adds the public term).
    Every operand must have the same number of elements and ring; otherwise this is
    `protocols.beaver.mul_many`. The scale of a product is the sum of its factors' scales.
    """
    if not pairs:
        return []
    if not PendingProducts.fits(pairs):
        return mul_many(ctx, pairs)
    pending = PendingProducts.begin(ctx, pairs)
    return pending.finish(ctx, open_arith(ctx, pending.shares(), "products"))


class PendingProducts:
    """`products` in two halves, for protocols that open other values in the same round:
    `begin` takes the masks, `shares` are what to open, `finish` takes their openings."""

    def __init__(self, pairs: Sequence[tuple[Share, Share]], operands: list[Share], ids: list[tuple[int, int]],
                 mat: Mapping[str, np.ndarray]) -> None:
        self._pairs, self._operands, self._ids, self._mat = list(pairs), operands, ids, mat

    @staticmethod
    def fits(pairs: Sequence[tuple[Share, Share]]) -> bool:
        """Whether every operand has the same number of elements and ring (else use `mul_many`)."""
        first = pairs[0][0]
        return all(s.ring == first.ring and s.size == first.size for pair in pairs for s in pair)

    @staticmethod
    def begin(ctx: PartyContext, pairs: Sequence[tuple[Share, Share]]) -> PendingProducts:
        if not PendingProducts.fits(pairs):
            raise ValueError("products of operands of different sizes or rings: use mul_many")
        operands: list[Share] = []
        index: dict[int, int] = {}
        for x, y in pairs:
            for s in (x, y):
                if id(s) not in index:
                    index[id(s)] = len(operands)
                    operands.append(s)
        ring, size = operands[0].ring, operands[0].size
        ids = [(index[id(x)], index[id(y)]) for x, y in pairs]
        mat = ctx.dealer(
            MaterialRequest("product_masks", {"n": size, "operands": len(operands), "pairs": ids, "ring": ring.bits})
        )
        return PendingProducts(pairs, operands, ids, mat)

    def shares(self) -> list[Share]:
        """The masked operands to open: x_i - a_i."""
        ring = self._operands[0].ring
        return [Share(ring.sub(s.data.ravel(), self._mat[f"a{i}"]), ring) for i, s in enumerate(self._operands)]

    def finish(self, ctx: PartyContext, opened: Sequence[np.ndarray]) -> list[Share]:
        """The products (scale: the sum of the factors' scales) from the opened d_i."""
        ring = self._operands[0].ring
        masks = [self._mat[f"a{i}"] for i in range(len(self._operands))]
        out = []
        for k, ((i, j), (x, y)) in enumerate(zip(self._ids, self._pairs)):
            z = ring.add(self._mat[f"c{k}"], ring.add(ring.mul(opened[i], masks[j]), ring.mul(opened[j], masks[i])))
            if ctx.is_leader:
                z = ring.add(z, ring.mul(opened[i], opened[j]))
            out.append(Share(z.reshape(x.shape), ring, x.frac + y.frac))
        return out
