"""Turning private inputs into shares, and public values into shares, without leaks.

A party's private input enters a computation by being split into n uniformly random
additive shares, one per party (`share_inputs`, `share_from`). The masks come from the
AES-CTR PRG, never from numpy's generators. A public value enters as a trivial sharing
in which party 0 holds the value and the others zero (`public`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.prg import random_ring_elements
from mpc.ring import Ring
from mpc.share import Share


def split(ring: Ring, secret: np.ndarray, n: int) -> list[np.ndarray]:
    """n uniformly random additive shares of `secret` (ring elements)."""
    parts = [random_ring_elements(ring, tuple(secret.shape)) for _ in range(n - 1)]
    last = secret
    for p in parts:
        last = ring.sub(last, p)
    return parts + [last]


def public(ctx: PartyContext, encoded: Any, ring: Ring, frac: int) -> Share:
    """A sharing of a public, already-encoded value: party 0 holds it, others hold 0."""
    arr = ring.reduce(np.asarray(encoded))
    return Share(arr if ctx.is_leader else ring.zeros(arr.shape), ring, frac)


def share_inputs(ctx: PartyContext, encoded: np.ndarray, ring: Ring, frac: int, label: str = "input") -> list[Share]:
    """Every party shares one private, encoded array of the same shape; one round.

    1. Each party splits its input into n random shares and sends share j to party j.
    2. Party j's share of input i is what party i sent it (its own share of its own input).
    Returns the sharings of all n inputs, by owner rank.
    """
    parts = split(ring, ring.reduce(encoded), ctx.n)
    shape = tuple(np.shape(encoded))
    received = ctx.exchange({p: ring.to_bytes(parts[p]) for p in ctx.peers}, ctx.peers, label)
    out = []
    for owner in range(ctx.n):
        data = parts[ctx.rank] if owner == ctx.rank else ring.from_bytes(received[owner], shape)
        out.append(Share(data, ring, frac))
    return out


def share_from(
    ctx: PartyContext, owner: int, encoded: np.ndarray | None, shape: tuple[int, ...], ring: Ring, frac: int
) -> Share:
    """Party `owner` shares its private encoded array; the others pass None. One round."""
    if ctx.rank == owner:
        if encoded is None:
            raise ValueError("the owner of an input must provide it")
        parts = split(ring, ring.reduce(encoded), ctx.n)
        ctx.exchange({p: ring.to_bytes(parts[p]) for p in ctx.peers}, [], f"share-from-{owner}")
        return Share(parts[owner], ring, frac)
    received = ctx.exchange({}, [owner], f"share-from-{owner}")
    return Share(ring.from_bytes(received[owner], shape), ring, frac)
