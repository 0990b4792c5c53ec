"""The exceptions the MPC core raises; every layer above catches these by type."""

from __future__ import annotations


class MpcError(Exception):
    """Base class of every error raised by the MPC engine."""


class EncodingError(MpcError, ValueError):
    """A value cannot be encoded in fixed point (NaN, infinite, or outside the safe range)."""


class PeerFailure(MpcError):
    """A peer died, stopped answering or aborted; the computation cannot go on.

    `party` names the party that failed (its identity, or its rank when no name is known).
    """

    def __init__(self, party: str, reason: str) -> None:
        super().__init__(f"party {party}: {reason}")
        self.party = party
        self.reason = reason


class ProtocolError(MpcError):
    """The parties disagree about the computation (a bug or a tampered message)."""
