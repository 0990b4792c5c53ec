"""The correction stream on the wire: the last party's asks and the dealer's batched answers.

The last party asks for corrections by request number (`CorrectionAsks`, many asks per
message: a whole plan goes in one or a few messages). The dealer answers with
`CorrectionFrames`: each correction cut into `ArraysChunk` pieces (`parties.array_stream`),
tagged with its request number, and the pieces of consecutive corrections packed into one
frame of about `CHUNK_BYTES`, so many small corrections cost one message instead of one
call each. `Assembler` puts the pieces back together on the party's side.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from parties.array_stream import CHUNK_BYTES, WireArray, arrays_from_chunks, arrays_to_chunks
from parties.proto import pooled_pb2 as pb

Ask = tuple[int, str]
"""(request number, `MaterialRequest.to_json()`)."""

ASKS_BYTES = 1 << 20
"""About the most request text one `CorrectionAsks` message carries."""


def asks_to_pb(session: str, asks: Sequence[Ask]) -> Iterator[pb.CorrectionAsks]:
    """`asks` in as few messages as fit (at least one, so an empty plan still names the session)."""
    batch: list[pb.CorrectionAsk] = []
    size = 0
    for counter, request_json in asks:
        batch.append(pb.CorrectionAsk(counter=counter, request_json=request_json))
        size += len(request_json) + 16
        if size >= ASKS_BYTES:
            yield pb.CorrectionAsks(session=session, asks=batch)
            batch, size = [], 0
    if batch or not asks:
        yield pb.CorrectionAsks(session=session, asks=batch)


def asks_from_pb(msg: pb.CorrectionAsks) -> tuple[str, list[Ask]]:
    return msg.session, [(int(a.counter), a.request_json) for a in msg.asks]


class Piece(NamedTuple):
    """A `CorrectionPiece` not yet in a frame: building it only inside its frame copies its data once."""

    counter: int
    chunk: pb.ArraysChunk
    last: bool
    size: int
    """Bytes of the chunk's data (reading `chunk.data` would copy them)."""


def pieces(counter: int, arrays: Sequence[WireArray]) -> Iterator[Piece]:
    """One correction as pieces of at most CHUNK_BYTES of data each, the last one marked."""
    chunks = list(arrays_to_chunks(arrays))
    total = sum(a.nbytes for a in arrays)  # arrays_to_chunks cuts their bytes every CHUNK_BYTES
    for i, chunk in enumerate(chunks):
        yield Piece(counter, chunk, i == len(chunks) - 1, max(0, min(CHUNK_BYTES, total - i * CHUNK_BYTES)))


def frames(pieces_: Iterable[Piece]) -> Iterator[pb.CorrectionFrames]:
    """Pack pieces into frames of at most about CHUNK_BYTES of data (a piece alone may fill one).

    Each piece is added to its frame in place (`add`, `CopyFrom`): passing built messages to the
    frame's constructor would copy every piece's data twice more (a merge serializes and parses).
    """
    frame = pb.CorrectionFrames()
    size = 0
    for piece in pieces_:
        grows = piece.size + 64
        if size and size + grows > CHUNK_BYTES:
            yield frame
            frame, size = pb.CorrectionFrames(), 0
        frame.pieces.add(counter=piece.counter, last=piece.last).chunk.CopyFrom(piece.chunk)
        size += grows
    if size:
        yield frame


class Assembler:
    """Reassembles corrections from the pieces of successive frames."""

    def __init__(self) -> None:
        self._open: dict[int, list[pb.ArraysChunk]] = {}

    def add(self, frame: pb.CorrectionFrames) -> list[tuple[int, list[WireArray]]]:
        """The corrections `frame` completes, as (request number, arrays)."""
        done = []
        for piece in frame.pieces:
            counter = int(piece.counter)
            self._open.setdefault(counter, []).append(piece.chunk)
            if piece.last:
                done.append((counter, arrays_from_chunks(self._open.pop(counter))))
        return done
