"""A node's messages to one peer, written by the sending thread on the data socket it dialled.

`Outbox.put` writes a message at once, from the thread that sends it: no queue and no
hand-off to another thread, so a round costs one TLS write per peer. The socket is dialled
on first use (`dial`, given by `parties.peer_links`) and kept for the node's lifetime.
Messages are cut into chunks of at most 1 MiB (`parties.peer_wire.OutgoingMessage`), one
frame each; concurrent sessions take turns chunk by chunk, so a small message waits behind
at most one chunk of a large one. A message under 64 KiB, most of them, is built as one
frame in one step (`parties.peer_wire.whole_message`, the same bytes) and written at once.

A message counts as sent once the kernel has taken its bytes. A write that makes no progress
for `stall_s` (a frozen peer that stopped reading, a dead link) fails. A socket that breaks
for any reason (a failed write, the peer closed it or refused our certificate, seen by a
watcher thread that polls the socket without touching TLS) cannot say which of its frames
arrived: every open session that wrote to it is reported to `on_lost`, and the next message
dials afresh. A session's first message on a socket checks it first (`_hung_up`), so a
session that starts after the peer closed the socket dials afresh even if the watcher has
not run yet. The receiver drops partial messages with the socket.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from parties.array_stream import CHUNK_BYTES
from parties.peer_socket import DIRECT_BYTES, write_frame
from parties.peer_wire import OutgoingMessage, whole_message

LostHandler = Callable[[str, set[str], str], None]
"""(peer, sessions that wrote to the socket, why it broke) -> None."""
_HANGUP = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | getattr(select, "POLLRDHUP", 0)


class LinkError(ConnectionError):
    """The message could not be sent: the peer cannot be reached, or the socket broke."""


@dataclass(eq=False)
class _Link:
    sock: ssl.SSLSocket
    used: set[str] = field(default_factory=set)  # sessions that wrote to it
    broken: bool = False


def _hung_up(sock: ssl.SSLSocket) -> bool:
    """The peer has closed or refused the socket (or it is gone), asked without waiting and without TLS."""
    poll = select.poll()
    try:
        poll.register(sock.fileno(), _HANGUP)
        return bool(poll.poll(0))
    except (OSError, ValueError):
        return True


class Outbox:
    """The socket that carries this node's messages to `peer` (thread-safe)."""

    def __init__(
        self, peer: str, dial: Callable[[], ssl.SSLSocket], on_lost: LostHandler, stall_s: float,
        frame_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.peer = peer
        self._dial = dial
        self._on_lost = on_lost
        self._stall_s = stall_s
        self._frame_bytes = frame_bytes
        self._write = threading.Lock()  # one writer at a time; held while dialling too
        self._lock = threading.Lock()  # the state below
        self._link: _Link | None = None
        self._closed = False

    @property
    def up(self) -> bool:
        """A socket to the peer is open (for tests and status)."""
        with self._lock:
            return self._link is not None

    def put(self, session: str, tag: str, payload: bytes | memoryview) -> None:
        """Write a message; LinkError if it cannot be (the sessions concerned are told), RuntimeError once closed."""
        size = payload.nbytes if isinstance(payload, memoryview) else len(payload)
        if size <= self._frame_bytes and size < DIRECT_BYTES:  # most messages: one small frame, one write
            self._write_frame(session, [whole_message(session, tag, payload)])
            return
        message = OutgoingMessage(session, tag, payload, chunk_bytes=self._frame_bytes)
        while not message.done:
            parts: list[bytes | memoryview] = []
            message.write_chunk(parts)
            self._write_frame(session, parts)

    def _write_frame(self, session: str, parts: list[bytes | memoryview]) -> None:
        """Write one frame of `session` on the open link (dialled if there is none)."""
        with self._write:
            link = self._current(session)
            try:
                write_frame(link.sock, parts)
                return
            except TimeoutError:
                reason = f"it took none of our messages for {self._stall_s:g} s"
            except OSError as exc:
                reason = f"our connection to it broke ({exc})"
        self._break(link, reason)
        raise LinkError(reason)

    def _current(self, session: str) -> _Link:
        """The open link, dialled if there is none, with `session` among its users (write lock held).

        A session's first message on a link first asks the kernel whether the peer has closed the
        socket (one poll that does not wait): the watcher may not have run yet, and a new session
        would otherwise write on a socket already gone and lose its message.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the node is stopping")
            link = self._link
            if link is not None and not link.broken and session in link.used:
                return link
        if link is not None and not link.broken and _hung_up(link.sock):
            self._break(link, "it closed our connection")
        with self._lock:
            if link is not None and not link.broken:
                link.used.add(session)
                return link
        try:
            sock = self._dial()
        except (OSError, LookupError, RuntimeError) as exc:
            raise LinkError(f"cannot connect to it ({exc})") from None
        sock.settimeout(self._stall_s)
        link = _Link(sock, {session})
        with self._lock:
            if self._closed:
                sock.close()
                raise RuntimeError("the node is stopping")
            self._link = link
        threading.Thread(target=self._watch, args=(link,), name=f"outbox-{self.peer}", daemon=True).start()
        return link

    def _watch(self, link: _Link) -> None:
        """Wait until the socket hangs up or turns readable (the peer closed or refused it), then break it."""
        poll = select.poll()
        try:
            poll.register(link.sock.fileno(), _HANGUP)
            poll.poll()
        except (OSError, ValueError):  # closed meanwhile
            pass
        self._break(link, "it closed our connection")
        with self._write:  # no write is under way: the TLS object can go
            link.sock.close()

    def _break(self, link: _Link, reason: str, report: bool = True) -> None:
        with self._lock:
            if link.broken:
                return
            link.broken = True
            lost, link.used = link.used, set()
            if self._link is link:
                self._link = None
        try:
            # The TCP socket's own shutdown (SSLSocket's would drop its TLS object under a writer):
            socket.socket.shutdown(link.sock, socket.SHUT_RDWR)  # wakes the watcher, fails a blocked write
        except OSError:
            pass
        if report and lost:
            self._on_lost(self.peer, lost, reason)

    def forget(self, session: str) -> None:
        """The session has ended here: a later break of the socket does not concern it."""
        with self._lock:
            if self._link is not None:
                self._link.used.discard(session)

    def close(self) -> None:
        """Close the socket (the node is stopping); later `put`s are refused."""
        with self._lock:
            self._closed = True
            link = self._link
        if link is not None:
            self._break(link, "the node is stopping", report=False)
