"""Test helpers: deal plaintext values as shares, and run protocols on n in-process parties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.fixedpoint import FixedPoint
from mpc.inprocess import run_parties
from mpc.share import Share
from mpc.transport import Transport
from protocols.material import KINDS
from protocols.sharing import split


def deal(fixed: FixedPoint, values: Any, n: int, frac: int | None = None) -> list[Share]:
    """Encode `values` and split them into n random shares (one per party)."""
    f = fixed.frac if frac is None else frac
    parts = split(fixed.ring, fixed.encode(np.asarray(values), f), n)
    return [Share(p, fixed.ring, f) for p in parts]


def run_on_shares(n: int, program: Callable[..., Any], *dealt: list[Share]) -> list[Any]:
    """Run program(ctx, *shares_of_this_party) on n parties; results by rank."""
    per_party = [tuple(d[r] for d in dealt) for r in range(n)]
    return run_parties(n, lambda ctx, args: program(ctx, *args), args=per_party, kinds=KINDS)


def rounds_of(ctx: PartyContext, step: Callable[[], Any]) -> tuple[Any, int]:
    """Run `step()` and report how many rounds it took on this party."""
    before = ctx.stats.rounds
    out = step()
    return out, ctx.stats.rounds - before


class Recorder(Transport):
    """A transport that keeps every message a party sends: (step/label, destination, payload),
    for tests that compare what parties see across runs."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.log: list[tuple[str, int, bytes]] = []

    @property
    def party_names(self) -> list[str]:
        return self.inner.party_names

    def send(self, dst: int, tag: str, payload: bytes) -> None:
        self.log.append((tag.split("/", 1)[1], dst, bytes(payload)))
        self.inner.send(dst, tag, payload)

    def recv(self, src: int, tag: str) -> bytes:
        return self.inner.recv(src, tag)

    def abort(self, reason: str) -> None:
        self.inner.abort(reason)
