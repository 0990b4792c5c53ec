"""Arrays on the wire: named arrays streamed as `ArraysChunk`s of at most 1 MiB.

Dealer corrections and a job's output shares travel this way. An array travels as raw
little-endian bytes plus shape, ring size, domain and scale, with no per-element work;
the bytes of all arrays of a set are concatenated and cut into chunks of at most
`CHUNK_BYTES` so gRPC's 4 MiB message limit is never reached, and reassembled with one
copy into a writable buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mpc.material import Component, Secrets
from mpc.ring import Ring, ring_of
from mpc.share import Share
from parties.proto import pooled_pb2 as pb

CHUNK_BYTES = 1 << 20
"""Largest payload of one streamed chunk (arrays here, peer messages in `parties.peer_wire`)."""


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
        return ring_of(self.ring_bits).to_bytes(self.data)

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
    """A party's output shares, named out0, out1, ... in order."""
    return [WireArray(f"out{i}", s.data, s.ring.bits, "arith", s.frac) for i, s in enumerate(shares)]


def wire_to_shares(arrays: Sequence[WireArray]) -> list[Share]:
    return [Share(a.data, Ring(a.ring_bits), a.frac) for a in arrays]


def secrets_to_wire(secrets: Secrets, components: Sequence[Component]) -> list[WireArray]:
    """Dealer material (named component arrays) in the order of `components`."""
    return [WireArray(c.name, secrets[c.name], c.ring_bits, c.domain) for c in components]


def wire_to_secrets(arrays: Sequence[WireArray]) -> Secrets:
    return {a.name: a.data for a in arrays}
