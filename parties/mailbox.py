"""A node's receive buffer: every message from a peer, until the session asks for it.

Each peer's `Inlet` (parties/inlet.py) puts the messages it reassembles from that peer's
data socket here under (session, source, tag); a session's transport takes one out when its
protocol reaches that step. A message
may arrive before its session has started at this node (a faster peer got the job
first), so messages of unknown sessions are kept, and dropped only if no session claims
them within `orphan_ttl_s`. Messages of a session that has ended are dropped on arrival.
Aborts are recorded per session and wake every waiting receiver of that session, so
messages and failures of different sessions never mix. A message wakes a receiver only if
it is the one the receiver waits for: each session waits on a condition of its own (sharing
the mailbox's lock), notified when an awaited message arrives, so the other messages of a
round, and the other sessions running on the node, wake no thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from parties.records import AbortInfo, PeerMessage


class DuplicateMessage(ValueError):
    """A peer sent two messages with the same (session, tag)."""


class Mailbox:
    """Buffered messages and aborts of every session of one node (thread-safe)."""

    def __init__(self, orphan_ttl_s: float = 600.0, remember_closed: int = 4096) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Condition] = {}  # session -> its receivers' condition
        self._awaited: dict[tuple[str, str, str], int] = {}  # (session, source, tag) -> receivers waiting
        self._messages: dict[tuple[str, str, str], bytes] = {}
        self._aborts: dict[str, AbortInfo] = {}
        self._open: set[str] = set()
        self._orphans: dict[str, float] = {}  # session not (yet) open here -> first arrival
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._orphan_ttl_s = orphan_ttl_s
        self._remember_closed = remember_closed

    # -- sessions ---------------------------------------------------------------------------
    def open_session(self, session: str) -> None:
        with self._lock:
            if session in self._open or session in self._closed:
                raise ValueError(f"session {session!r} has already run on this node")
            self._open.add(session)
            self._orphans.pop(session, None)

    def close_session(self, session: str) -> None:
        """Forget a finished session; later messages for it are dropped."""
        with self._lock:
            self._open.discard(session)
            self._aborts.pop(session, None)
            self._closed[session] = None
            while len(self._closed) > self._remember_closed:
                self._closed.popitem(last=False)
            for key in [k for k in self._messages if k[0] == session]:
                del self._messages[key]
            cond = self._waiting.pop(session, None)
            if cond is not None:
                cond.notify_all()

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._open)

    # -- messages ---------------------------------------------------------------------------
    def put(self, message: PeerMessage) -> bool:
        """Buffer a message; False if its session has already ended here (dropped)."""
        key = (message.session, message.src, message.tag)
        with self._lock:
            if self._orphans:
                self._sweep_orphans()
            if message.session in self._closed:
                return False
            if key in self._messages:
                raise DuplicateMessage(f"second message from {message.src} under tag {message.tag!r}")
            if message.session not in self._open:
                self._orphans.setdefault(message.session, time.monotonic())
            self._messages[key] = message.payload
            if key in self._awaited:
                cond = self._waiting.get(message.session)
                if cond is not None:
                    cond.notify_all()
            return True

    def take(self, session: str, src: str, tag: str, wait_s: float) -> bytes | None:
        """The message from `src` under `tag`, waiting up to `wait_s`; None if absent or aborted."""
        key = (session, src, tag)
        with self._lock:
            payload = self._messages.pop(key, None)
            if payload is not None:
                return payload
            cond = self._waiting.get(session)
            if cond is None:
                cond = threading.Condition(self._lock)
                if session not in self._closed:  # a closed session's receivers wait out their time alone
                    self._waiting[session] = cond
            deadline = time.monotonic() + wait_s
            self._awaited[key] = self._awaited.get(key, 0) + 1
            try:
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or session in self._aborts:
                        return None
                    cond.wait(left)
                    payload = self._messages.pop(key, None)
                    if payload is not None:
                        return payload
            finally:
                if self._awaited[key] == 1:
                    del self._awaited[key]
                else:
                    self._awaited[key] -= 1

    def wake(self) -> None:
        """Wake every waiting receiver so it re-checks its failure conditions."""
        with self._lock:
            for cond in self._waiting.values():
                cond.notify_all()

    # -- aborts ----------------------------------------------------------------------------------
    def abort(self, info: AbortInfo) -> None:
        """Record that a session was given up (the first reason wins) and wake its receivers."""
        with self._lock:
            if info.session in self._closed:
                return
            self._aborts.setdefault(info.session, info)
            if info.session not in self._open:
                self._orphans.setdefault(info.session, time.monotonic())
            cond = self._waiting.get(info.session)
            if cond is not None:
                cond.notify_all()

    def aborted(self, session: str) -> AbortInfo | None:
        with self._lock:
            return self._aborts.get(session)

    def _sweep_orphans(self) -> None:
        now = time.monotonic()
        stale = [s for s, t in self._orphans.items() if now - t > self._orphan_ttl_s]
        for session in stale:
            del self._orphans[session]
            self._aborts.pop(session, None)
            self._waiting.pop(session, None)
            for key in [k for k in self._messages if k[0] == session]:
                del self._messages[key]
