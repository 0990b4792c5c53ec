"""The stream of messages from one peer into this node's `Mailbox`, opened by this node.

A node reads each peer's messages from one long-lived call (PeerExchange.Stream, served by
the peer's `parties.outbox.Outbox`), opened the first time a session here involves that
peer and kept for the node's lifetime. `Inlet` owns the thread that reads it: the call is a
single-threaded unary-stream call (gRPC's `SingleThreadedUnaryStream` channel option), so
the reading thread takes each frame off the connection itself, without a hand-off from
gRPC's channel thread, reassembles the messages (`parties.peer_wire.Reassembler`) and puts
them in the mailbox.

A stream that ends after it was up (its first, empty, frame arrived) may have lost
messages: `on_broken` is told, and fails every open session that involves the peer;
partial messages are dropped with the stream, never delivered. The thread then opens a
new stream, after `retry_s`, as long as some session wants one; a stream that cannot be
opened is tried again after a delay that doubles up to `max_retry_s`. A frame that cannot be
parsed, or chunks that do not fit together, end the stream the same way; a second message
under the same tag fails that session here, naming the peer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from parties.mailbox import DuplicateMessage, Mailbox
from parties.peer_wire import Reassembler, frames_from_wire
from parties.records import AbortInfo, PeerMessage

BrokenHandler = Callable[[str, str], None]
"""(peer, why its stream ended) -> None."""


class StreamCall(Protocol):
    """The part of a gRPC streaming call the inlet uses."""

    def __iter__(self) -> Iterator[bytes]: ...

    def cancel(self) -> bool: ...


class Inlet:
    """Reads `peer`'s stream into `mailbox` in a thread of its own, reopening it when it breaks."""

    def __init__(
        self,
        me: str,
        peer: str,
        mailbox: Mailbox,
        open_stream: Callable[[], StreamCall],
        wanted: Callable[[], bool],
        on_broken: BrokenHandler,
        describe: Callable[[BaseException], str] = str,
        retry_s: float = 0.2,
        max_retry_s: float = 2.0,
    ) -> None:
        self.me, self.peer = me, peer
        self._mailbox = mailbox
        self._open_stream = open_stream
        self._wanted = wanted
        self._on_broken = on_broken
        self._describe = describe
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._call: StreamCall | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.up = threading.Event()
        """Set while a stream is up (for tests and status)."""

    def want(self) -> None:
        """A session here involves the peer: open the stream if it is not open."""
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"inlet-{self.peer}", daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self, timeout_s: float = 2.0) -> None:
        with self._lock:
            self._closed = True
            call, thread = self._call, self._thread
        self._wake.set()
        if call is not None:
            call.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self) -> None:
        delay = 0.0
        while True:
            self._wake.clear()
            if self._closed:
                return
            if not self._wanted():
                self._wake.wait()
                continue
            live, reason = self._read()
            self.up.clear()
            self._wake.clear()  # sessions that wanted the stream while it was up do not cut the delay short
            if self._closed:
                return
            if live:
                self._on_broken(self.peer, reason)
                delay = self._retry_s
            else:  # not reached (yet): try again, less and less often
                delay = min(2 * delay, self._max_retry_s) if delay else self._retry_s
            self._wake.wait(delay)

    def _read(self) -> tuple[bool, str]:
        """Open a stream and read it to its end: (whether it was up, why it ended)."""
        live = False
        try:
            call = self._open_stream()
        except Exception as exc:  # noqa: BLE001 - no address yet, channel cannot be made
            return False, str(exc)
        with self._lock:
            if self._closed:
                call.cancel()
                return False, "closed"
            self._call = call
        box = Reassembler(self.peer)
        try:
            for raw in call:
                if not live:
                    live = True
                    self.up.set()
                for chunk in frames_from_wire(raw):
                    message = box.feed(chunk)
                    if message is not None:
                        self._deliver(message)
            return live, "it ended the stream"
        except ValueError as exc:
            call.cancel()
            return live, f"it sent a malformed frame: {exc}"
        except Exception as exc:  # noqa: BLE001 - grpc.RpcError, or the call was cancelled
            return live, self._describe(exc)
        finally:
            with self._lock:
                self._call = None

    def _deliver(self, message: PeerMessage) -> None:
        try:
            self._mailbox.put(message)
        except DuplicateMessage as exc:
            self._mailbox.abort(AbortInfo(message.session, self.me, self.peer, str(exc)))
