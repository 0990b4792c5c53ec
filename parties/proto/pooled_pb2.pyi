from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ArrayHeader(_message.Message):
    __slots__ = ("name", "shape", "ring_bits", "domain", "frac")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    RING_BITS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    FRAC_FIELD_NUMBER: _ClassVar[int]
    name: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    ring_bits: int
    domain: str
    frac: int
    def __init__(self, name: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., ring_bits: _Optional[int] = ..., domain: _Optional[str] = ..., frac: _Optional[int] = ...) -> None: ...

class ArraysChunk(_message.Message):
    __slots__ = ("headers", "total_bytes", "data")
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.RepeatedCompositeFieldContainer[ArrayHeader]
    total_bytes: int
    data: bytes
    def __init__(self, headers: _Optional[_Iterable[_Union[ArrayHeader, _Mapping]]] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class PeerChunk(_message.Message):
    __slots__ = ("session", "tag", "total_bytes", "data", "offset")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    session: str
    tag: str
    total_bytes: int
    data: bytes
    offset: int
    def __init__(self, session: _Optional[str] = ..., tag: _Optional[str] = ..., total_bytes: _Optional[int] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class PeerFrames(_message.Message):
    __slots__ = ("chunks",)
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[PeerChunk]
    def __init__(self, chunks: _Optional[_Iterable[_Union[PeerChunk, _Mapping]]] = ...) -> None: ...

class AbortNotice(_message.Message):
    __slots__ = ("session", "src", "culprit", "reason")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    CULPRIT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session: str
    src: str
    culprit: str
    reason: str
    def __init__(self, session: _Optional[str] = ..., src: _Optional[str] = ..., culprit: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("aborted", "culprit", "reason")
    ABORTED_FIELD_NUMBER: _ClassVar[int]
    CULPRIT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    aborted: bool
    culprit: str
    reason: str
    def __init__(self, aborted: _Optional[bool] = ..., culprit: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DataPort(_message.Message):
    __slots__ = ("port",)
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: int
    def __init__(self, port: _Optional[int] = ...) -> None: ...

class SessionSpec(_message.Message):
    __slots__ = ("session", "roster")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ROSTER_FIELD_NUMBER: _ClassVar[int]
    session: str
    roster: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session: _Optional[str] = ..., roster: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionRef(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class SeedReply(_message.Message):
    __slots__ = ("seed", "rank", "n")
    SEED_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    seed: bytes
    rank: int
    n: int
    def __init__(self, seed: _Optional[bytes] = ..., rank: _Optional[int] = ..., n: _Optional[int] = ...) -> None: ...

class CorrectionRequest(_message.Message):
    __slots__ = ("session", "counter", "request_json")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    session: str
    counter: int
    request_json: str
    def __init__(self, session: _Optional[str] = ..., counter: _Optional[int] = ..., request_json: _Optional[str] = ...) -> None: ...

class CorrectionAsks(_message.Message):
    __slots__ = ("session", "asks")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    session: str
    asks: _containers.RepeatedCompositeFieldContainer[CorrectionAsk]
    def __init__(self, session: _Optional[str] = ..., asks: _Optional[_Iterable[_Union[CorrectionAsk, _Mapping]]] = ...) -> None: ...

class CorrectionAsk(_message.Message):
    __slots__ = ("counter", "request_json")
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    counter: int
    request_json: str
    def __init__(self, counter: _Optional[int] = ..., request_json: _Optional[str] = ...) -> None: ...

class CorrectionPiece(_message.Message):
    __slots__ = ("counter", "chunk", "last")
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    counter: int
    chunk: ArraysChunk
    last: bool
    def __init__(self, counter: _Optional[int] = ..., chunk: _Optional[_Union[ArraysChunk, _Mapping]] = ..., last: _Optional[bool] = ...) -> None: ...

class CorrectionFrames(_message.Message):
    __slots__ = ("pieces",)
    PIECES_FIELD_NUMBER: _ClassVar[int]
    pieces: _containers.RepeatedCompositeFieldContainer[CorrectionPiece]
    def __init__(self, pieces: _Optional[_Iterable[_Union[CorrectionPiece, _Mapping]]] = ...) -> None: ...

class Announcement(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class Directory(_message.Message):
    __slots__ = ("addresses",)
    class AddressesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    addresses: _containers.ScalarMap[str, str]
    def __init__(self, addresses: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DealerStats(_message.Message):
    __slots__ = ("open_sessions", "sessions_opened", "seeds_handed_out", "corrections", "correction_bytes")
    OPEN_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_OPENED_FIELD_NUMBER: _ClassVar[int]
    SEEDS_HANDED_OUT_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_BYTES_FIELD_NUMBER: _ClassVar[int]
    open_sessions: int
    sessions_opened: int
    seeds_handed_out: int
    corrections: int
    correction_bytes: int
    def __init__(self, open_sessions: _Optional[int] = ..., sessions_opened: _Optional[int] = ..., seeds_handed_out: _Optional[int] = ..., corrections: _Optional[int] = ..., correction_bytes: _Optional[int] = ...) -> None: ...

class JobRequest(_message.Message):
    __slots__ = ("session", "job", "params_json", "roster", "timeout_s")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    ROSTER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    session: str
    job: str
    params_json: str
    roster: _containers.RepeatedScalarFieldContainer[str]
    timeout_s: float
    def __init__(self, session: _Optional[str] = ..., job: _Optional[str] = ..., params_json: _Optional[str] = ..., roster: _Optional[_Iterable[str]] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("kind", "party", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    party: str
    message: str
    def __init__(self, kind: _Optional[str] = ..., party: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class JobStats(_message.Message):
    __slots__ = ("bytes_sent", "bytes_received", "messages_sent", "messages_received", "rounds", "dealer_requests", "dealer_bytes", "prepare_seconds", "compute_seconds", "rank", "public_json")
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    DEALER_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DEALER_BYTES_FIELD_NUMBER: _ClassVar[int]
    PREPARE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_JSON_FIELD_NUMBER: _ClassVar[int]
    bytes_sent: int
    bytes_received: int
    messages_sent: int
    messages_received: int
    rounds: int
    dealer_requests: int
    dealer_bytes: int
    prepare_seconds: float
    compute_seconds: float
    rank: int
    public_json: str
    def __init__(self, bytes_sent: _Optional[int] = ..., bytes_received: _Optional[int] = ..., messages_sent: _Optional[int] = ..., messages_received: _Optional[int] = ..., rounds: _Optional[int] = ..., dealer_requests: _Optional[int] = ..., dealer_bytes: _Optional[int] = ..., prepare_seconds: _Optional[float] = ..., compute_seconds: _Optional[float] = ..., rank: _Optional[int] = ..., public_json: _Optional[str] = ...) -> None: ...

class JobChunk(_message.Message):
    __slots__ = ("error", "stats", "shares")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    error: JobError
    stats: JobStats
    shares: ArraysChunk
    def __init__(self, error: _Optional[_Union[JobError, _Mapping]] = ..., stats: _Optional[_Union[JobStats, _Mapping]] = ..., shares: _Optional[_Union[ArraysChunk, _Mapping]] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("identity", "address", "jobs", "running_sessions", "data_port")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_PORT_FIELD_NUMBER: _ClassVar[int]
    identity: str
    address: str
    jobs: _containers.RepeatedScalarFieldContainer[str]
    running_sessions: int
    data_port: int
    def __init__(self, identity: _Optional[str] = ..., address: _Optional[str] = ..., jobs: _Optional[_Iterable[str]] = ..., running_sessions: _Optional[int] = ..., data_port: _Optional[int] = ...) -> None: ...
