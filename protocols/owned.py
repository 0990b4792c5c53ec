"""Products of one party's private matrix with shared vectors, for row-level regression.

In a horizontally partitioned consortium each party holds its own rows X_i in the clear,
while the model's coefficients (and everything derived from them) stay shared. Logistic
regression needs X_i b, X_i' v and Z_i' w for shared vectors in every iteration. Secret-
sharing X_i and using a fresh matrix triple each time would cost rows x columns of
communication per iteration; instead the owner masks X_i once with a matrix A_i that it
shares only with the dealer (a persistent, owned component), publishes E_i = X_i - A_i,
and every later product needs only a fresh shared vector mask and the dealer's [A_i b].

Reference: the reuse of a masked data matrix across iterations is from Mohassel & Zhang,
"SecureML", IEEE S&P 2017, §4.2 ("the masked matrix E can be reused"); here the mask is
known to the data owner, which is what horizontal partitioning allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.ring import Limbs, Ring
from mpc.share import Share
from protocols.opening import open_arith


@dataclass(frozen=True)
class OwnedMatrix:
    """A party's private matrix as the other parties know it: masked, E = X - A."""

    owner: int
    name: str
    masked: np.ndarray
    ring: Ring
    frac: int
    mask: np.ndarray | None
    """A, held only by the owner (None elsewhere)."""

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.masked.shape
        return int(rows), int(cols)

    @cached_property
    def masked_limbs(self) -> Limbs:
        """E split for BLAS once (Z_2^64): every later product with E converts only the vector."""
        return Limbs.of(self.masked)

    @cached_property
    def mask_limbs(self) -> Limbs | None:
        """A split for BLAS once, at the owner (None elsewhere)."""
        return None if self.mask is None else Limbs.of(self.mask)

    def times(self, v: np.ndarray, transpose: bool) -> np.ndarray:
        """E v (or E' v) in the ring, from E's cached limbs in Z_2^64."""
        if not self.ring.native:
            return self.ring.matmul(self.masked.T if transpose else self.masked, v)
        return self.masked_limbs.times(v, transpose)

    def mask_times(self, v: np.ndarray, transpose: bool) -> np.ndarray:
        """A v (or A' v) in the ring, at the owner, from A's cached limbs in Z_2^64."""
        if self.mask is None:
            raise ValueError(f"only the owner of {self.name} holds its mask")
        if not self.ring.native:
            return self.ring.matmul(self.mask.T if transpose else self.mask, v)
        limbs = self.mask_limbs
        assert limbs is not None
        return limbs.times(v, transpose)


def publish_masked(
    ctx: PartyContext, owners: Sequence[int], matrices: dict[int, np.ndarray], shapes: dict[int, tuple[int, int]],
    name: str, ring: Ring, frac: int,
) -> list[OwnedMatrix]:
    """Every owner publishes its encoded matrix masked by its own persistent mask. One round.

    1. Owner i draws A_i (shared with the dealer only) and sends E_i = X_i - A_i to every peer.
    2. Everyone keeps E_i; the owner also keeps A_i.
    `matrices` holds this party's own encoded matrix (if it is an owner); `shapes` every owner's shape.
    """
    masks: dict[int, np.ndarray] = {}
    for owner in owners:
        params = {"owner": owner, "name": f"{name}/{owner}", "shape_a": list(shapes[owner]), "ring": ring.bits}
        got = ctx.dealer(MaterialRequest("owned_mask", params))
        if owner == ctx.rank:
            masks[owner] = got["a"]
    mine = ring.sub(ring.reduce(matrices[ctx.rank]), masks[ctx.rank]) if ctx.rank in owners else None
    payload = ring.to_bytes(mine) if mine is not None else b""
    outgoing = {p: payload for p in ctx.peers} if mine is not None else {}
    received = ctx.exchange(outgoing, [o for o in owners if o != ctx.rank], f"publish-{name}")
    out = []
    for owner in owners:
        masked = mine if owner == ctx.rank else ring.from_bytes(received[owner], shapes[owner])
        assert masked is not None
        out.append(OwnedMatrix(owner, f"{name}/{owner}", masked, ring, frac, masks.get(owner)))
    return out


def owned_matvec_many(
    ctx: PartyContext, products: Sequence[tuple[OwnedMatrix, Share, bool]], label: str = "owned-matvec"
) -> list[Share]:
    """[X_i v] (or [X_i' v] when the flag is set) for several owned matrices, one round.

    With [b] fresh and [c] = A_i b (or A_i' b) from the dealer:
    1. Open d = v - b for every product, batched.
    2. [X v] = E (d + [b]) + A d + [c]: d added by party 0 alone, A d by the owner alone.
    The scale is the matrix's frac plus the vector's. E's and A's limbs are cached on the
    `OwnedMatrix`, so a matrix is split for BLAS once however many products it takes part in.
    """
    requests = []
    for om, v, transpose in products:
        params = {"owner": om.owner, "name": om.name, "shape_a": list(om.shape), "ring": om.ring.bits}
        if transpose:
            params["transpose"] = True
        mat = ctx.dealer(MaterialRequest("owned_matvec", params))
        expected = om.shape[0] if transpose else om.shape[1]
        if v.shape != (expected,):
            raise ValueError(f"vector of shape {v.shape} for a {'transposed ' if transpose else ''}{om.shape} matrix")
        requests.append(mat)
    opened = open_arith(
        ctx, [Share(v.ring.sub(v.data, m["b"]), v.ring) for (_, v, _), m in zip(products, requests)], label
    )
    out = []
    for (om, v, transpose), m, d in zip(products, requests, opened):
        ring = om.ring
        z = ring.add(om.times(ring.add(m["b"], d) if ctx.is_leader else m["b"], transpose), m["c"])
        if ctx.rank == om.owner:
            assert "a" in m
            z = ring.add(z, om.mask_times(d, transpose))
        out.append(Share(z, ring, om.frac + v.frac))
    return out
