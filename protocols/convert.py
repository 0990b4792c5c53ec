"""Moving a shared value from the fast ring Z_2^64 to the precise ring Z_2^128.

Row-level work runs in Z_2^64; its aggregates (a gradient, a Hessian) then need the
precision of Z_2^128. Additive shares cannot simply be reinterpreted in the bigger ring —
the shares' sum wraps around 2^64 an unknown number of times — so the parties open the
value masked by a dealer mask r (given both in Z_2^64 and, as the same integer, in
Z_2^128, plus its bits) and compute the one wrap bit [c < r] with the comparator circuit.

Reference: the "extend" conversion of Escudero et al., CRYPTO 2020 (edaBits), §5.
"""

from __future__ import annotations

from typing import Any

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets
from mpc.ring import RING64, RING128
from mpc.share import Share
from protocols.boolean import lanes, row_to_arith, to_slices, unpack_lanes
from protocols.circuits import borrow_out, generate_propagate
from protocols.opening import open_arith

_OFFSET = 1 << 62


def _free(p: dict[str, Any]) -> list[Component]:
    n = int(p["n"])
    return [Component("r", "arith", (n,), 64), Component("s", "xor", (lanes(n),))]


def _derived(p: dict[str, Any]) -> list[Component]:
    n = int(p["n"])
    return [
        Component("r_big", "arith", (n,), 128),
        Component("r_bits", "xor", (64, lanes(n))),
        Component("s_big", "arith", (n,), 128),
    ]


def _derive(p: dict[str, Any], s: Secrets) -> Secrets:
    r = s["r"]
    bit = unpack_lanes(s["s"], int(p["n"])).astype(object)
    r_big = RING128.reduce(r.astype(object))
    return {"r_big": r_big, "r_bits": to_slices(r.reshape(-1, 1)), "s_big": RING128.reduce(bit)}


EXTEND_MASK = MaterialKind("extend_mask", _free, _derived, _derive)
"""r in Z_2^64, the same integer in Z_2^128, its bits (bit-sliced rows), and a daBit into Z_2^128."""


def extend_ring(ctx: PartyContext, x: Share) -> Share:
    """[x] in Z_2^128 (same signed value and scale) from [x] in Z_2^64; |x| < 2^62. 5 rounds.

    1. y = x + 2^62 in [0, 2^63); open c = y + r mod 2^64.
    2. Over the integers y = c - r + 2^64 [c < r]; [c < r] by the comparator circuit on the
       public c and the shared bits of r (`protocols.circuits.borrow_out`, three levels),
       then a daBit into Z_2^128.
    3. [x]_128 = c - [r]_128 + 2^64 [w]_128 - 2^62.
    """
    if x.ring != RING64:
        raise ValueError("extend_ring takes a share of Z_2^64")
    flat = x.data.ravel()
    mat = ctx.dealer(MaterialRequest("extend_mask", {"n": int(flat.size)}))
    y = RING64.add(flat, RING64.constant(_OFFSET)) if ctx.is_leader else flat
    (c,) = open_arith(ctx, [Share(RING64.add(y, mat["r"]), RING64)], "extend-open")
    g, p = generate_propagate(ctx, to_slices(c.reshape(-1, 1)), mat["r_bits"])
    wrap = borrow_out(ctx, g, p, "extend-level")
    w = row_to_arith(ctx, wrap, int(flat.size), RING128, mat["s"], mat["s_big"])
    out = RING128.sub(RING128.lshift(w.data, 64), mat["r_big"])
    if ctx.is_leader:
        out = RING128.add(out, RING128.reduce(c.astype(object)) - _OFFSET)
        out = RING128.reduce(out)
    return Share(out.reshape(x.shape), RING128, x.frac)
