"""What the services exchange, as plain frozen dataclasses (no protobuf in sight).

Servicers and clients work with these; `parties.messages` and `parties.peer_wire` turn
them into protobuf messages and back. Keeping them apart from the conversions lets the
mailbox, the gate and the node name a job call or an abort without importing the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpc.share import Share
from mpc.stats import CommStats


@dataclass(frozen=True)
class PeerMessage:
    """One tagged message of a session, as the receiving party sees it."""

    session: str
    src: str
    tag: str
    payload: bytes


@dataclass(frozen=True)
class AbortInfo:
    """Why a session was given up: who gave up, whose failure caused it, and the reason."""

    session: str
    src: str
    culprit: str
    reason: str


@dataclass(frozen=True)
class SeedGrant:
    """A party's seed for one session and its place in the roster."""

    seed: bytes
    rank: int
    n: int


@dataclass(frozen=True)
class JobCall:
    """An analyst's request to run a named job in a new session over an ordered roster."""

    session: str
    job: str
    params: dict[str, Any]
    roster: list[str]
    timeout_s: float = 0.0


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed at one node; `party` names the failed party for peer failures."""

    kind: str
    """peer_failure (another party failed), invalid (the call was refused) or error."""
    party: str
    message: str


@dataclass(frozen=True)
class JobOutcome:
    """One party's answer to a job: its shares of the outputs and what it spent."""

    rank: int
    shares: list[Share]
    stats: CommStats
    prepare_seconds: float
    compute_seconds: float
    public: dict[str, Any] = field(default_factory=dict)
    """Facts every party computed alike and may tell the analyst (a query's schema and domains)."""


@dataclass(frozen=True)
class NodeInfo:
    """What a node says about itself: who it is, where it serves, what it runs."""

    identity: str
    address: str
    jobs: list[str]
    running_sessions: int
