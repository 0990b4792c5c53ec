"""What the services exchange, as plain frozen dataclasses (`Record`s, no protobuf in sight).

Servicers and clients work with these; `parties.messages` and `parties.peer_wire` turn
them into protobuf messages and back. Keeping them apart from the conversions lets the
mailbox, the gate and the node name a job call or an abort without importing the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, dataclass_transform

from mpc.share import Share
from mpc.stats import CommStats


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    """The base of every record here: each subclass is made a frozen dataclass of the fields it
    declares, a value that no receiver can change on its way through the mailbox or the node."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True)(cls)


class PeerMessage(Record):
    """One tagged message of a session, as the receiving party sees it."""

    session: str
    src: str
    tag: str
    payload: bytes


class AbortInfo(Record):
    """Why a session was given up: who gave up, whose failure caused it, and the reason."""

    session: str
    src: str
    culprit: str
    reason: str


class SeedGrant(Record):
    """A party's seed for one session and its place in the roster."""

    seed: bytes
    rank: int
    n: int


class JobCall(Record):
    """An analyst's request to run a named job in a new session over an ordered roster."""

    session: str
    job: str
    params: dict[str, Any]
    roster: list[str]
    timeout_s: float = 0.0


class JobFailure(Record):
    """Why a job failed at one node; `party` names the failed party for peer failures."""

    kind: str
    """peer_failure (another party failed), invalid (the call was refused) or error."""
    party: str
    message: str


class JobOutcome(Record):
    """One party's answer to a job: its shares of the outputs and what it spent."""

    rank: int
    shares: list[Share]
    stats: CommStats
    prepare_seconds: float
    compute_seconds: float
    public: dict[str, Any] = field(default_factory=dict)
    """Facts every party computed alike and may tell the analyst (a query's schema and domains)."""


class NodeInfo(Record):
    """What a node says about itself: who it is, where it serves, what it runs."""

    identity: str
    address: str
    jobs: list[str]
    running_sessions: int
    data_port: int = 0  # where it accepts its peers' data sockets (the port to open in a firewall)
