"""Products of the parties' published Z_2^64 matrices (at-risk matrices, pairwise products) with
shared vectors, for `protocols.cox`: `protocols.owned`'s recipe with each matrix's 22-bit limbs
computed once.

`mpc.ring`'s Z_2^64 product splits both factors into three 22-bit limbs held as float64 and
multiplies them with BLAS; the published matrix E and the owner's mask A are the same in every
Newton step, so their limbs are kept (`Limbs`), and a product of M' and of M with shared
vectors reads them, transposed or not, without converting the matrix again. With a fresh mask
[b] and [c] = A'b (or A b) from the dealer: open d = v - b; [M'v] = E'(b + d) (party 0) or E'b
(the others) + A'd (the owner) + [c].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mpc.context import PartyContext
from mpc.material import MaterialRequest
from mpc.share import Share
from protocols.opening import open_arith
from protocols.owned import OwnedMatrix

_BITS = 22
_BLOCK = 512  # inner-dimension block: every float64 partial sum stays below 2^53


@dataclass(frozen=True)
class Limbs:
    """A uint64 matrix as three float64 limbs of 22 bits (value = sum_i limb_i 2^(22 i))."""

    parts: tuple[np.ndarray, ...]

    @staticmethod
    def of(a: np.ndarray) -> Limbs:
        a = np.asarray(a, dtype=np.uint64)
        mask = np.uint64((1 << _BITS) - 1)
        return Limbs(tuple(((a >> np.uint64(_BITS * i)) & mask).astype(np.float64) for i in range(3)))

    def times(self, b: np.ndarray, transpose: bool) -> np.ndarray:
        """(M' b if `transpose` else M b) mod 2^64 for a uint64 vector or matrix b."""
        limbs_a = [p.T if transpose else p for p in self.parts]
        limbs_b = Limbs.of(b).parts
        inner = limbs_a[0].shape[-1]
        out: np.ndarray | None = None
        for lo in range(0, inner, _BLOCK):
            hi = min(inner, lo + _BLOCK)
            for i in range(3):
                for j in range(3 - i):
                    part = np.matmul(limbs_a[i][..., lo:hi], limbs_b[j][lo:hi, ...]).astype(np.uint64)
                    part <<= np.uint64(_BITS * (i + j))
                    out = part if out is None else out + part
        assert out is not None
        return out


def cached(matrices: Sequence[OwnedMatrix]) -> dict[str, tuple[Limbs, Limbs | None]]:
    """The limbs of each matrix's E and (at its owner) A."""
    return {om.name: (Limbs.of(om.masked), None if om.mask is None else Limbs.of(om.mask)) for om in matrices}


def owned_products(
    ctx: PartyContext, limbs: dict[str, tuple[Limbs, Limbs | None]], items: Sequence[tuple[OwnedMatrix, Share]],
    transpose: bool, label: str,
) -> list[Share]:
    """[M v] (or [M' v]) for each (M, v), one round; v a vector, or vectors as the columns of a matrix."""
    requests = []
    for om, v in items:
        params = {"owner": om.owner, "name": om.name, "shape_a": list(om.shape), "ring": om.ring.bits}
        if transpose:
            params["transpose"] = True
        columns = 1 if v.data.ndim == 1 else v.shape[1]
        mats = [ctx.dealer(MaterialRequest("owned_matvec", params)) for _ in range(columns)]
        b = mats[0]["b"] if v.data.ndim == 1 else np.stack([m["b"] for m in mats], axis=1)
        c = mats[0]["c"] if v.data.ndim == 1 else np.stack([m["c"] for m in mats], axis=1)
        requests.append((om, v, b, c))
    opened = open_arith(ctx, [Share(v.ring.sub(v.data, b), v.ring) for _, v, b, _ in requests], label)
    out = []
    for (om, v, b, c), d in zip(requests, opened):
        ring = om.ring
        e, a = limbs[om.name]
        z = ring.add(e.times(ring.add(b, d) if ctx.is_leader else b, transpose), c)
        if ctx.rank == om.owner:
            assert a is not None
            z = ring.add(z, a.times(d, transpose))
        out.append(Share(z, ring, om.frac + v.frac))
    return out
