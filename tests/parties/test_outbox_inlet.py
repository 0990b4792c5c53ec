"""Both ends of a data socket without TLS or gRPC: the Outbox's writes and breaks, the Inlet's reading.

A `socket.socketpair` stands for the TLS socket: the Outbox writes one end, the test (or an
Inlet) reads the other.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import cast

import pytest

from parties.inlet import Inlet
from parties.mailbox import Mailbox
from parties.outbox import LinkError, Outbox
from parties.peer_socket import FrameReader, write_frame
from parties.peer_wire import Reassembler, frames_from_wire, message_to_wire
from parties.records import PeerMessage
from tests.support import wait_until

Lost = list[tuple[str, set[str], str]]


class _Dialer:
    """Hands the Outbox one end of a fresh socket pair per dial (or raises `error`); keeps the other ends."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.far: list[socket.socket] = []

    def __call__(self) -> ssl.SSLSocket:
        if self.error is not None:
            raise self.error
        near, far = socket.socketpair()
        self.far.append(far)
        return cast(ssl.SSLSocket, near)  # stands for the TLS socket


def _outbox(dialer: _Dialer, stall_s: float = 5.0, frame_bytes: int = 1000) -> tuple[Outbox, Lost]:
    lost: Lost = []
    box = Outbox("b", dialer, lambda peer, sessions, why: lost.append((peer, sessions, why)), stall_s,
                 frame_bytes=frame_bytes)
    return box, lost


def _read_messages(sock: socket.socket, count: int) -> tuple[list[PeerMessage], int]:
    """`count` whole messages from the far end, and how many frames carried them."""
    frames, box = FrameReader(sock), Reassembler("a")  # type: ignore[arg-type]
    got: list[PeerMessage] = []
    seen = 0
    while len(got) < count:
        raw = frames.next()
        assert raw is not None
        seen += 1
        for chunk in frames_from_wire(raw):
            message = box.feed(chunk)
            if message is not None:
                got.append(message)
    return got, seen




# -- Outbox ----------------------------------------------------------------------------------------
def test_messages_are_written_in_chunks_on_one_socket_dialled_on_first_use() -> None:
    dialer = _Dialer()
    box, lost = _outbox(dialer)
    assert not box.up and not dialer.far
    box.put("s", "big", bytes(range(250)) * 10)  # 2,500 bytes: three chunks of at most 1,000
    box.put("s", "small", b"x")
    got, frames = _read_messages(dialer.far[0], 2)
    assert [(m.tag, m.payload) for m in got] == [("big", bytes(range(250)) * 10), ("small", b"x")]
    assert frames == 4 and len(dialer.far) == 1 and box.up and lost == []
    box.close()


def test_a_socket_the_peer_closes_reports_the_sessions_that_wrote_to_it_and_the_next_message_dials_again() -> None:
    dialer = _Dialer()
    box, lost = _outbox(dialer)
    box.put("s1", "t", b"one")
    box.put("s2", "t", b"two")
    box.forget("s2")  # ended here: not concerned any more
    dialer.far[0].close()
    assert wait_until(lambda: bool(lost))  # seen by the watcher, without a write
    assert lost == [("b", {"s1"}, "it closed our connection")]
    assert wait_until(lambda: not box.up)
    box.put("s3", "t", b"three")
    assert len(dialer.far) == 2
    assert [m.payload for m in _read_messages(dialer.far[1], 1)[0]] == [b"three"]
    box.close()


def test_a_new_session_does_not_write_on_a_socket_the_peer_closed_before_the_watcher_saw_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Outbox, "_watch", lambda self, link: None)  # the watcher has not run yet
    dialer = _Dialer()
    box, lost = _outbox(dialer)
    box.put("s1", "t", b"one")
    dialer.far[0].close()  # the peer replaced or refused the socket
    box.put("s2", "t", b"two")  # a session's first message checks the socket first, and dials again
    assert len(dialer.far) == 2
    assert [m.payload for m in _read_messages(dialer.far[1], 1)[0]] == [b"two"]
    assert lost == [("b", {"s1"}, "it closed our connection")]  # s1 wrote to the old socket: told
    box.put("s1", "u", b"three")  # s1 goes on, on the new socket
    assert [m.payload for m in _read_messages(dialer.far[1], 1)[0]] == [b"three"]
    box.close()


def test_a_peer_that_stops_reading_fails_the_write_after_the_stall_limit() -> None:
    dialer = _Dialer()
    box, lost = _outbox(dialer, stall_s=0.3, frame_bytes=1 << 20)
    started = time.monotonic()
    with pytest.raises(LinkError, match="took none of our messages for 0.3 s"):
        box.put("s", "huge", bytes(64 << 20))  # far more than the socket buffers hold
    assert time.monotonic() - started < 5
    assert lost == [("b", {"s"}, "it took none of our messages for 0.3 s")]
    box.close()


def test_a_peer_that_cannot_be_dialled_is_a_link_error_and_a_closed_outbox_refuses_messages() -> None:
    box, lost = _outbox(_Dialer(ConnectionRefusedError("refused")))
    with pytest.raises(LinkError, match="cannot connect to it"):
        box.put("s", "t", b"x")
    assert lost == []
    box.close()
    with pytest.raises(RuntimeError, match="stopping"):
        box.put("s", "t", b"x")


# -- Inlet -----------------------------------------------------------------------------------------
def _inlet(box: Mailbox) -> tuple[Inlet, socket.socket, list[str], threading.Thread]:
    near, far = socket.socketpair()
    ended: list[str] = []
    inlet = Inlet("a", "b", near, box, lambda _, why: ended.append(why))  # type: ignore[arg-type]
    thread = threading.Thread(target=inlet.run)
    thread.start()
    return inlet, far, ended, thread


def test_whole_messages_are_delivered_and_a_partial_one_is_dropped_when_the_socket_ends() -> None:
    box = Mailbox()
    box.open_session("s")
    _, far, ended, thread = _inlet(box)
    write_frame(far, message_to_wire("s", "t1", b"hello"))  # type: ignore[arg-type]
    first, *_ = message_to_wire("s", "t2", bytes(3000), chunk_bytes=1000)
    write_frame(far, [first])  # type: ignore[arg-type]
    assert box.take("s", "b", "t1", 5.0) == b"hello"
    far.close()
    thread.join(5)
    assert ended == ["it closed the connection"]
    assert box.take("s", "b", "t2", 0.0) is None


@pytest.mark.parametrize(("frame", "why"), [
    (b"\x00\x00\x00\x02\x0a\xff", "it sent a malformed frame: truncated peer frame"),
    ((100 << 20).to_bytes(4, "big"), "it sent a malformed frame: a frame of 104857600 bytes, over the limit"),
])
def test_a_malformed_frame_ends_the_socket_naming_why(frame: bytes, why: str) -> None:
    _, far, ended, thread = _inlet(Mailbox())
    far.sendall(frame)
    thread.join(5)
    far.close()
    assert len(ended) == 1 and ended[0].startswith(why)


def test_a_repeated_tag_fails_its_session_naming_the_peer_and_a_stopped_inlet_reports_nothing() -> None:
    box = Mailbox()
    box.open_session("s")
    inlet, far, ended, thread = _inlet(box)
    for _ in range(2):
        write_frame(far, message_to_wire("s", "t", b"x"))  # type: ignore[arg-type]
    assert wait_until(lambda: box.aborted("s") is not None)
    info = box.aborted("s")
    assert info is not None and info.culprit == "b" and "second message from b under tag 't'" in info.reason
    inlet.stop()
    thread.join(5)
    far.close()
    assert ended == []
