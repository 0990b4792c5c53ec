"""The party-to-party wire format: tagged messages as hand-built `PeerChunk`s inside `PeerFrames`.

Messages between parties carry most of a computation's bytes, so they skip protobuf's
message objects. `OutgoingMessage` cuts a message into chunks of at most `CHUNK_BYTES` of
payload, and `frames_to_wire` writes any number of chunks (of several messages) as one
serialized `PeerFrames`, copying each payload byte once. `frames_from_wire` parses one back
into `Chunk`s without protobuf's copy, and a `Reassembler` per data socket turns chunks into
`PeerMessage`s, handing a message over only once all its bytes are there. What this writes is
an ordinary `PeerFrames` to protobuf, and it reads protobuf's own encoding too.

Every chunk names its message (session, tag), so chunks of different messages may
interleave on one socket; the first (offset 0) gives the message's size, and each later
one its offset, which must be where the previous one ended. The source is not on the wire:
it is the party whose client certificate the data socket presented (parties/peer_socket.py).

The field numbers are not written here: `ChunkLayout.of` reads them, with their types,
from the generated descriptors of `PeerChunk` and `PeerFrames`, so this format follows
pooled.proto. A field that is missing or has another type stops the import with a message
naming it, and a chunk holding a field the layout does not know is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from parties.array_stream import CHUNK_BYTES
from parties.proto import pooled_pb2 as pb
from parties.records import PeerMessage

_VARINT, _LENGTH = 0, 2  # protobuf wire types
_TYPES = {"session": FieldDescriptor.TYPE_STRING, "tag": FieldDescriptor.TYPE_STRING,
          "total_bytes": FieldDescriptor.TYPE_UINT64, "offset": FieldDescriptor.TYPE_UINT64,
          "data": FieldDescriptor.TYPE_BYTES}


@dataclass(frozen=True)
class ChunkLayout:
    """The field numbers of a `PeerChunk` and of `PeerFrames.chunks`, as their descriptors give them."""

    session: int
    tag: int
    total_bytes: int
    offset: int
    data: int
    chunks: int

    @staticmethod
    def of(chunk: Descriptor, frames: Descriptor) -> ChunkLayout:
        """The layout of `chunk` inside `frames`; TypeError names a field that is missing or of another type."""
        by_name = chunk.fields_by_name
        for name, kind in _TYPES.items():
            if name not in by_name:
                raise TypeError(f"{chunk.full_name} has no field {name!r}, which the peer wire format needs")
            if by_name[name].type != kind:
                raise TypeError(f"{chunk.full_name}.{name} has type {by_name[name].type}, expected {kind}")
        repeated = frames.fields_by_name.get("chunks")
        if repeated is None or repeated.message_type is None or repeated.message_type.full_name != chunk.full_name:
            raise TypeError(f"{frames.full_name} has no repeated field 'chunks' of {chunk.full_name}")
        return ChunkLayout(by_name["session"].number, by_name["tag"].number, by_name["total_bytes"].number,
                           by_name["offset"].number, by_name["data"].number, repeated.number)

    @cached_property
    def keys(self) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
        """The encoded keys (field number and wire type) of session, tag, total_bytes, offset, data and chunks."""
        return (_key(self.session, _LENGTH), _key(self.tag, _LENGTH), _key(self.total_bytes, _VARINT),
                _key(self.offset, _VARINT), _key(self.data, _LENGTH), _key(self.chunks, _LENGTH))

    @cached_property
    def short_keys(self) -> tuple[int, int, int, int, int, int] | None:
        """`keys` as single bytes, when every one fits in a byte (field numbers below 16); else None."""
        keys = self.keys
        return tuple(k[0] for k in keys) if all(len(k) == 1 for k in keys) else None  # type: ignore[return-value]


LAYOUT = ChunkLayout.of(pb.PeerChunk.DESCRIPTOR, pb.PeerFrames.DESCRIPTOR)
"""The layout of pooled.proto's `PeerChunk` and `PeerFrames`, which every node speaks."""


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
        byte = buf[pos]  # IndexError past the end: the parsers report a truncated frame
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


