"""A base for services that are started and stopped, so that a `with` block does both."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Lifecycle:
    """A service with `start()` and `stop()`: `with service:` starts it and, however the block
    ends, stops it. A start that fails part-way cleans up after itself (the block never runs)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
