"""Arrays, shares and dealer material round-trip through `ArraysChunk` streams of at most 1 MiB."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.material import Component
from mpc.ring import RING64, RING128
from mpc.share import Share
from parties.array_stream import (
    CHUNK_BYTES,
    WireArray,
    arrays_from_chunks,
    arrays_to_chunks,
    secrets_to_wire,
    shares_to_wire,
    wire_to_secrets,
    wire_to_shares,
)


def _random_u64(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def test_arrays_round_trip_in_chunks_of_at_most_one_mib() -> None:
    big = _random_u64(300_000)  # 2.4 MB: three chunks
    arrays = [
        WireArray("big", big, 64, "arith", 20),
        WireArray("m", _random_u64(6).reshape(2, 3), 64, "xor"),
        WireArray("p", RING128.reduce(np.array([-1, 2**100, 5], dtype=object)), 128, "arith", 40),
        WireArray("empty", np.zeros((0,), np.uint64)),
    ]
    chunks = list(arrays_to_chunks(arrays))
    assert len(chunks) == 3
    assert all(len(c.SerializeToString()) <= CHUNK_BYTES + 4096 for c in chunks)
    back = arrays_from_chunks(chunks)
    assert [a.name for a in back] == ["big", "m", "p", "empty"]
    assert np.array_equal(back[0].data, big) and back[0].frac == 20
    assert back[1].data.shape == (2, 3) and back[1].domain == "xor"
    assert list(back[2].data) == [2**128 - 1, 2**100, 5] and back[2].ring_bits == 128
    assert back[3].data.shape == (0,)
    back[0].data[0] = 7  # decoded arrays are writable


def test_truncated_array_stream_is_refused() -> None:
    chunks = list(arrays_to_chunks([WireArray("x", _random_u64(200_000))]))
    with pytest.raises(ValueError, match="stream ended"):
        arrays_from_chunks(chunks[:1])
    with pytest.raises(ValueError, match="empty array stream"):
        arrays_from_chunks([])


def test_shares_and_secrets_round_trip() -> None:
    shares = [Share(_random_u64(5), RING64, 20), Share(RING128.reduce(np.array([3, -4], dtype=object)), RING128, 40)]
    back = wire_to_shares(arrays_from_chunks(arrays_to_chunks(shares_to_wire(shares))))
    assert [(s.ring, s.frac) for s in back] == [(RING64, 20), (RING128, 40)]
    assert np.array_equal(back[0].data, shares[0].data) and list(back[1].data) == list(shares[1].data)
    comps = [Component("c", "arith", (4,)), Component("w", "xor", (2,))]
    secrets = {"c": _random_u64(4), "w": _random_u64(2, 1)}
    got = wire_to_secrets(arrays_from_chunks(arrays_to_chunks(secrets_to_wire(secrets, comps))))
    assert set(got) == {"c", "w"} and all(np.array_equal(got[k], secrets[k]) for k in secrets)
