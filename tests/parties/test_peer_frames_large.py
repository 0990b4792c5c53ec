"""Large frames: the payload is written beside its header, not joined to it, and read back whole."""

from __future__ import annotations

import socket
import threading
from typing import cast

import numpy as np

from parties.peer_socket import DIRECT_BYTES, FrameReader, write_frame
from parties.peer_wire import OutgoingMessage, Reassembler, frames_from_wire
from parties.records import PeerMessage


class _Counting:
    """Stands for the TLS socket: records each `sendall` and forwards it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.writes = sock, []  # type: ignore[var-annotated]

    def sendall(self, data: bytes | memoryview) -> None:
        self.writes.append(len(data))
        self.sock.sendall(data)


def test_a_large_chunk_is_written_apart_from_its_header_and_arrives_intact() -> None:
    payload = np.random.default_rng(0).bytes(3 * DIRECT_BYTES + 5)
    near, far = socket.socketpair()
    writer = _Counting(near)
    message = OutgoingMessage("s", "s/1/beaver", payload, chunk_bytes=2 * DIRECT_BYTES)
    frames = 0

    def send() -> None:
        nonlocal frames
        while not message.done:
            parts: list[bytes | memoryview] = []
            message.write_chunk(parts)
            write_frame(writer, parts)  # type: ignore[arg-type]
            frames += 1

    thread = threading.Thread(target=send)
    thread.start()
    reader, box = FrameReader(cast(object, far)), Reassembler("a")  # type: ignore[arg-type]
    got: PeerMessage | None = None
    while got is None:
        raw = reader.next()
        assert raw is not None
        for chunk in frames_from_wire(raw):
            got = box.feed(chunk) or got
    thread.join(5)
    near.close()
    far.close()
    assert got == PeerMessage("s", "a", "s/1/beaver", payload)
    # two frames: each a small header write, then its payload as it is (one chunk of 2 x DIRECT_BYTES, then the rest)
    assert frames == 2 and len(writer.writes) == 4
    assert writer.writes[1] == 2 * DIRECT_BYTES and writer.writes[3] == DIRECT_BYTES + 5
    assert all(w < 100 for w in writer.writes[::2])
