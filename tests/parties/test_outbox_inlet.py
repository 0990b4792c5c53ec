"""Both ends of a peer stream without gRPC: the Outbox's frames and bookkeeping, the Inlet's reading and reopening."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from parties.array_stream import CHUNK_BYTES
from parties.inlet import Inlet
from parties.mailbox import Mailbox
from parties.outbox import HELLO, Outbox
from parties.peer_wire import Reassembler, frames_from_wire, message_to_wire
from parties.records import PeerMessage


class _Calls:
    """Records what a stream registers to run at its end, and runs it when told."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> bool:
        self.callbacks.append(callback)
        return True

    def end(self) -> None:
        for callback in self.callbacks:
            callback()


def _outbox() -> tuple[Outbox, list[tuple[str, set[str], str]]]:
    lost: list[tuple[str, set[str], str]] = []
    return Outbox("b", lambda peer, sessions, why: lost.append((peer, sessions, why))), lost


def _tags(frame: bytes) -> list[tuple[str, str, int]]:
    return [(c.session, c.tag, c.offset) for c in frames_from_wire(frame)]


# -- Outbox ----------------------------------------------------------------------------------------
def test_a_small_message_overtakes_a_large_one_and_small_ones_share_a_frame() -> None:
    box, _ = _outbox()
    box.put("s1", "big", bytes(3 * CHUNK_BYTES))
    box.put("s2", "small", b"x")
    stream = box.serve(_Calls().add)
    assert next(stream) == HELLO
    assert _tags(next(stream)) == [("s1", "big", 0)]
    assert _tags(next(stream)) == [("s2", "small", 0)]  # before the rest of the large message
    box.put("s3", "a", b"1")
    box.put("s3", "b", b"2")
    assert _tags(next(stream)) == [("s1", "big", CHUNK_BYTES)]
    assert _tags(next(stream)) == [("s3", "a", 0), ("s3", "b", 0)]
    assert _tags(next(stream)) == [("s1", "big", 2 * CHUNK_BYTES)]


def test_a_message_counts_as_sent_once_grpc_asks_for_the_next_frame() -> None:
    box, _ = _outbox()
    box.put("s", "t", b"payload")
    stream = box.serve(_Calls().add)
    next(stream), next(stream)
    assert not box.drained("s")  # handed to gRPC, not yet sent
    box.put("other", "t", b"next")
    next(stream)
    assert box.drained("s") and not box.drained("other")
    assert box.wait_drained("s", 0.0)


def test_a_stream_that_ends_reports_its_sessions_and_drops_only_started_messages() -> None:
    box, lost = _outbox()
    box.put("s1", "big", bytes(2 * CHUNK_BYTES))
    calls = _Calls()
    stream = box.serve(calls.add)
    next(stream), next(stream)  # the first half of s1's message went out
    box.put("s2", "t", b"waits")
    calls.end()  # the connection broke
    assert lost == [("b", {"s1"}, "our stream to it ended")]
    assert next(stream, None) is None
    again = box.serve(_Calls().add)
    assert next(again) == HELLO
    assert _tags(next(again)) == [("s2", "t", 0)]  # never started: it goes on the new stream


def test_a_new_stream_from_the_peer_replaces_the_old_one() -> None:
    box, lost = _outbox()
    old = box.serve(_Calls().add)
    next(old)
    box.put("s1", "t", b"x")
    next(old)
    new = box.serve(_Calls().add)
    assert next(new) == HELLO
    assert lost == [("b", {"s1"}, "it opened a new stream to us")]
    assert next(old, None) is None
    box.put("s2", "t", b"y")
    assert _tags(next(new)) == [("s2", "t", 0)]


def test_an_ended_session_is_not_reported_and_an_aborted_one_sends_nothing_more() -> None:
    box, lost = _outbox()
    calls = _Calls()
    stream = box.serve(calls.add)
    next(stream)
    box.put("done", "t", b"x")
    next(stream)
    box.forget("done")
    box.put("aborted", "t", b"y")
    box.put("kept", "t", b"z")
    box.purge("aborted")
    assert box.drained("aborted")
    assert _tags(next(stream)) == [("kept", "t", 0)]
    calls.end()
    assert lost == [("b", {"kept"}, "our stream to it ended")]


