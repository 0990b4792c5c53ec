"""A node's messages to one peer, written to the stream that peer reads them from.

The peer opens the stream (PeerExchange.Stream) and keeps it for as long as both live. The
call is served without a thread of its own (a non-blocking handler): `Outbox.serve` keeps
gRPC's `send` callback, which writes one frame and returns once gRPC has sent it, and
writes an empty frame first (the stream is up). From then on a frame is written by
whichever thread holds the writer's role:
* a session's own thread, in `put`, when nothing else is being written and its message is
  small (at most `direct_bytes`): a round's message leaves with no hand-off to another thread;
* otherwise the outbox's writer thread, which writes whatever waits, one `PeerFrames` at a
  time of chunks taken round-robin from the waiting messages: each message gives one chunk
  of at most 1 MiB per turn, and small messages share a frame. So a session's small message
  waits behind at most one chunk of each large message in progress, and a large message
  never holds up the thread that queued it.

A message counts as sent (`drained`, for a session's `close`) once `send` has returned for
the frame that finished it. A stream that ends for any reason (the peer died or
reconnected, the connection dropped) cannot say which of its frames arrived: every open
session that wrote to it is reported to `on_lost`, and messages it had started are dropped
(the receiver discards partial messages with the stream). Messages not yet started wait
for the peer's next stream.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from parties.array_stream import CHUNK_BYTES
from parties.peer_wire import OutgoingMessage, frames_to_wire

LostHandler = Callable[[str, set[str], str], None]
"""(peer, sessions that wrote to the stream, why it ended) -> None."""
Send = Callable[[bytes | None], None]
"""gRPC's send callback of a non-blocking stream handler: writes one frame (None ends the call)
and returns once gRPC has sent it; after the call ended it returns at once, writing nothing."""
HELLO = b""
"""The first frame of every stream: an empty `PeerFrames`."""
DIRECT_BYTES = 64 << 10
"""Largest message a session's thread writes itself (HTTP/2's initial flow-control window)."""


class Outbox:
    """Messages waiting for `peer`, and the one stream that carries them (thread-safe)."""

    def __init__(
        self, peer: str, on_lost: LostHandler, frame_bytes: int = CHUNK_BYTES, direct_bytes: int = DIRECT_BYTES
    ) -> None:
        self.peer = peer
        self._on_lost = on_lost
        self._frame_bytes = frame_bytes
        self._direct_bytes = direct_bytes
        self._cond = threading.Condition()
        self._queue: deque[OutgoingMessage] = deque()
        self._unsent: dict[str, int] = {}  # session -> its messages not yet completely sent
        self._used: set[str] = set()  # sessions that wrote to the current stream
        self._stream = 0  # number of the stream being served, 0 if none
        self._streams = 0
        self._send: Send | None = None  # the current stream's
        self._busy = False  # some thread holds the writer's role on the current stream
        self._writer: threading.Thread | None = None
        self._closed = False

    # -- the sessions' side --------------------------------------------------------------------
    def put(self, session: str, tag: str, payload: bytes | memoryview) -> None:
        """Queue a message, and write it at once if it is small and the stream idle.

        RuntimeError once the outbox is closed (the node is stopping).
        """
        message = OutgoingMessage(session, tag, payload)
        with self._cond:
            if self._closed:
                raise RuntimeError("the node is stopping")
            self._queue.append(message)
            self._unsent[session] = self._unsent.get(session, 0) + 1
            if self._busy or not self._stream:
                return  # the writer in place takes it, or the peer's next stream does
            if message.size > self._direct_bytes or len(self._queue) > 1:
                self._cond.notify_all()  # the writer thread's job
                return
            self._busy = True
            stream, send = self._stream, self._send
        assert send is not None
        self._pump(stream, send, direct=True)

    def drained(self, session: str) -> bool:
        """Every message of `session` has been sent (or dropped)."""
        with self._cond:
            return not self._unsent.get(session)

    def wait_drained(self, session: str, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._unsent.get(session), timeout_s)

    def purge(self, session: str) -> None:
        """Drop the messages of an aborted session that have not gone out."""
        with self._cond:
            self._queue = deque(m for m in self._queue if m.session != session)
            self._unsent.pop(session, None)
            self._cond.notify_all()

    def forget(self, session: str) -> None:
        """The session has ended here: a later end of the stream does not concern it."""
        with self._cond:
            self._used.discard(session)
            if not any(m.session == session for m in self._queue):
                self._unsent.pop(session, None)

    # -- the stream's side ---------------------------------------------------------------------
    def serve(self, send: Send, add_callback: Callable[[Callable[[], None]], bool]) -> None:
        """Take a new stream to the peer (replacing any older one) and say hello on it.

        `add_callback` registers what to run when the call ends (`grpc.ServicerContext.add_callback`).
        """
        with self._cond:
            if self._closed:
                return
            self._streams += 1
            me = self._streams
            lost = self._end_stream("it opened a new stream to us") if self._stream else None
            replaced = self._send if self._stream else None
            self._stream, self._send, self._busy = me, send, True  # the hello goes first
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name=f"outbox-{self.peer}", daemon=True)
                self._writer.start()
        if replaced is not None:
            replaced(None)  # end the old call: the peer stops reading it
        if lost:
            self._on_lost(self.peer, *lost)
        if not add_callback(lambda: self._ended(me)):
            self._ended(me)
            return
        send(HELLO)
        with self._cond:
            if self._stream == me:
                self._busy = False
                self._cond.notify_all()  # the writer thread takes what waited for a stream

    def _write(self) -> None:
        """The writer thread: large messages, and whatever waits while the stream is idle."""
        while True:
            with self._cond:
                while not self._closed and (self._busy or not self._stream or not self._queue):
                    self._cond.wait()
                if self._closed:
                    return
                self._busy = True
                stream, send = self._stream, self._send
            assert send is not None
            self._pump(stream, send, direct=False)

    def _pump(self, stream: int, send: Send, direct: bool) -> None:
        """Write frames while messages wait, holding the writer's role on `stream`; then give it up.

        A session's thread (`direct`) leaves a large message to the writer thread.
        """
        finished: list[OutgoingMessage] = []
        while True:
            with self._cond:
                if self._stream != stream:
                    return  # the stream ended while the frame was written: its sessions were told
                for message in finished:  # gRPC has sent the frame that finished them
                    left = self._unsent.get(message.session, 0) - 1
                    if left > 0:
                        self._unsent[message.session] = left
                    elif self._unsent.pop(message.session, None) is not None:
                        self._cond.notify_all()
                if self._closed or not self._queue or (direct and self._queue[0].size > self._direct_bytes):
                    self._busy = False
                    self._cond.notify_all()
                    if self._closed:
                        break
                    return
                parts: list[bytes | memoryview] = []
                finished, size = [], 0
                while self._queue and (not parts or size + self._queue[0].next_bytes <= self._frame_bytes):
                    message = self._queue.popleft()
                    size += message.write_chunk(parts)
                    self._used.add(message.session)
                    if message.done:
                        finished.append(message)
                    else:
                        self._queue.append(message)
            send(frames_to_wire(parts))
        send(None)  # closed: end the call

    def _ended(self, stream: int) -> None:
        with self._cond:
            if self._stream != stream:
                return  # replaced by a newer stream, which already reported this one
            self._stream, self._send, self._busy = 0, None, False
            lost = self._end_stream("our stream to it ended")
            self._cond.notify_all()
        self._on_lost(self.peer, *lost)

    def _end_stream(self, reason: str) -> tuple[set[str], str]:
        """Forget the current stream (lock held): the sessions that wrote to it, and why it ended."""
        lost, self._used = self._used, set()
        self._queue = deque(m for m in self._queue if not m.started)
        return lost, reason

    def close(self) -> None:
        """Stop serving (the node is stopping): the stream ends and later `put`s are refused."""
        with self._cond:
            self._closed = True
            idle = self._send if not self._busy else None  # else the writer in place ends the call
            self._cond.notify_all()
        if idle is not None:
            idle(None)
