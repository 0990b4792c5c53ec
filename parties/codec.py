"""Conversions between protobuf messages and Pooled's domain types.

This is the only module that builds or reads protobuf objects: servicers and clients
call it to decode a request into plain Python values and to encode the answer. Arrays
travel as raw little-endian bytes plus shape, ring size, domain and scale, with no
per-element work; anything large is cut into chunks of at most `CHUNK_BYTES` (1 MiB)
so gRPC's 4 MiB message limit is never reached, and reassembled with one copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mpc.material import Component, Secrets
from mpc.ring import Ring
from mpc.share import Share
from mpc.stats import CommStats
from parties.proto import pooled_pb2 as pb

CHUNK_BYTES = 1 << 20
"""Largest payload of one streamed chunk."""


# -- arrays ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WireArray:
    """A named array as it travels: elements of Z_2^ring_bits or xor words, with a scale."""

    name: str
    data: np.ndarray
    ring_bits: int = 64
    domain: str = "arith"
    frac: int = 0

    def to_bytes(self) -> bytes | memoryview:
        if self.ring_bits == 64 or self.domain == "xor":
            arr = np.ascontiguousarray(self.data, dtype=np.uint64)
            if arr.dtype.byteorder == ">":
                arr = arr.byteswap()
            return arr.reshape(-1).view(np.uint8).data
        return Ring(self.ring_bits).to_bytes(self.data)

    @property
    def nbytes(self) -> int:
        count = int(np.prod(self.data.shape, dtype=np.int64))
        return count * (8 if self.domain == "xor" else self.ring_bits // 8)


def _from_bytes(buf: memoryview, shape: tuple[int, ...], ring_bits: int, domain: str) -> np.ndarray:
    if ring_bits == 64 or domain == "xor":
        return np.frombuffer(buf, dtype="<u8").reshape(shape)
    return Ring(ring_bits).from_bytes(buf, shape)


def _pieces(buffers: Sequence[bytes | memoryview]) -> Iterator[bytes]:
    """The concatenation of `buffers`, cut into pieces of at most CHUNK_BYTES."""
    pending: list[bytes] = []
    size = 0
    for buf in buffers:
        view = memoryview(buf).cast("B")
        pos = 0
        while pos < len(view):
            take = min(CHUNK_BYTES - size, len(view) - pos)
            pending.append(bytes(view[pos : pos + take]))
            size += take
            pos += take
            if size == CHUNK_BYTES:
                yield pending[0] if len(pending) == 1 else b"".join(pending)
                pending, size = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else b"".join(pending)


def _join(parts: list[bytes], total: int) -> bytes:
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(data) != total:
        raise ValueError(f"stream ended after {len(data)} of {total} bytes")
    return data


def _join_writable(parts: list[bytes], total: int) -> bytearray:
    """Reassemble into a writable buffer, so decoded arrays can be updated in place."""
    got = sum(len(p) for p in parts)
    if got != total:
        raise ValueError(f"stream ended after {got} of {total} bytes")
    out = bytearray(total)
    pos = 0
    for p in parts:
        out[pos : pos + len(p)] = p
        pos += len(p)
    return out


def arrays_to_chunks(arrays: Sequence[WireArray]) -> Iterator[pb.ArraysChunk]:
    """Stream a set of arrays: headers in the first chunk, bytes in <= 1 MiB pieces."""
    headers = [
        pb.ArrayHeader(name=a.name, shape=list(a.data.shape), ring_bits=a.ring_bits, domain=a.domain, frac=a.frac)
        for a in arrays
    ]
    total = sum(a.nbytes for a in arrays)
    first = True
    for piece in _pieces([a.to_bytes() for a in arrays]):
        if first:
            yield pb.ArraysChunk(headers=headers, total_bytes=total, data=piece)
            first = False
        else:
            yield pb.ArraysChunk(data=piece)
    if first:
        yield pb.ArraysChunk(headers=headers, total_bytes=total)


def arrays_from_chunks(chunks: Iterable[pb.ArraysChunk]) -> list[WireArray]:
    """Undo `arrays_to_chunks` (the arrays are views of one reassembled buffer)."""
    headers: list[Any] | None = None
    total = 0
    parts: list[bytes] = []
    for chunk in chunks:
        if headers is None:
            headers, total = list(chunk.headers), chunk.total_bytes
        parts.append(chunk.data)
    if headers is None:
        raise ValueError("empty array stream")
    return _split_arrays(headers, _join_writable(parts, total))


def _split_arrays(headers: list[Any], data: bytearray) -> list[WireArray]:
    view = memoryview(data)
    out, pos = [], 0
    for h in headers:
        shape = tuple(int(d) for d in h.shape)
        size = int(np.prod(shape, dtype=np.int64)) * (8 if h.domain == "xor" else h.ring_bits // 8)
        arr = _from_bytes(view[pos : pos + size], shape, h.ring_bits, h.domain)
        out.append(WireArray(h.name, arr, h.ring_bits, h.domain, h.frac))
        pos += size
    if pos != len(data):
        raise ValueError(f"array stream has {len(data) - pos} trailing bytes")
    return out


def shares_to_wire(shares: Sequence[Share]) -> list[WireArray]:
    return [WireArray(f"out{i}", s.data, s.ring.bits, "arith", s.frac) for i, s in enumerate(shares)]


def wire_to_shares(arrays: Sequence[WireArray]) -> list[Share]:
    return [Share(a.data, Ring(a.ring_bits), a.frac) for a in arrays]


def secrets_to_wire(secrets: Secrets, components: Sequence[Component]) -> list[WireArray]:
    """Dealer material (named component arrays) in the order of `components`."""
    return [WireArray(c.name, secrets[c.name], c.ring_bits, c.domain) for c in components]


def wire_to_secrets(arrays: Sequence[WireArray]) -> Secrets:
    return {a.name: a.data for a in arrays}


# -- party-to-party messages ------------------------------------------------------------------
@dataclass(frozen=True)
class PeerMessage:
    """One tagged message of a session, as the receiving party sees it."""

    session: str
    src: str
    tag: str
    payload: bytes


PEER_SEND_METHOD = "/pooled.v1.PeerExchange/Send"
PEER_SEND_ONE_METHOD = "/pooled.v1.PeerExchange/SendOne"
_DATA_KEY = bytes([(5 << 3) | 2])  # PeerChunk.data: field 5, length-delimited


def _varint(n: int) -> bytes:
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
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def message_to_wire(session: str, src: str, tag: str, payload: bytes | memoryview) -> Iterator[bytes]:
    """A message as serialized `PeerChunk`s, built by hand to copy each payload byte once.

    The header fields are serialized by protobuf; the data field is appended in wire
    format (key, length, bytes), which protobuf parses as the same message.
    """
    view = memoryview(payload).cast("B")
    header = pb.PeerChunk(session=session, src=src, tag=tag, total_bytes=len(view)).SerializeToString()
    if not len(view):
        yield header
        return
    for pos in range(0, len(view), CHUNK_BYTES):
        piece = view[pos : pos + CHUNK_BYTES]
        yield b"".join((header if pos == 0 else b"", _DATA_KEY, _varint(len(piece)), piece))


def message_to_wire_one(session: str, src: str, tag: str, payload: bytes | memoryview) -> bytes | None:
    """The message as one serialized `PeerChunk` if it fits one chunk (for `SendOne`), else None."""
    if len(memoryview(payload).cast("B")) > CHUNK_BYTES:
        return None
    chunks = list(message_to_wire(session, src, tag, payload))
    return chunks[0] if len(chunks) == 1 else None


def message_from_wire(chunks: Iterable[bytes]) -> PeerMessage:
    """Undo `message_to_wire` (or parse any serialized `PeerChunk` stream) without protobuf's copy."""
    head: dict[int, Any] = {}
    parts: list[memoryview] = []
    for raw in chunks:
        buf = memoryview(raw)
        pos = 0
        while pos < len(buf):
            key, pos = _read_varint(buf, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = _read_varint(buf, pos)
                head.setdefault(field, value)
            elif wire == 2:
                size, pos = _read_varint(buf, pos)
                if pos + size > len(buf):
                    raise ValueError("truncated message chunk")
                if field == 5:
                    parts.append(buf[pos : pos + size])
                else:
                    head.setdefault(field, bytes(buf[pos : pos + size]).decode())
                pos += size
            else:
                raise ValueError(f"unexpected wire type {wire} in a message chunk")
    if not head:
        raise ValueError("empty message stream")
    total = int(head.get(4, 0))
    data = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
    if len(data) != total:
        raise ValueError(f"stream ended after {len(data)} of {total} bytes")
    return PeerMessage(head.get(1, ""), head.get(2, ""), head.get(3, ""), data)


def message_to_chunks(session: str, src: str, tag: str, payload: bytes | memoryview) -> Iterator[pb.PeerChunk]:
    """A message as a stream of `PeerChunk` objects (the header rides on the first)."""
    for raw in message_to_wire(session, src, tag, payload):
        yield pb.PeerChunk.FromString(raw)


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


@dataclass(frozen=True)
class AbortInfo:
    """Why a session was given up: who gave up, whose failure caused it, and the reason."""

    session: str
    src: str
    culprit: str
    reason: str


def abort_to_pb(info: AbortInfo) -> pb.AbortNotice:
    return pb.AbortNotice(session=info.session, src=info.src, culprit=info.culprit, reason=info.reason)


def abort_from_pb(msg: pb.AbortNotice) -> AbortInfo:
    return AbortInfo(msg.session, msg.src, msg.culprit or msg.src, msg.reason)


def ping_request(session: str) -> pb.PingRequest:
    return pb.PingRequest(session=session)


def ping_session(msg: pb.PingRequest) -> str:
    return msg.session


def ping_reply(abort: AbortInfo | None) -> pb.PingReply:
    if abort is None:
        return pb.PingReply()
    return pb.PingReply(aborted=True, culprit=abort.culprit, reason=abort.reason)


def ping_abort(reply: pb.PingReply, session: str, src: str) -> AbortInfo | None:
    if not reply.aborted:
        return None
    return AbortInfo(session, src, reply.culprit or src, reply.reason)


def empty() -> pb.Empty:
    return pb.Empty()


# -- dealer --------------------------------------------------------------------------------------
def session_spec(session: str, roster: Sequence[str]) -> pb.SessionSpec:
    return pb.SessionSpec(session=session, roster=list(roster))


def session_spec_from_pb(msg: pb.SessionSpec) -> tuple[str, list[str]]:
    return msg.session, list(msg.roster)


def session_ref(session: str) -> pb.SessionRef:
    return pb.SessionRef(session=session)


def session_of(msg: pb.SessionRef) -> str:
    return msg.session


@dataclass(frozen=True)
class SeedGrant:
    """A party's seed for one session and its place in the roster."""

    seed: bytes
    rank: int
    n: int


def seed_to_pb(grant: SeedGrant) -> pb.SeedReply:
    return pb.SeedReply(seed=grant.seed, rank=grant.rank, n=grant.n)


def seed_from_pb(msg: pb.SeedReply) -> SeedGrant:
    return SeedGrant(bytes(msg.seed), int(msg.rank), int(msg.n))


def correction_request(session: str, counter: int, request_json: str) -> pb.CorrectionRequest:
    return pb.CorrectionRequest(session=session, counter=counter, request_json=request_json)


def correction_request_from_pb(msg: pb.CorrectionRequest) -> tuple[str, int, str]:
    return msg.session, int(msg.counter), msg.request_json


def announcement(address: str) -> pb.Announcement:
    return pb.Announcement(address=address)


def announced_address(msg: pb.Announcement) -> str:
    return msg.address


def directory_to_pb(addresses: Mapping[str, str]) -> pb.Directory:
    return pb.Directory(addresses=dict(addresses))


def directory_from_pb(msg: pb.Directory) -> dict[str, str]:
    return dict(msg.addresses)


def dealer_stats_to_pb(stats: Mapping[str, int]) -> pb.DealerStats:
    return pb.DealerStats(**stats)


def dealer_stats_from_pb(msg: pb.DealerStats) -> dict[str, int]:
    return {f.name: int(getattr(msg, f.name)) for f in msg.DESCRIPTOR.fields}


# -- node control ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobCall:
    """An analyst's request to run a named job in a new session over an ordered roster."""

    session: str
    job: str
    params: dict[str, Any]
    roster: list[str]
    timeout_s: float = 0.0


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed at one node; `party` names the failed party for peer failures."""

    kind: str
    party: str
    message: str


@dataclass(frozen=True)
class JobOutcome:
    """One party's answer to a job: its shares of the outputs and what it spent."""

    rank: int
    shares: list[Share]
    stats: CommStats
    prepare_seconds: float
    compute_seconds: float
    public: dict[str, Any] = field(default_factory=dict)
    """Facts every party computed alike and may tell the analyst (a query's schema and domains)."""


def job_call_to_pb(call: JobCall) -> pb.JobRequest:
    return pb.JobRequest(
        session=call.session,
        job=call.job,
        params_json=json.dumps(call.params, sort_keys=True),
        roster=list(call.roster),
        timeout_s=call.timeout_s,
    )


def job_call_from_pb(msg: pb.JobRequest) -> JobCall:
    params = json.loads(msg.params_json) if msg.params_json else {}
    if not isinstance(params, dict):
        raise ValueError("job parameters must be a JSON object")
    return JobCall(msg.session, msg.job, params, list(msg.roster), float(msg.timeout_s))


_STAT_FIELDS = [f.name for f in fields(CommStats)]


def outcome_to_chunks(outcome: JobOutcome) -> Iterator[pb.JobChunk]:
    stats = pb.JobStats(
        rank=outcome.rank,
        prepare_seconds=outcome.prepare_seconds,
        compute_seconds=outcome.compute_seconds,
        public_json=json.dumps(outcome.public, sort_keys=True) if outcome.public else "",
        **{name: getattr(outcome.stats, name) for name in _STAT_FIELDS},
    )
    first = True
    for piece in arrays_to_chunks(shares_to_wire(outcome.shares)):
        yield pb.JobChunk(stats=stats, shares=piece) if first else pb.JobChunk(shares=piece)
        first = False


def failure_to_chunks(failure: JobFailure) -> Iterator[pb.JobChunk]:
    yield pb.JobChunk(error=pb.JobError(kind=failure.kind, party=failure.party, message=failure.message))


def outcome_from_chunks(chunks: Iterable[pb.JobChunk]) -> JobOutcome | JobFailure:
    head: Any = None
    pieces: list[pb.ArraysChunk] = []
    for chunk in chunks:
        if head is None:
            head = chunk
            if chunk.HasField("error"):
                return JobFailure(chunk.error.kind, chunk.error.party, chunk.error.message)
        pieces.append(chunk.shares)
    if head is None:
        raise ValueError("empty job answer")
    s = head.stats
    stats = CommStats(**{name: int(getattr(s, name)) for name in _STAT_FIELDS})
    shares = wire_to_shares(arrays_from_chunks(pieces))
    public = json.loads(s.public_json) if s.public_json else {}
    return JobOutcome(int(s.rank), shares, stats, float(s.prepare_seconds), float(s.compute_seconds), public)


@dataclass(frozen=True)
class NodeInfo:
    identity: str
    address: str
    jobs: list[str]
    running_sessions: int


def node_info_to_pb(info: NodeInfo) -> pb.NodeStatus:
    return pb.NodeStatus(
        identity=info.identity, address=info.address, jobs=info.jobs, running_sessions=info.running_sessions
    )


def node_info_from_pb(msg: pb.NodeStatus) -> NodeInfo:
    return NodeInfo(msg.identity, msg.address, list(msg.jobs), int(msg.running_sessions))
