"""Communication counters: what a benchmark or an EXPLAIN check reads after a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class CommStats:
    """Bytes, messages and rounds one party has spent (dealer traffic counted apart)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    rounds: int = 0
    dealer_requests: int = 0
    dealer_bytes: int = 0

    def snapshot(self) -> CommStats:
        return CommStats(**asdict(self))

    def since(self, earlier: CommStats) -> CommStats:
        """Counters accumulated after `earlier` was taken."""
        now, before = asdict(self), asdict(earlier)
        return CommStats(**{k: now[k] - before[k] for k in now})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
