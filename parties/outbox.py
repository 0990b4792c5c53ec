"""A node's messages to one peer, queued for the stream that peer reads them from.

The peer opens the stream (PeerExchange.Stream) and keeps it for as long as both live;
`Outbox.serve` is that call's reply generator, run by the server in a thread of its own.
It writes an empty frame first (the stream is up), then, whenever messages wait, one
`PeerFrames` of chunks taken round-robin from the waiting messages: each message gives one
chunk of at most 1 MiB per turn, and small messages share a frame. So a session's small
message waits behind at most one chunk of each large message in progress, and a round's
messages that are queued together go in one frame.

The generator is resumed only once gRPC has sent its previous frame, which is when the
messages that frame finished count as sent (`drained`, for a session's `close`). A stream
that ends for any reason (the peer died or reconnected, the connection dropped) cannot say
which of its frames arrived: every open session that wrote to it is reported to `on_lost`,
and messages it had started are dropped (the receiver discards partial messages with the
stream). Messages not yet started wait for the peer's next stream.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator

from parties.array_stream import CHUNK_BYTES
from parties.peer_wire import OutgoingMessage, frames_to_wire

LostHandler = Callable[[str, set[str], str], None]
"""(peer, sessions that wrote to the stream, why it ended) -> None."""
HELLO = b""
"""The first frame of every stream: an empty `PeerFrames`."""


class Outbox:
    """Messages waiting for `peer`, and the one stream that carries them (thread-safe)."""

    def __init__(self, peer: str, on_lost: LostHandler, frame_bytes: int = CHUNK_BYTES) -> None:
        self.peer = peer
        self._on_lost = on_lost
        self._frame_bytes = frame_bytes
        self._cond = threading.Condition()
        self._queue: deque[OutgoingMessage] = deque()
        self._unsent: dict[str, int] = {}  # session -> its messages not yet completely sent
        self._used: set[str] = set()  # sessions that wrote to the current stream
        self._stream = 0  # number of the stream being served, 0 if none
        self._streams = 0
        self._closed = False

    # -- the sessions' side --------------------------------------------------------------------
    def put(self, session: str, tag: str, payload: bytes | memoryview) -> None:
        """Queue a message; RuntimeError once the outbox is closed (the node is stopping)."""
        message = OutgoingMessage(session, tag, payload)
        with self._cond:
            if self._closed:
                raise RuntimeError("the node is stopping")
            self._queue.append(message)
            self._unsent[session] = self._unsent.get(session, 0) + 1
            self._cond.notify_all()

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
    def serve(self, add_callback: Callable[[Callable[[], None]], bool]) -> Iterator[bytes]:
        """The frames of a new stream to the peer, until it ends or a newer one replaces it.

        `add_callback` registers what to run when the call ends (`grpc.ServicerContext.add_callback`).
        """
        with self._cond:
            if self._closed:
                return
            self._streams += 1
            me = self._streams
            lost = self._end_stream("it opened a new stream to us") if self._stream else None
            self._stream = me
            self._cond.notify_all()  # the stream it replaces stops
        if lost:
            self._on_lost(self.peer, *lost)
        if not add_callback(lambda: self._ended(me)):
            self._ended(me)
            return
        yield HELLO
        finished: list[OutgoingMessage] = []
        while True:
            with self._cond:
                for message in finished:  # gRPC has sent the frame that finished them
                    left = self._unsent.get(message.session, 0) - 1
                    if left > 0:
                        self._unsent[message.session] = left
                    elif self._unsent.pop(message.session, None) is not None:
                        self._cond.notify_all()
                finished = []
                while self._stream == me and not self._queue and not self._closed:
                    self._cond.wait()
                if self._stream != me or self._closed:
                    return
                parts: list[bytes | memoryview] = []
                size = 0
                while self._queue and (not parts or size + self._queue[0].next_bytes <= self._frame_bytes):
                    message = self._queue.popleft()
                    size += message.write_chunk(parts)
                    self._used.add(message.session)
                    if message.done:
                        finished.append(message)
                    else:
                        self._queue.append(message)
            yield frames_to_wire(parts)

    def _ended(self, stream: int) -> None:
        with self._cond:
            if self._stream != stream:
                return  # replaced by a newer stream, which already reported this one
            self._stream = 0
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
            self._cond.notify_all()
