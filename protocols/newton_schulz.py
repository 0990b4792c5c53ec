"""Newton-Schulz steps whose truncations ride in the products' openings: two rounds a step.

The plain step X <- X (2I - A X) is two Beaver matrix products, each followed by its own
truncation round: four rounds. Here the product X (2I - A X) is formed from the two
truncations' openings alone. The exact truncation of `protocols.truncation` opens
c = Y + 2^(k-2) + r and returns

    [Y >> m] = L(c) - [mu],   [mu] = [r_shift] + s(c) [r_msb],   s(c) = +-2^(k-1-m),

with L(c) and s(c) public once c is open: the truncated value is a public matrix minus a
combination of dealer values with public coefficients. A product of two such values, or
of one with A masked by a dealer matrix alpha, therefore needs only the dealer's products
of those values (matrix products, and for the s(c)-weighted terms the three-index
products r_msb[i,k] v[k,j], summed locally with the public weights).

One step, from the untruncated [X_raw] (scale 2f) and the shared [A] (scale f):
1. Open F = A - alpha and c_X = X_raw + 2^(k-2) + r_X (one round).
   [X] = L_X - [mu_X];  [U] = [A] L_X - F [mu_X] - [alpha mu_X]   (U = A X, scale 2f)
2. Open c_U = U + 2^(k-2) + r_U (one round).  With P = 2I - L_U, so that 2I - [U >> f] = P + [mu_U]:
   [X_raw'] = L_X P + L_X [mu_U] - [mu_X] P - [mu_X mu_U]                 (scale 2f)
The result is exact up to the truncations' one unit in the last place, as the four-round
step's is; every opened value is masked by fresh uniform dealer randomness.

Reference: Escudero, Ghosh, Keller, Rachuri, Scholl, CRYPTO 2020, Section 5 (the
truncation); Beaver, CRYPTO 1991 (masked products); G. Schulz, ZAMM 13 (1933).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets, _trunc_derive
from mpc.ring import Ring, ring_of
from mpc.share import Share
from protocols.arith import rescale_up
from protocols.opening import open_arith
from protocols.trunc_mul import opened_truncation

_SQUARE = ("alpha", "r_x", "r_u")
_DERIVED_SQUARE = ("rho_x", "beta_x", "rho_u", "beta_u", "alpha_rho", "rho_rho")
_DERIVED_CUBE = ("t_alpha_beta", "t_rho_beta", "t_beta_rho", "t_beta_beta")


def _free(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["p"]), int(p["ring"])
    return [Component(name, "arith", (n, n), bits) for name in _SQUARE]


def _derived(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["p"]), int(p["ring"])
    return [Component(name, "arith", (n, n), bits) for name in _DERIVED_SQUARE] + [
        Component(name, "arith", (n, n, n), bits) for name in _DERIVED_CUBE
    ]


def _cube(ring: Ring, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """T[i, k, j] = left[i, k] right[k, j]."""
    return ring.mul(left[:, :, None], right[None, :, :])


def _derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = ring_of(int(p["ring"]))
    tx = _trunc_derive({"f": p["f"], "ring": p["ring"]}, {"r": s["r_x"]})
    tu = _trunc_derive({"f": p["f"], "ring": p["ring"]}, {"r": s["r_u"]})
    rho_x, beta_x, rho_u, beta_u = tx["r_shift"], tx["r_msb"], tu["r_shift"], tu["r_msb"]
    return {
        "rho_x": rho_x, "beta_x": beta_x, "rho_u": rho_u, "beta_u": beta_u,
        "alpha_rho": ring.matmul(s["alpha"], rho_x),
        "rho_rho": ring.matmul(rho_x, rho_u),
        "t_alpha_beta": _cube(ring, s["alpha"], beta_x),
        "t_rho_beta": _cube(ring, rho_x, beta_u),
        "t_beta_rho": _cube(ring, beta_x, rho_u),
        "t_beta_beta": _cube(ring, beta_x, beta_u),
    }


NS_STEP = MaterialKind("ns_step", _free, _derived, _derive)
"""One fused Newton-Schulz step: masks for A and both truncations, and their products."""


def _final_free(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["p"]), int(p["ring"])
    return [Component("r_x", "arith", (n, n), bits), Component("b", "arith", (n,), bits)]


def _final_derived(p: dict[str, Any]) -> list[Component]:
    n, bits = int(p["p"]), int(p["ring"])
    return [Component("rho_x", "arith", (n, n), bits), Component("beta_x", "arith", (n, n), bits),
            Component("rho_b", "arith", (n,), bits), Component("t_beta_b", "arith", (n, n), bits)]


def _final_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = ring_of(int(p["ring"]))
    t = _trunc_derive({"f": p["f"], "ring": p["ring"]}, {"r": s["r_x"]})
    return {"rho_x": t["r_shift"], "beta_x": t["r_msb"], "rho_b": ring.matmul(t["r_shift"], s["b"]),
            "t_beta_b": ring.mul(t["r_msb"], s["b"][None, :])}


NS_FINAL = MaterialKind("ns_final", _final_free, _final_derived, _final_derive)
"""The last truncation of X and a mask for a vector to multiply it by, with their products."""


def _weighted(ring: Ring, cube: np.ndarray, weight: np.ndarray, axis: str) -> np.ndarray:
    """sum_k w[.] T[i, k, j] with w indexed [k, j] (axis 'kj') or [i, k] (axis 'ik')."""
    w = weight[None, :, :] if axis == "kj" else weight[:, :, None]
    return ring.sum(ring.mul(cube, w), axis=1)


def _step(ctx: PartyContext, a: Share, x_raw: np.ndarray, m: int) -> np.ndarray:
    """One fused step: the shares of the next untruncated X (scale 2f). Two rounds."""
    ring = a.ring
    k, p = ring.bits, a.shape[0]
    mat = ctx.dealer(MaterialRequest("ns_step", {"p": p, "ring": k, "f": m}))
    offset = ring.constant(1 << (k - 2))
    lead = ctx.is_leader
    masked_x = ring.add(ring.add(x_raw, offset) if lead else x_raw, mat["r_x"])
    f_open, c_x = open_arith(ctx, [Share(ring.sub(a.data, mat["alpha"]), ring), Share(masked_x, ring)], "ns-x")
    l_x, s_x = opened_truncation(ring, c_x, m)
    mu_x = ring.add(mat["rho_x"], ring.mul(mat["beta_x"], s_x))
    alpha_mu = ring.add(mat["alpha_rho"], _weighted(ring, mat["t_alpha_beta"], s_x, "kj"))
    u = ring.sub(ring.sub(ring.matmul(a.data, l_x), ring.matmul(f_open, mu_x)), alpha_mu)
    masked_u = ring.add(ring.add(u, offset) if lead else u, mat["r_u"])
    (c_u,) = open_arith(ctx, [Share(masked_u, ring)], "ns-u")
    l_u, s_u = opened_truncation(ring, c_u, m)
    mu_u = ring.add(mat["rho_u"], ring.mul(mat["beta_u"], s_u))
    two = ring.reduce(np.eye(p, dtype=np.int64) * 2)
    p_pub = ring.sub(ring.lshift(two, m), l_u)  # 2I at scale m, minus L_U
    mu_mu = ring.add(mat["rho_rho"], _weighted(ring, mat["t_rho_beta"], s_u, "kj"))
    mu_mu = ring.add(mu_mu, _weighted(ring, mat["t_beta_rho"], s_x, "ik"))
    both = ring.mul(mat["t_beta_beta"], ring.mul(s_x[:, :, None], s_u[None, :, :]))
    mu_mu = ring.add(mu_mu, ring.sum(both, axis=1))
    out = ring.sub(ring.sub(ring.matmul(l_x, mu_u), ring.matmul(mu_x, p_pub)), mu_mu)
    if lead:
        out = ring.add(out, ring.matmul(l_x, p_pub))
    return out


def _final(ctx: PartyContext, a: Share, x_raw: np.ndarray, m: int, v: Share) -> tuple[Share, Share]:
    """[X] = [X_raw >> m] and [X v] (scale m + v.frac) in one round: v's mask rides with X's."""
    ring = a.ring
    k, p = ring.bits, a.shape[0]
    mat = ctx.dealer(MaterialRequest("ns_final", {"p": p, "ring": k, "f": m}))
    lead = ctx.is_leader
    masked_x = ring.add(ring.add(x_raw, ring.constant(1 << (k - 2))) if lead else x_raw, mat["r_x"])
    c_x, f_v = open_arith(ctx, [Share(masked_x, ring), Share(ring.sub(v.data, mat["b"]), ring)], "ns-final")
    l_x, s_x = opened_truncation(ring, c_x, m)
    mu_x = ring.add(mat["rho_x"], ring.mul(mat["beta_x"], s_x))
    mu_b = ring.add(mat["rho_b"], ring.sum(ring.mul(mat["t_beta_b"], s_x), axis=1))
    xv = ring.sub(ring.sub(ring.matmul(l_x, mat["b"]), ring.matmul(mu_x, f_v)), mu_b)
    x = ring.neg(mu_x)
    if lead:
        xv = ring.add(xv, ring.matmul(l_x, f_v))
        x = ring.add(x, l_x)
    return Share(x, ring, m), Share(xv, ring, m + v.frac)


def newton_schulz_fused(ctx: PartyContext, a: Share, x0: Share, iterations: int) -> Share:
    """X <- X (2I - A X) `iterations` times from X0 (A and X0 at one scale f). 2 rounds a step, plus 1.

    The steps carry X untruncated; one final truncation returns it at scale f (`newton_schulz_times`).
    """
    x, _ = newton_schulz_times(ctx, a, x0, iterations, Share(a.ring.zeros((a.shape[0],)), a.ring, 0))
    return x


def newton_schulz_times(ctx: PartyContext, a: Share, x0: Share, iterations: int, v: Share) -> tuple[Share, Share]:
    """`newton_schulz_fused`'s [X], and [X v] (scale f + v.frac, untruncated) in the same final round."""
    if x0.frac != a.frac:
        raise ValueError("A and X0 must have the same scale")
    m = a.frac
    x_raw = rescale_up(x0, m).data
    for _ in range(iterations):
        x_raw = _step(ctx, a, x_raw, m)
    return _final(ctx, a, x_raw, m, v)
