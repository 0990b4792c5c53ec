"""The messages from one peer, read off the data socket it dialled, into this node's `Mailbox`.

`parties.peer_links` accepts each peer's socket and runs an `Inlet` on it, in the thread that
accepted it: it reads frames (`parties.peer_socket.FrameReader`), reassembles the messages
(`parties.peer_wire.Reassembler`) and puts each whole message in the mailbox, where the
session waiting for it picks it up. The source of every message is the party named by the
socket's client certificate, never a field on the wire.

A socket that ends may have lost messages: `on_end` is told why, and `PeerLinks` fails every
open session that involves the peer; partial messages are dropped with the socket, never
delivered. A frame that cannot be parsed, or chunks that do not fit together, end the socket
the same way; a second message under the same tag fails that session here, naming the peer.
The peer dials again for its next messages.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

from parties.mailbox import DuplicateMessage, Mailbox
from parties.peer_socket import FrameReader
from parties.peer_wire import Reassembler, frames_from_wire
from parties.records import AbortInfo, PeerMessage

EndHandler = Callable[["Inlet", str], None]
"""(the inlet, why its socket ended) -> None."""


class Inlet:
    """Reads `peer`'s socket into `mailbox` until it ends (`run`, in a thread of its own)."""

    def __init__(self, me: str, peer: str, sock: ssl.SSLSocket, mailbox: Mailbox, on_end: EndHandler) -> None:
        self.me, self.peer = me, peer
        self._sock = sock
        self._mailbox = mailbox
        self._on_end = on_end
        self._closed = threading.Event()

    def run(self) -> None:
        """Read until the socket ends, then close it and report why (unless `close` ended it)."""
        reason = self._read()
        try:
            self._sock.close()
        except OSError:
            pass
        if not self._closed.is_set():
            self._on_end(self, reason)

    def _read(self) -> str:
        frames = FrameReader(self._sock)
        box = Reassembler(self.peer)
        try:
            while (raw := frames.next()) is not None:
                for chunk in frames_from_wire(raw):
                    message = box.feed(chunk)
                    if message is not None:
                        self._deliver(message)
            return "it closed the connection"
        except ValueError as exc:
            return f"it sent a malformed frame: {exc}"
        except OSError as exc:
            return f"the connection broke ({exc})"

    def _deliver(self, message: PeerMessage) -> None:
        try:
            self._mailbox.put(message)
        except DuplicateMessage as exc:
            self._mailbox.abort(AbortInfo(message.session, self.me, self.peer, str(exc)))

    def stop(self, report: bool = False) -> None:
        """End the socket from this side (`report`: tell `on_end`, as when it is replaced)."""
        if not report:
            self._closed.set()
        try:
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)  # TCP's own: the reader keeps its TLS object
        except OSError:
            pass
