"""A truncation and a product in one round: [(x >> m) * y] with x's opening doubling as the product's.

The exact truncation of `protocols.truncation` opens c = x + 2^(k-2) + r and returns
[x >> m] = L(c) - [mu] with [mu] = [r_shift] + s(c) [r_msb], L(c) and s(c) public. A Beaver
product of that value with y needs y masked (F = y - b) and the dealer's [b r_shift] and
[b r_msb]; F travels in the same message as c. So x is truncated and multiplied by y in
one round instead of two:

1. Open c = x + 2^(k-2) + r and F = y - b.
2. [x >> m] = L - [mu];  [(x >> m) y] = L F + L [b] - F [mu] - [b r_shift] - s(c) [b r_msb].

Used by the logistic Newton loop (the step's truncation inside the decrement g . delta) and,
as matrices, by `protocols.newton_schulz`.

Reference: Escudero, Ghosh, Keller, Rachuri, Scholl, CRYPTO 2020, Section 5; Beaver, CRYPTO 1991.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets, _trunc_derive
from mpc.ring import Ring, ring_of
from mpc.share import Share
from protocols.opening import open_arith


def _free(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["n"]), int(p["ring"])
    return [Component("r", "arith", (n,), bits), Component("b", "arith", (n,), bits)]


def _derived(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["n"]), int(p["ring"])
    return [Component(name, "arith", (n,), bits) for name in ("rho", "beta", "b_rho", "b_beta")]


def _derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = ring_of(int(p["ring"]))
    t = _trunc_derive({"f": p["f"], "ring": p["ring"]}, {"r": s["r"]})
    return {"rho": t["r_shift"], "beta": t["r_msb"], "b_rho": ring.mul(s["b"], t["r_shift"]),
            "b_beta": ring.mul(s["b"], t["r_msb"])}


TRUNC_MUL = MaterialKind("trunc_mul", _free, _derived, _derive)
"""A truncation mask, a product mask, and their products."""


def opened_truncation(ring: Ring, c: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """L(c) (public; includes the -2^(k-2-m) offset) and the weights s(c) = +-2^(k-1-m) of r_msb."""
    k = ring.bits
    msb = ring.reduce(ring.msb(c))
    low = ring.sub(c, ring.lshift(msb, k - 1))
    public = ring.add(ring.rshift_logical(low, m), ring.lshift(msb, k - 1 - m))
    public = ring.sub(public, ring.constant(1 << (k - 2 - m)))
    weight = ring.sub(ring.lshift(msb, k - m), ring.constant(1 << (k - 1 - m)))
    return public, weight


def truncate_times(ctx: PartyContext, x: Share, m: int, y: Share) -> tuple[Share, Share]:
    """([x >> m], [(x >> m) y]) for same-shaped x, y of one ring (|x| < 2^(k-2)). One round."""
    ring = x.ring
    if y.ring != ring or x.shape != y.shape:
        raise ValueError("truncate_times needs two shares of one ring and shape")
    if not 0 < m <= x.frac:
        raise ValueError(f"cannot truncate {m} bits from a value with {x.frac} fractional bits")
    n = x.size
    mat = ctx.dealer(MaterialRequest("trunc_mul", {"n": n, "ring": ring.bits, "f": m}))
    flat = x.data.reshape(n)
    if ctx.is_leader:
        flat = ring.add(flat, ring.constant(1 << (ring.bits - 2)))
    c, f_open = open_arith(ctx, [Share(ring.add(flat, mat["r"]), ring),
                                 Share(ring.sub(y.data.reshape(n), mat["b"]), ring)], "trunc-mul")
    public, weight = opened_truncation(ring, c, m)
    mu = ring.add(mat["rho"], ring.mul(mat["beta"], weight))
    prod = ring.sub(ring.mul(public, mat["b"]), ring.mul(f_open, mu))
    prod = ring.sub(ring.sub(prod, mat["b_rho"]), ring.mul(mat["b_beta"], weight))
    trunc = ring.neg(mu)
    if ctx.is_leader:
        prod = ring.add(prod, ring.mul(public, f_open))
        trunc = ring.add(trunc, public)
    return (Share(trunc.reshape(x.shape), ring, x.frac - m),
            Share(prod.reshape(x.shape), ring, x.frac - m + y.frac))