def test_a_closed_outbox_ends_its_stream_and_refuses_messages() -> None:
    box, _ = _outbox()
    stream = box.serve(_Calls().add)
    next(stream)
    done = threading.Event()
    threading.Thread(target=lambda: (next(stream, None), done.set()), daemon=True).start()
    box.close()
    assert done.wait(5)
    with pytest.raises(RuntimeError, match="stopping"):
        box.put("s", "t", b"x")


# -- Inlet -----------------------------------------------------------------------------------------
class _FakeCall:
    """A stream call that yields `frames`, then ends with `error` (None: ends normally)."""

    def __init__(self, frames: list[bytes], error: Exception | None = None) -> None:
        self._frames, self._error = frames, error
        self.cancelled = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._frames
        if self._error is not None:
            raise self._error

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class _Peer:
    """Serves an Inlet the calls in `calls`, one per opening; then blocks until closed."""

    def __init__(self, calls: list[_FakeCall | Exception]) -> None:
        self.calls = calls
        self.opened = 0
        self.broken: list[tuple[str, str]] = []
        self.done = threading.Event()

    def open(self) -> _FakeCall:
        self.opened += 1
        if not self.calls:
            self.done.set()
            threading.Event().wait(0.05)
            raise ConnectionError("no more streams")
        call = self.calls.pop(0)
        if isinstance(call, Exception):
            raise call
        return call


def _run_inlet(peer: _Peer, box: Mailbox, wanted: bool = True) -> Inlet:
    inlet = Inlet("a", "b", box, peer.open, lambda: wanted, lambda p, why: peer.broken.append((p, why)),
                  retry_s=0.0)
    inlet.want()
    return inlet


def test_messages_are_delivered_and_a_stream_that_breaks_is_reported_and_reopened() -> None:
    box = Mailbox()
    box.open_session("s")
    whole = message_to_wire("s", "t1", b"hello")
    half = message_to_wire("s", "t2", bytes(3000), chunk_bytes=1000)[:2]
    after = message_to_wire("s", "t3", b"again")
    peer = _Peer([_FakeCall([HELLO, *whole, *half], ConnectionError("reset")), _FakeCall([HELLO, *after])])
    inlet = _run_inlet(peer, box)
    try:
        assert peer.done.wait(5)
    finally:
        inlet.close()
    assert box.take("s", "b", "t1", 0.0) == b"hello"
    assert box.take("s", "b", "t2", 0.0) is None  # partial: never delivered
    assert box.take("s", "b", "t3", 0.0) == b"again"
    assert peer.broken == [("b", "reset"), ("b", "it ended the stream")]


def test_a_stream_that_never_came_up_is_retried_without_failing_anyone() -> None:
    box = Mailbox()
    peer = _Peer([ConnectionError("refused"), _FakeCall([], ConnectionError("unavailable")), _FakeCall([HELLO])])
    inlet = _run_inlet(peer, box)
    try:
        assert peer.done.wait(5)
    finally:
        inlet.close()
    assert peer.opened >= 4
    assert peer.broken == [("b", "it ended the stream")]


def test_a_malformed_frame_or_a_repeated_tag_is_named() -> None:
    box = Mailbox()
    box.open_session("s")
    (first,) = message_to_wire("s", "t", b"1")
    (again,) = message_to_wire("s", "t", b"2")
    bad = _FakeCall([HELLO, first, again, b"\xff\xff"])
    peer = _Peer([bad])
    inlet = _run_inlet(peer, box)
    try:
        assert peer.done.wait(5)
    finally:
        inlet.close()
    info = box.aborted("s")
    assert info is not None and info.culprit == "b" and "second message from b under tag 't'" in info.reason
    assert bad.cancelled
    assert len(peer.broken) == 1 and peer.broken[0][1].startswith("it sent a malformed frame")


def test_no_stream_is_opened_while_no_session_wants_one() -> None:
    peer = _Peer([])
    inlet = _run_inlet(peer, Mailbox(), wanted=False)
    inlet.close()
    assert peer.opened == 0


def test_reassembly_is_per_stream() -> None:
    # chunks of one message cannot be completed by another stream's (a new Reassembler per stream)
    first, second = message_to_wire("s", "t", bytes(2000), chunk_bytes=1000)
    old, new = Reassembler("b"), Reassembler("b")
    assert old.feed(frames_from_wire(first)[0]) is None
    with pytest.raises(ValueError, match="does not follow"):
        new.feed(frames_from_wire(second)[0])
    assert old.feed(frames_from_wire(second)[0]) == PeerMessage("s", "b", "t", bytes(2000))
