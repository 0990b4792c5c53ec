"""Turning private inputs into shares, and public values into shares, without leaks.

A party's private input enters a computation by being split into n uniformly random
additive shares, one per party (`share_inputs`, `share_from`). The masks come from the
AES-CTR PRG, never from numpy's generators. When the parties have agreed pairwise seeds
(`PartyContext.pairs`, see `mpc.pairs`), the share the owner would send to party j is
drawn by both of them from their common seed instead, and no message is needed; without
them, the owner sends each share (one round). A public value enters as a trivial sharing
in which party 0 holds the value and the others zero (`public`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.prg import random_ring_elements
from mpc.ring import RING64, Ring
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


def _paired(ctx: PartyContext) -> bool:
    return all(p in ctx.pairs for p in ctx.peers)


def _pair_share(ctx: PartyContext, peer: int, owner: int, tag: str, ring: Ring, shape: tuple[int, ...]) -> np.ndarray:
    """The share of `owner`'s input that `owner` and `peer` both draw from their pairwise seed."""
    return ctx.pairs[peer].ring_elements(ring, f"{tag}|owner={owner}", shape)


def _own_share(ctx: PartyContext, secret: np.ndarray, tag: str, ring: Ring) -> np.ndarray:
    """The owner's share: its input minus the share every peer draws."""
    mine = secret
    for p in ctx.peers:
        mine = ring.sub(mine, _pair_share(ctx, p, ctx.rank, tag, ring, tuple(secret.shape)))
    return mine


def share_inputs(ctx: PartyContext, encoded: np.ndarray, ring: Ring, frac: int, label: str = "input") -> list[Share]:
    """Every party shares one private, encoded array of the same shape.

    Returns the sharings of all n inputs, by owner rank. With pairwise seeds no message is
    sent: party j's share of input i is drawn from the seed j shares with i, and party i
    keeps its input minus those. Without them, one round: each party splits its input into
    n random shares and sends share j to party j.
    """
    shape = tuple(np.shape(encoded))
    secret = ring.reduce(encoded)
    if _paired(ctx):
        tag = ctx.next_tag(label)
        return [
            Share(_own_share(ctx, secret, tag, ring) if owner == ctx.rank
                  else _pair_share(ctx, owner, owner, tag, ring, shape), ring, frac)
            for owner in range(ctx.n)
        ]
    parts = split(ring, secret, ctx.n)
    received = ctx.exchange({p: ring.to_bytes(parts[p]) for p in ctx.peers}, ctx.peers, label)
    out = []
    for owner in range(ctx.n):
        data = parts[ctx.rank] if owner == ctx.rank else ring.from_bytes(received[owner], shape)
        out.append(Share(data, ring, frac))
    return out


def share_from(
    ctx: PartyContext, owner: int, encoded: np.ndarray | None, shape: tuple[int, ...], ring: Ring, frac: int
) -> Share:
    """Party `owner` shares its private encoded array; the others pass None.

    No message with pairwise seeds (as in `share_inputs`), else one round.
    """
    if ctx.rank == owner and encoded is None:
        raise ValueError("the owner of an input must provide it")
    label = f"share-from-{owner}"
    if _paired(ctx):
        tag = ctx.next_tag(label)
        if ctx.rank == owner:
            assert encoded is not None
            return Share(_own_share(ctx, ring.reduce(encoded), tag, ring), ring, frac)
        return Share(_pair_share(ctx, owner, owner, tag, ring, shape), ring, frac)
    if ctx.rank == owner:
        assert encoded is not None
        parts = split(ring, ring.reduce(encoded), ctx.n)
        ctx.exchange({p: ring.to_bytes(parts[p]) for p in ctx.peers}, [], label)
        return Share(parts[owner], ring, frac)
    received = ctx.exchange({}, [owner], label)
    return Share(ring.from_bytes(received[owner], shape), ring, frac)


def share_words(
    ctx: PartyContext, mine: np.ndarray, shapes: Sequence[tuple[int, ...]], label: str = "words"
) -> list[np.ndarray]:
    """Every party XOR-shares one private array of uint64 bit-words; `shapes` gives each
    party's shape (public). Returns this party's XOR share of every party's array, by rank.

    As `share_inputs`, but XOR instead of additive: with pairwise seeds no message is sent
    (party j's share of party i's words is drawn from their common seed; i keeps its words
    XOR every such share); without them, one round.
    """
    if tuple(mine.shape) != tuple(shapes[ctx.rank]):
        raise ValueError(f"words of shape {mine.shape}, announced {shapes[ctx.rank]}")
    mine = np.ascontiguousarray(mine, dtype=np.uint64)
    if _paired(ctx):
        tag = ctx.next_tag(label)
        out = []
        for owner in range(ctx.n):
            if owner != ctx.rank:
                out.append(ctx.pairs[owner].words(f"{tag}|owner={owner}", shapes[owner]))
                continue
            kept = mine.copy()
            for p in ctx.peers:
                kept ^= ctx.pairs[p].words(f"{tag}|owner={ctx.rank}", shapes[ctx.rank])
            out.append(kept)
        return out
    parts = {p: random_ring_elements(RING64, tuple(mine.shape)) for p in ctx.peers}
    kept = mine.copy()
    for part in parts.values():
        kept ^= part
    received = ctx.exchange({p: part.tobytes() for p, part in parts.items()}, ctx.peers, label)
    return [kept if owner == ctx.rank else np.frombuffer(received[owner], dtype=np.uint64).reshape(shapes[owner]).copy()
            for owner in range(ctx.n)]
