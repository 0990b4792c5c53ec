"""The party-to-party wire format: one tagged message as serialized `PeerChunk`s, by hand.

Messages between parties carry most of a computation's bytes, so they skip protobuf's
message objects: `message_to_wire` writes each chunk as protobuf wire format directly
(key, length, bytes per field), copying each payload byte once, and `message_from_wire`
parses chunks back into a `PeerMessage` without protobuf's copy. What it writes is an
ordinary `PeerChunk` to protobuf, and it reads protobuf's own encoding too.

The field numbers are not written here: `ChunkLayout.of` reads them, with their types,
from the generated descriptor of `PeerChunk`, so this format follows pooled.proto. A field
that is missing or has another type stops the import with a message naming it, and a chunk
holding a field the layout does not know is refused rather than misread.

A payload above `CHUNK_BYTES` is cut into several chunks (for `Send`, a stream); one that
fits in one chunk goes by the unary `SendOne`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from parties.array_stream import CHUNK_BYTES
from parties.proto import pooled_pb2 as pb
from parties.records import PeerMessage

PEER_SEND_METHOD = "/pooled.v1.PeerExchange/Send"
PEER_SEND_ONE_METHOD = "/pooled.v1.PeerExchange/SendOne"

_VARINT, _LENGTH = 0, 2  # protobuf wire types
_TYPES = {"session": FieldDescriptor.TYPE_STRING, "src": FieldDescriptor.TYPE_STRING,
          "tag": FieldDescriptor.TYPE_STRING, "total_bytes": FieldDescriptor.TYPE_UINT64,
          "data": FieldDescriptor.TYPE_BYTES}


@dataclass(frozen=True)
class ChunkLayout:
    """The field numbers of a `PeerChunk`, as its descriptor gives them."""

    session: int
    src: int
    tag: int
    total_bytes: int
    data: int

    @staticmethod
    def of(descriptor: Descriptor) -> ChunkLayout:
        """The layout of `descriptor`; TypeError names a field that is missing or of another type."""
        by_name = descriptor.fields_by_name
        for name, kind in _TYPES.items():
            if name not in by_name:
                raise TypeError(f"{descriptor.full_name} has no field {name!r}, which the peer wire format needs")
            if by_name[name].type != kind:
                raise TypeError(f"{descriptor.full_name}.{name} has type {by_name[name].type}, expected {kind}")
        return ChunkLayout(**{f.name: by_name[f.name].number for f in fields(ChunkLayout)})

    @cached_property
    def keys(self) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """The encoded keys (field number and wire type) of session, src, tag, total_bytes and data."""
        return (_key(self.session, _LENGTH), _key(self.src, _LENGTH), _key(self.tag, _LENGTH),
                _key(self.total_bytes, _VARINT), _key(self.data, _LENGTH))


LAYOUT = ChunkLayout.of(pb.PeerChunk.DESCRIPTOR)
"""The layout of pooled.proto's `PeerChunk`, which every node speaks."""


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]  # IndexError past the end: `message_from_wire` reports a truncated chunk
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def message_to_wire(
    session: str, src: str, tag: str, payload: bytes | memoryview, *, layout: ChunkLayout = LAYOUT
) -> Iterator[bytes]:
    """A message as serialized `PeerChunk`s of at most CHUNK_BYTES of payload each.

    The first carries session, src, tag and total_bytes; every chunk's data field is
    appended as key, length and the payload slice, the only copy of those bytes.
    """
    view = memoryview(payload).cast("B")
    session_key, src_key, tag_key, total_key, data_key = layout.keys
    texts = session.encode(), src.encode(), tag.encode()
    header = b"".join((session_key, _varint(len(texts[0])), texts[0], src_key, _varint(len(texts[1])), texts[1],
                       tag_key, _varint(len(texts[2])), texts[2], total_key, _varint(len(view))))
    if not len(view):
        yield header
        return
    for pos in range(0, len(view), CHUNK_BYTES):
        piece = view[pos : pos + CHUNK_BYTES]
        yield b"".join((header if pos == 0 else b"", data_key, _varint(len(piece)), piece))


def message_to_wire_one(session: str, src: str, tag: str, payload: bytes | memoryview) -> bytes | None:
    """The message as one serialized `PeerChunk` if it fits one chunk (for `SendOne`), else None."""
    if len(memoryview(payload).cast("B")) > CHUNK_BYTES:
        return None
    chunks = list(message_to_wire(session, src, tag, payload))
    return chunks[0] if len(chunks) == 1 else None


def message_from_wire(chunks: Iterable[bytes], *, layout: ChunkLayout = LAYOUT) -> PeerMessage:
    """Undo `message_to_wire` (or parse any serialized `PeerChunk` stream) without protobuf's copy.

    ValueError for a truncated or short stream, or a field that is not in `layout`.
    """
    texts = (layout.session, layout.src, layout.tag)
    head: dict[int, Any] = {}
    parts: list[memoryview] = []
    for raw in chunks:
        buf = memoryview(raw)
        pos = 0
        try:
            while pos < len(buf):
                key, pos = _read_varint(buf, pos)
                number, wire = key >> 3, key & 7
                if wire == _LENGTH:
                    size, pos = _read_varint(buf, pos)
                    end = pos + size
                    if end > len(buf):
                        raise ValueError("truncated message chunk")
                    if number == layout.data:
                        parts.append(buf[pos:end])
                    elif number in texts:
                        head.setdefault(number, bytes(buf[pos:end]).decode())
                    else:
                        raise ValueError(f"unexpected field {number} (wire type {wire}) in a message chunk")
                    pos = end
                elif wire == _VARINT and number == layout.total_bytes:
                    value, pos = _read_varint(buf, pos)
                    head.setdefault(number, value)
                else:
                    raise ValueError(f"unexpected field {number} (wire type {wire}) in a message chunk")
        except IndexError:
            raise ValueError("truncated message chunk") from None
    if not head:
        raise ValueError("empty message stream")
    total = int(head.get(layout.total_bytes, 0))
    data = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
    if len(data) != total:
        raise ValueError(f"stream ended after {len(data)} of {total} bytes")
    return PeerMessage(head.get(layout.session, ""), head.get(layout.src, ""), head.get(layout.tag, ""), data)


def delivered_to_wire(nbytes: int) -> bytes:
    return pb.Delivered(bytes=nbytes).SerializeToString()


def delivered_from_wire(raw: bytes) -> int:
    return int(pb.Delivered.FromString(raw).bytes)


def peer_exchange_wire() -> dict[str, tuple[Callable[[bytes], Any] | None, Callable[[Any], bytes]]]:
    """(request deserializer, response serializer) of each PeerExchange method, for the server.

    Send's requests stay raw bytes, for `message_from_wire`.
    """
    return {
        "Send": (None, delivered_to_wire),
        "SendOne": (None, delivered_to_wire),
        "Abort": (pb.AbortNotice.FromString, pb.Empty.SerializeToString),
        "Ping": (pb.PingRequest.FromString, pb.PingReply.SerializeToString),
    }
