"""Test helpers: deal plaintext values as shares, and run protocols on n in-process parties."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.fixedpoint import FixedPoint
from mpc.inprocess import make_contexts, run_parties
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


def transcripts(inputs: list[Any], program: Callable[[PartyContext, Any], Any]) -> list[list]:
    """Every party's messages, (tag, peer, payload) in order, running `program(ctx, inputs[rank])` in process."""
    ctxs = make_contexts(len(inputs), kinds=KINDS)
    recorders = [Recorder(c.transport) for c in ctxs]
    for c, r in zip(ctxs, recorders):
        c.transport = r
    run_parties(len(inputs), program, args=inputs, contexts=ctxs)
    return [r.log for r in recorders]


def openings(logs: list[list[tuple[str, int, bytes]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per round, what the parties' messages open, read both ways as 64-bit words: their XOR
    (an opening of XOR shares) and their sum mod 2^64 (the low words of an additive opening)."""
    rounds: dict[str, list[bytes]] = {}
    for log in logs:
        seen = set()
        for tag, _, payload in log:
            if tag not in seen:
                seen.add(tag)
                rounds.setdefault(tag, []).append(payload)
    out = {}
    for tag, payloads in rounds.items():
        if len(payloads) == len(logs) and len(payloads[0]) % 8 == 0:
            words = np.stack([np.frombuffer(p, dtype=np.uint64) for p in payloads])
            out[tag] = np.bitwise_xor.reduce(words, axis=0), words.sum(axis=0, dtype=np.uint64)
    return out


def opened_again(first: list[list], second: list[list], public: tuple[str, ...]) -> list[str]:
    """Rounds (not of a public label) that open a word equal in two runs on the same data: a
    masked opening differs from run to run, a value that is a function of the data does not."""
    a, b = openings(first), openings(second)
    assert a.keys() == b.keys()
    return [t for t in a if not t.endswith(public) and any(np.any(x == y) for x, y in zip(a[t], b[t]))]


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll `condition` every 10 ms until it holds (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
