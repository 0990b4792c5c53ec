"""The interface every party-to-party transport implements.

Messages are byte strings tagged by a deterministic step id (the same on every party,
because every party runs the same program). A message that arrives before its receiver
asks for it is buffered under its (source, tag), never confused with another step's.
Two implementations exist: `mpc.inprocess` (all parties in one process, for tests) and
the gRPC transport in `parties/` (real nodes); protocols cannot tell them apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Transport(ABC):
    """Tagged, buffered, point-to-point byte messages between numbered parties."""

    @property
    @abstractmethod
    def party_names(self) -> list[str]:
        """Identity of each party, indexed by rank (for error messages)."""

    @abstractmethod
    def send(self, dst: int, tag: str, payload: bytes | memoryview) -> None:
        """Queue `payload` for party `dst` under `tag`; may return before delivery.

        A memoryview payload (a view of the sender's array, sent without a copy) may change once
        `send` returns: a transport that keeps it longer copies it first.
        A failed delivery surfaces as `PeerFailure` from a later `recv` or `close`.
        """

    @abstractmethod
    def recv(self, src: int, tag: str) -> bytes:
        """The payload party `src` sent under `tag`, waiting for it if needed.

        Raises `PeerFailure` naming the party when it dies, stops answering, aborts, or
        the transport's deadline passes.
        """

    def abort(self, reason: str) -> None:  # noqa: B027 - optional hook
        """Tell the peers this party gives up, so they fail fast instead of waiting."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, channels)."""
