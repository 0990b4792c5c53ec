"""The hand-built peer wire format: protobuf's field numbers, protobuf's parser, and round trips."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from parties.array_stream import CHUNK_BYTES
from parties.peer_wire import (
    LAYOUT,
    ChunkLayout,
    OutgoingMessage,
    Reassembler,
    frames_from_wire,
    frames_to_wire,
    message_to_wire,
    whole_message,
)
from parties.proto import pooled_pb2 as pb
from parties.records import PeerMessage

_F = descriptor_pb2.FieldDescriptorProto
_KINDS = {"session": _F.TYPE_STRING, "tag": _F.TYPE_STRING, "total_bytes": _F.TYPE_UINT64,
          "offset": _F.TYPE_UINT64, "data": _F.TYPE_BYTES}


def _classes(numbers: dict[str, int], chunks: int = 1, **retype: int) -> tuple[Any, Any]:
    """`PeerChunk` and `PeerFrames` classes with other field numbers (or types), as another .proto would make them."""
    file = descriptor_pb2.FileDescriptorProto(name="other.proto", package="other", syntax="proto3")
    message = file.message_type.add(name="PeerChunk")
    for name, number in numbers.items():
        message.field.add(name=name, number=number, type=retype.get(name, _KINDS[name]), label=_F.LABEL_OPTIONAL)
    frames = file.message_type.add(name="PeerFrames")
    frames.field.add(name="chunks", number=chunks, type=_F.TYPE_MESSAGE, type_name=".other.PeerChunk",
                     label=_F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    get = message_factory.GetMessageClass
    return get(pool.FindMessageTypeByName("other.PeerChunk")), get(pool.FindMessageTypeByName("other.PeerFrames"))


def _reassemble(frames: list[bytes], src: str = "a") -> list[PeerMessage]:
    box = Reassembler(src)
    out = [box.feed(chunk) for frame in frames for chunk in frames_from_wire(frame)]
    assert box.incomplete == 0
    return [m for m in out if m is not None]


def test_the_field_numbers_are_the_generated_descriptors() -> None:
    fields = pb.PeerChunk.DESCRIPTOR.fields_by_name
    numbers = [fields[n].number for n in ("session", "tag", "total_bytes", "offset", "data")]
    assert LAYOUT == ChunkLayout(*numbers, pb.PeerFrames.DESCRIPTOR.fields_by_name["chunks"].number)


@pytest.mark.parametrize("size", [0, 1, 1 << 20, (1 << 20) + 1, 3_000_000])
def test_peer_messages_round_trip_and_are_valid_protobuf(size: int) -> None:
    payload = np.random.default_rng(size).bytes(size)
    wire = message_to_wire("sess", "sess/3/beaver", payload)
    assert len(wire) == max(1, -(-size // CHUNK_BYTES))
    # protobuf reads the hand-built frames as the same message...
    parsed = [pb.PeerFrames.FromString(w).chunks[0] for w in wire]
    assert parsed[0].session == "sess" and parsed[0].tag == "sess/3/beaver" and parsed[0].total_bytes == size
    assert [p.offset for p in parsed] == list(range(0, max(size, 1), CHUNK_BYTES))
    assert b"".join(p.data for p in parsed) == payload
    # ...and the fast parser reads protobuf's own encoding too.
    (msg,) = _reassemble([pb.PeerFrames(chunks=[p]).SerializeToString() for p in parsed], src="b")
    assert msg == PeerMessage("sess", "b", "sess/3/beaver", payload)
    assert _reassemble(wire)[0].payload == payload


def test_chunks_of_several_messages_share_a_frame_and_interleave() -> None:
    big = OutgoingMessage("s1", "big", bytes(range(256)) * 10, chunk_bytes=1000)
    small = OutgoingMessage("s2", "t", b"x")
    frames = []
    while not big.done:
        parts: list[bytes | memoryview] = []
        size = big.write_chunk(parts)
        if not small.done:
            size += small.write_chunk(parts)
        assert size == sum(len(p) for p in parts)
        frames.append(frames_to_wire(parts))
    assert len(pb.PeerFrames.FromString(frames[0]).chunks) == 2
    messages = _reassemble(frames)
    assert [(m.session, m.tag) for m in messages] == [("s2", "t"), ("s1", "big")]
    assert messages[1].payload == bytes(range(256)) * 10


def test_a_renumbered_chunk_follows_its_descriptor_and_is_refused_by_another() -> None:
    chunk, frames = _classes({"session": 7, "tag": 1, "total_bytes": 12, "offset": 3, "data": 2}, chunks=9)
    layout = ChunkLayout.of(chunk.DESCRIPTOR, frames.DESCRIPTOR)
    assert layout == ChunkLayout(session=7, tag=1, total_bytes=12, offset=3, data=2, chunks=9)
    (wire,) = message_to_wire("s", "s/1/x", b"payload", layout=layout)
    parsed = frames.FromString(wire).chunks[0]
    assert (parsed.session, parsed.tag, parsed.total_bytes, parsed.data) == ("s", "s/1/x", 7, b"payload")
    assert frames_from_wire(frames(chunks=[parsed]).SerializeToString(), layout=layout)[0].data == b"payload"
    with pytest.raises(ValueError, match="unexpected field 9"):
        frames_from_wire(wire)  # read with pooled.proto's numbers: refused, not misread


def test_a_missing_or_retyped_field_fails_loudly() -> None:
    chunk, frames = _classes({"session": 1, "tag": 3, "total_bytes": 4, "offset": 6})
    with pytest.raises(TypeError, match="has no field 'data'"):
        ChunkLayout.of(chunk.DESCRIPTOR, frames.DESCRIPTOR)
    chunk, frames = _classes({"session": 1, "tag": 3, "total_bytes": 4, "offset": 6, "data": 5},
                             total_bytes=_F.TYPE_STRING)
    with pytest.raises(TypeError, match="total_bytes has type"):
        ChunkLayout.of(chunk.DESCRIPTOR, frames.DESCRIPTOR)
    with pytest.raises(TypeError, match="no repeated field 'chunks'"):
        ChunkLayout.of(pb.PeerChunk.DESCRIPTOR, pb.Empty.DESCRIPTOR)


def test_truncated_frames_are_refused() -> None:
    (wire,) = message_to_wire("s", "t", bytes(100))
    with pytest.raises(ValueError, match="truncated"):
        frames_from_wire(wire[:50])
    with pytest.raises(ValueError, match="truncated"):
        frames_from_wire(wire[:1])


def test_pieces_that_do_not_fit_together_are_refused_and_partial_messages_never_delivered() -> None:
    first, second, third = (frames_from_wire(w)[0] for w in message_to_wire("s", "t", bytes(3000), chunk_bytes=1000))
    box = Reassembler("a")
    assert box.feed(first) is None and box.incomplete == 1  # a stream that ends here delivers nothing
    with pytest.raises(ValueError, match="started twice"):
        box.feed(first)
    with pytest.raises(ValueError, match="does not follow"):
        box.feed(third)
    with pytest.raises(ValueError, match="does not follow"):
        Reassembler("a").feed(second)  # a piece of a message that never started
    assert box.feed(second) is None
    assert box.feed(third) == PeerMessage("s", "a", "t", bytes(3000))
    (empty,) = frames_from_wire(message_to_wire("s", "u", b"")[0])
    assert Reassembler("a").feed(empty) == PeerMessage("s", "a", "u", b"")


def _parsed(raw: bytes) -> tuple[str, Any]:
    """What `frames_from_wire` makes of `raw`: its chunks, or the error's type and text."""
    try:
        return "ok", [(c.session, c.tag, c.total_bytes, c.offset, bytes(c.data)) for c in frames_from_wire(raw)]
    except ValueError as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 1000, 20_000])
def test_a_whole_message_is_one_chunk_read_as_the_general_parser_reads_it(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = np.arange(size, dtype=np.uint8).tobytes()
    for session, tag in (("s", "s/1/x"), ("", ""), ("é" * 70, "t" * 200)):
        (frame,) = message_to_wire(session, tag, payload)
        assert whole_message(session, tag, payload) == frame  # the same bytes as the chunking writer's
        if size == 1000:  # a frame as the writer lays it out, every prefix, and every byte of its head changed
            variants = [frame] + [frame[:cut] for cut in range(len(frame))]
            variants += [frame[:i] + bytes([v]) + frame[i + 1 :] for i in range(40) for v in (0, 0x7F, 0x80, 0xFF)]
            fast = [_parsed(v) for v in variants]
            monkeypatch.setattr("parties.peer_wire._as_written", lambda buf, layout: None)
            assert [_parsed(v) for v in variants] == fast  # the general parser alone: the same chunks or errors
            monkeypatch.undo()
    step = max(size, 1)
    later = message_to_wire("s", "t", bytes(2 * step), chunk_bytes=step)[1]
    assert _parsed(later)[1][0][2:4] == (0, step)  # a later chunk: its offset, no total
