"""Everything one party needs to run a protocol, passed explicitly (no global state).

A `PartyContext` holds the party's rank among n, its transport, its source of dealer
material, the fixed-point settings, and the communication counters. It also hands out
deterministic message tags: the k-th exchange of a session has the same tag on every
party, so a message that arrives early waits for the exchange it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.material import MaterialKind, MaterialRequest
from mpc.prg import Prg
from mpc.stats import CommStats
from mpc.transport import Transport


class MaterialSource(Protocol):
    """A party's supply of dealer material (see `mpc.dealer.SeededMaterial`)."""

    requests: int
    bytes_from_dealer: int

    @property
    def kinds(self) -> Mapping[str, MaterialKind]: ...

    def get(self, request: MaterialRequest) -> Mapping[str, np.ndarray]: ...


@dataclass
class PartyContext:
    """One party's view of a running computation."""

    rank: int
    n: int
    transport: Transport
    material: MaterialSource
    session: str = "s"
    fixed: FixedPoint = FAST
    precise: FixedPoint = PRECISE
    stats: CommStats = field(default_factory=CommStats)
    pairs: Mapping[int, Prg] = field(default_factory=dict)
    """A PRG per peer, keyed by a seed only this party and that peer hold (`mpc.pairs`); empty
    when none were agreed, and then inputs are shared by sending the shares."""
    _step: int = 0

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError("a computation needs at least two parties")
        if not 0 <= self.rank < self.n:
            raise ValueError(f"rank {self.rank} is not among {self.n} parties")

    @property
    def peers(self) -> list[int]:
        return [p for p in range(self.n) if p != self.rank]

    @property
    def is_leader(self) -> bool:
        """Party 0 adds public constants to its share (someone must, exactly once)."""
        return self.rank == 0

    def next_tag(self, label: str) -> str:
        self._step += 1
        return f"{self.session}/{self._step}/{label}"

    def dealer(self, request: MaterialRequest) -> Mapping[str, np.ndarray]:
        """This party's shares of one fresh piece of dealer material (derived parts may arrive on first read)."""
        before_req, before_bytes = self.material.requests, self.material.bytes_from_dealer
        out = self.material.get(request)
        self.stats.dealer_requests += self.material.requests - before_req
        self.stats.dealer_bytes += self.material.bytes_from_dealer - before_bytes
        return out

    def exchange(
        self, outgoing: Mapping[int, bytes | memoryview], incoming: Iterable[int], label: str
    ) -> dict[int, bytes]:
        """One communication round: send each payload, then receive from `incoming`."""
        tag = self.next_tag(label)
        for dst, payload in outgoing.items():
            self.transport.send(dst, tag, payload)
            self.stats.bytes_sent += len(payload)
            self.stats.messages_sent += 1
        received: dict[int, bytes] = {}
        for src in incoming:
            data = self.transport.recv(src, tag)
            self.stats.bytes_received += len(data)
            self.stats.messages_received += 1
            received[src] = data
        self.stats.rounds += 1
        return received

    def all_to_all(self, payload: bytes, label: str) -> list[bytes]:
        """One round in which every party sends `payload` to every other.

        Returns every party's payload by rank, this party's own included.
        """
        got = self.exchange({p: payload for p in self.peers}, self.peers, label)
        got[self.rank] = payload
        return [got[p] for p in range(self.n)]
