"""The hand-built peer wire format: protobuf's field numbers, protobuf's parser, and round trips."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from parties.array_stream import CHUNK_BYTES
from parties.peer_wire import LAYOUT, ChunkLayout, message_from_wire, message_to_wire, message_to_wire_one
from parties.proto import pooled_pb2 as pb

_F = descriptor_pb2.FieldDescriptorProto
_KINDS = {"session": _F.TYPE_STRING, "src": _F.TYPE_STRING, "tag": _F.TYPE_STRING,
          "total_bytes": _F.TYPE_UINT64, "data": _F.TYPE_BYTES}


def _chunk_class(numbers: dict[str, int], **retype: int) -> Any:
    """A `PeerChunk` message class with other field numbers (or types), as another .proto would make it."""
    file = descriptor_pb2.FileDescriptorProto(name="other.proto", package="other", syntax="proto3")
    message = file.message_type.add(name="PeerChunk")
    for name, number in numbers.items():
        message.field.add(name=name, number=number, type=retype.get(name, _KINDS[name]), label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("other.PeerChunk"))


def test_the_field_numbers_are_the_generated_descriptors() -> None:
    fields = pb.PeerChunk.DESCRIPTOR.fields_by_name
    assert LAYOUT == ChunkLayout(*(fields[n].number for n in ("session", "src", "tag", "total_bytes", "data")))


@pytest.mark.parametrize("size", [0, 1, 1 << 20, (1 << 20) + 1, 3_000_000])
def test_peer_messages_round_trip_and_are_valid_protobuf(size: int) -> None:
    payload = np.random.default_rng(size).bytes(size)
    wire = list(message_to_wire("sess", "a", "sess/3/beaver", payload))
    assert len(wire) == max(1, -(-size // CHUNK_BYTES))
    # protobuf reads the hand-built chunks as the same message...
    parsed = [pb.PeerChunk.FromString(w) for w in wire]
    assert parsed[0].session == "sess" and parsed[0].src == "a" and parsed[0].tag == "sess/3/beaver"
    assert parsed[0].total_bytes == size and b"".join(p.data for p in parsed) == payload
    # ...and the fast parser reads protobuf's own encoding too.
    msg = message_from_wire(p.SerializeToString() for p in parsed)
    assert (msg.session, msg.src, msg.tag, msg.payload) == ("sess", "a", "sess/3/beaver", payload)
    assert message_from_wire(wire).payload == payload
    one = message_to_wire_one("sess", "a", "t", payload)
    assert (one is None) == (size > CHUNK_BYTES)


def test_a_renumbered_chunk_follows_its_descriptor_and_is_refused_by_another() -> None:
    other = _chunk_class({"session": 7, "src": 3, "tag": 1, "total_bytes": 12, "data": 2})
    layout = ChunkLayout.of(other.DESCRIPTOR)
    assert layout == ChunkLayout(session=7, src=3, tag=1, total_bytes=12, data=2)
    wire = list(message_to_wire("s", "b", "s/1/x", b"payload", layout=layout))
    parsed = other.FromString(wire[0])
    assert (parsed.session, parsed.src, parsed.tag, parsed.total_bytes, parsed.data) == ("s", "b", "s/1/x", 7,
                                                                                        b"payload")
    assert message_from_wire([parsed.SerializeToString()], layout=layout).payload == b"payload"
    with pytest.raises(ValueError, match="unexpected field 7"):
        message_from_wire(wire)  # read with pooled.proto's numbers: refused, not misread


def test_a_missing_or_retyped_field_fails_loudly() -> None:
    with pytest.raises(TypeError, match="has no field 'data'"):
        ChunkLayout.of(_chunk_class({"session": 1, "src": 2, "tag": 3, "total_bytes": 4}).DESCRIPTOR)
    retyped = _chunk_class({"session": 1, "src": 2, "tag": 3, "total_bytes": 4, "data": 5}, total_bytes=_F.TYPE_STRING)
    with pytest.raises(TypeError, match="total_bytes has type"):
        ChunkLayout.of(retyped.DESCRIPTOR)


def test_short_and_truncated_peer_messages_are_refused() -> None:
    wire = list(message_to_wire("s", "a", "t", bytes(3 << 20)))
    with pytest.raises(ValueError, match="stream ended"):
        message_from_wire(wire[:2])
    with pytest.raises(ValueError, match="truncated"):
        message_from_wire([wire[0][:100]])
    with pytest.raises(ValueError, match="empty message stream"):
        message_from_wire([])