# -- sending ---------------------------------------------------------------------------------------
class OutgoingMessage:
    """One message on its way out, cut into chunks of at most `chunk_bytes` of payload, in order."""

    __slots__ = ("session", "tag", "size", "_view", "_pos", "_started", "_head", "_keys", "_chunk_bytes")

    def __init__(self, session: str, tag: str, payload: bytes | memoryview, *, layout: ChunkLayout = LAYOUT,
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        self.session, self.tag = session, tag
        self._view = memoryview(payload).cast("B")
        self.size = len(self._view)
        self._pos = 0
        self._started = False
        self._keys = layout.keys
        name, step = session.encode(), tag.encode()
        self._head = b"".join((self._keys[0], _varint(len(name)), name, self._keys[1], _varint(len(step)), step))
        self._chunk_bytes = chunk_bytes

    @property
    def started(self) -> bool:
        """Some chunk has been written."""
        return self._started

    @property
    def done(self) -> bool:
        """Every chunk has been written (an empty message is one chunk)."""
        return self._started and self._pos >= self.size

    @property
    def next_bytes(self) -> int:
        """Payload bytes of the next chunk."""
        return min(self._chunk_bytes, self.size - self._pos)

    def write_chunk(self, parts: list[bytes | memoryview]) -> int:
        """Append the next chunk, as an entry of `PeerFrames.chunks`, to `parts`; its size on the wire."""
        _, _, total_key, offset_key, data_key, chunks_key = self._keys
        pos = self._pos
        piece = self._view[pos : pos + self._chunk_bytes]
        where = total_key + _varint(self.size) if pos == 0 else offset_key + _varint(pos)
        data_len = _varint(len(piece))
        body = len(self._head) + len(where) + len(data_key) + len(data_len) + len(piece)
        lead = chunks_key + _varint(body)
        parts.extend((lead, self._head, where, data_key, data_len, piece))
        self._pos, self._started = pos + len(piece), True
        return len(lead) + body


def whole_message(session: str, tag: str, payload: bytes | memoryview, *, layout: ChunkLayout = LAYOUT) -> bytes:
    """A serialized `PeerFrames` holding a whole message as one chunk, payload included.

    The same bytes as `OutgoingMessage.write_chunk` of a message that fits one chunk, in fewer
    steps: most messages are a few bytes, and this runs once per message and peer.
    """
    view = memoryview(payload).cast("B")
    name, step = session.encode(), tag.encode()
    size = len(view)
    session_key, tag_key, total_key, _, data_key, chunks_key = layout.keys
    head = b"".join((session_key, _varint(len(name)), name, tag_key, _varint(len(step)), step,
                     total_key, _varint(size), data_key, _varint(size)))
    return b"".join((chunks_key, _varint(len(head) + size), head, view))


def frames_to_wire(parts: list[bytes | memoryview]) -> bytes:
    """A serialized `PeerFrames` from what `OutgoingMessage.write_chunk` appended (the payload's one copy)."""
    return b"".join(parts)


def message_to_wire(session: str, tag: str, payload: bytes | memoryview, *, layout: ChunkLayout = LAYOUT,
                    chunk_bytes: int = CHUNK_BYTES) -> list[bytes]:
    """A whole message as serialized `PeerFrames`, one chunk each (for tests and tools)."""
    message = OutgoingMessage(session, tag, payload, layout=layout, chunk_bytes=chunk_bytes)
    frames = []
    while not message.done:
        parts: list[bytes | memoryview] = []
        message.write_chunk(parts)
        frames.append(frames_to_wire(parts))
    return frames


# -- receiving -------------------------------------------------------------------------------------
class Chunk(NamedTuple):
    """A piece of a message as read from the wire; `data` is a view into the received frame."""

    session: str
    tag: str
    total_bytes: int
    offset: int
    data: memoryview


def frames_from_wire(raw: bytes | bytearray | memoryview, *, layout: ChunkLayout = LAYOUT) -> list[Chunk]:
    """The chunks of one serialized `PeerFrames`, without protobuf's copy of their data.

    ValueError for a truncated frame or a field that is not in `layout`.
    """
    buf = memoryview(raw)
    one = _as_written(buf, layout)
    if one is not None:
        return [one]
    chunks = []
    pos = 0
    try:
        while pos < len(buf):
            key, pos = _read_varint(buf, pos)
            if key != (layout.chunks << 3 | _LENGTH):
                raise ValueError(f"unexpected field {key >> 3} (wire type {key & 7}) in a peer frame")
            size, pos = _read_varint(buf, pos)
            end = pos + size
            if end > len(buf):
                raise ValueError("truncated peer frame")
            chunks.append(_chunk(buf[pos:end], layout))
            pos = end
    except IndexError:
        raise ValueError("truncated peer frame") from None
    return chunks


def _as_written(buf: memoryview, layout: ChunkLayout) -> Chunk | None:
    """The chunk of a frame laid out exactly as `OutgoingMessage` writes it; None for any other frame.

    One chunk, its fields in the writer's order, nothing after it: the layout of nearly every
    frame, read in one pass. Anything else, malformed frames included, is left to the general
    parser (`frames_from_wire`), which accepts any order and names what is wrong.
    """
    keys = layout.short_keys
    if keys is None:
        return None
    session_key, tag_key, total_key, offset_key, data_key, chunks_key = keys
    try:
        if buf[0] != chunks_key:
            return None
        size, pos = _read_varint(buf, 1)
        if pos + size != len(buf) or buf[pos] != session_key:
            return None
        size, pos = _read_varint(buf, pos + 1)
        session, pos = str(buf[pos : pos + size], "utf-8"), pos + size
        if buf[pos] != tag_key:
            return None
        size, pos = _read_varint(buf, pos + 1)
        tag, pos = str(buf[pos : pos + size], "utf-8"), pos + size
        where = buf[pos]
        if where not in (total_key, offset_key):
            return None
        number, pos = _read_varint(buf, pos + 1)
        if buf[pos] != data_key:
            return None
        size, pos = _read_varint(buf, pos + 1)
        if pos + size != len(buf):
            return None
    except (IndexError, ValueError):  # truncated, or text that is not UTF-8: the general parser says which
        return None
    if where == total_key:
        return Chunk(session, tag, number, 0, buf[pos:])
    return Chunk(session, tag, 0, number, buf[pos:])


def _chunk(buf: memoryview, layout: ChunkLayout) -> Chunk:
    texts: dict[int, str] = {}
    numbers = {layout.total_bytes: 0, layout.offset: 0}
    data = buf[0:0]
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _LENGTH:
            size, pos = _read_varint(buf, pos)
            end = pos + size
            if end > len(buf):
                raise ValueError("truncated message chunk")
            if number == layout.data:
                data = buf[pos:end]
            elif number in (layout.session, layout.tag):
                texts[number] = bytes(buf[pos:end]).decode()
            else:
                raise ValueError(f"unexpected field {number} (wire type {wire}) in a message chunk")
            pos = end
        elif wire == _VARINT and number in numbers:
            numbers[number], pos = _read_varint(buf, pos)
        else:
            raise ValueError(f"unexpected field {number} (wire type {wire}) in a message chunk")
    return Chunk(texts.get(layout.session, ""), texts.get(layout.tag, ""), numbers[layout.total_bytes],
                 numbers[layout.offset], data)


class Reassembler:
    """Rebuilds the messages of one stream from `src`; a message is handed over only when complete.

    ValueError when the chunks do not fit together (a piece out of place, a message started
    twice, more bytes than announced): the stream cannot be trusted after that.
    """

    def __init__(self, src: str) -> None:
        self.src = src
        self._partial: dict[tuple[str, str], tuple[int, list[memoryview], int]] = {}

    @property
    def incomplete(self) -> int:
        """Messages started but not finished (dropped with the stream if it ends)."""
        return len(self._partial)

    def feed(self, chunk: Chunk) -> PeerMessage | None:
        """The message `chunk` completes, if it does."""
        key = (chunk.session, chunk.tag)
        got = len(chunk.data)
        if chunk.offset == 0:
            if key in self._partial:
                raise ValueError(f"message {chunk.tag!r} of session {chunk.session!r} started twice")
            if got == chunk.total_bytes:
                return PeerMessage(chunk.session, self.src, chunk.tag, bytes(chunk.data))
            if got > chunk.total_bytes or not got:
                raise ValueError(f"first piece of {chunk.tag!r} has {got} of {chunk.total_bytes} bytes")
            self._partial[key] = (chunk.total_bytes, [chunk.data], got)
            return None
        partial = self._partial.get(key)
        if partial is None or partial[2] != chunk.offset or not got:
            raise ValueError(f"piece of {chunk.tag!r} at offset {chunk.offset} does not follow what came before")
        total, parts, have = partial
        parts.append(chunk.data)
        have += got
        if have < total:
            self._partial[key] = (total, parts, have)
            return None
        del self._partial[key]
        if have > total:
            raise ValueError(f"message {chunk.tag!r} has more than the {total} bytes announced")
        return PeerMessage(chunk.session, self.src, chunk.tag, b"".join(parts))


def peer_exchange_wire() -> dict[str, tuple[Callable[[bytes], Any] | None, Callable[[Any], bytes] | None]]:
    """(request deserializer, response serializer) of each PeerExchange method, for the server."""
    return {
        "GetDataPort": (pb.Empty.FromString, pb.DataPort.SerializeToString),
        "Abort": (pb.AbortNotice.FromString, pb.Empty.SerializeToString),
        "Ping": (pb.PingRequest.FromString, pb.PingReply.SerializeToString),
    }
