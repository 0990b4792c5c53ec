"""Products of the parties' published Z_2^64 matrices (at-risk matrices, pairwise products) with
shared vectors, for `protocols.cox`: `protocols.owned`'s recipe with each matrix's 22-bit limbs
computed once.

`mpc.ring`'s Z_2^64 product splits both factors into three 22-bit limbs held as float64 and
multiplies them with BLAS; the published matrix E and the owner's mask A are the same in every
Newton step, so their limbs are kept (`mpc.ring.Limbs`, cached on each `OwnedMatrix`), and a
product of M' and of M with shared vectors reads them, transposed or not, without converting the
matrix again. With a fresh mask [b] and [c] = A'b (or A b) from the dealer: open d = v - b;
[M'v] = E'(b + d) (party 0) or E'b (the others) + A'd (the owner) + [c]. Several vectors against
one matrix take one piece of material, b and c with a column per vector (`OWNED_COLUMNS`): the
dealer and the owner draw the persistent A once for them, not once per vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets, limbs_of
from mpc.ring import Limbs, ring_of
from mpc.share import Share
from protocols.opening import open_arith
from protocols.owned import OwnedMatrix


def _columns_free(p: dict[str, Any]) -> list[Component]:
    rows, cols = (int(v) for v in p["shape_a"])
    vec = rows if p.get("transpose") else cols
    return [Component("a", "arith", (rows, cols), int(p["ring"]), owner=int(p["owner"]), persistent=str(p["name"])),
            Component("b", "arith", (vec, int(p["columns"])), int(p["ring"]))]


def _columns_derived(p: dict[str, Any]) -> list[Component]:
    rows, cols = (int(v) for v in p["shape_a"])
    return [Component("c", "arith", (cols if p.get("transpose") else rows, int(p["columns"])), int(p["ring"]))]


def _columns_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    if int(p["ring"]) != 64:
        a = s["a"].T if p.get("transpose") else s["a"]
        return {"c": ring_of(int(p["ring"])).matmul(a, s["b"])}
    return {"c": limbs_of(s, "a").times(s["b"], bool(p.get("transpose")))}


OWNED_COLUMNS = MaterialKind("owned_columns", _columns_free, _columns_derived, _columns_derive)
"""owned_matvec's material for k vectors at once: the persistent mask A, b (vec x k), c = A b or A'b
(in Z_2^64 by `Limbs`)."""

def cached(matrices: Sequence[OwnedMatrix]) -> dict[str, tuple[Limbs, Limbs | None]]:
    """The limbs of each matrix's E and (at its owner) A, as cached on the matrix (`OwnedMatrix.masked_limbs`)."""
    return {om.name: (om.masked_limbs, om.mask_limbs) for om in matrices}


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
        columns = Share(v.data.reshape(v.shape[0], -1), v.ring, v.frac)
        mat = ctx.dealer(MaterialRequest("owned_columns", {**params, "columns": columns.shape[1]}))
        requests.append((om, columns, mat["b"], mat["c"]))
    opened = open_arith(ctx, [Share(v.ring.sub(v.data, b), v.ring) for _, v, b, _ in requests], label)
    out = []
    for (om, v, b, c), d, (_, given) in zip(requests, opened, items):
        ring = om.ring
        e, a = limbs[om.name]
        z = ring.add(e.times(ring.add(b, d) if ctx.is_leader else b, transpose), c)
        if ctx.rank == om.owner:
            assert a is not None
            z = ring.add(z, a.times(d, transpose))
        out.append(Share(z.reshape(-1) if given.data.ndim == 1 else z, ring, om.frac + v.frac))
    return out
