"""Protobuf <-> domain conversions: arrays, shares, messages and job answers round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.material import Component
from mpc.ring import RING64, RING128
from mpc.share import Share
from mpc.stats import CommStats
from parties import codec
from parties.proto import pooled_pb2 as pb


def _random_u64(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def test_arrays_round_trip_in_chunks_of_at_most_one_mib() -> None:
    big = _random_u64(300_000)  # 2.4 MB: three chunks
    arrays = [
        codec.WireArray("big", big, 64, "arith", 20),
        codec.WireArray("m", _random_u64(6).reshape(2, 3), 64, "xor"),
        codec.WireArray("p", RING128.reduce(np.array([-1, 2**100, 5], dtype=object)), 128, "arith", 40),
        codec.WireArray("empty", np.zeros((0,), np.uint64)),
    ]
    chunks = list(codec.arrays_to_chunks(arrays))
    assert len(chunks) == 3
    assert all(len(c.SerializeToString()) <= codec.CHUNK_BYTES + 4096 for c in chunks)
    back = codec.arrays_from_chunks(chunks)
    assert [a.name for a in back] == ["big", "m", "p", "empty"]
    assert np.array_equal(back[0].data, big) and back[0].frac == 20
    assert back[1].data.shape == (2, 3) and back[1].domain == "xor"
    assert list(back[2].data) == [2**128 - 1, 2**100, 5] and back[2].ring_bits == 128
    assert back[3].data.shape == (0,)
    back[0].data[0] = 7  # decoded arrays are writable


def test_truncated_array_stream_is_refused() -> None:
    chunks = list(codec.arrays_to_chunks([codec.WireArray("x", _random_u64(200_000))]))
    with pytest.raises(ValueError, match="stream ended"):
        codec.arrays_from_chunks(chunks[:1])


def test_shares_and_secrets_round_trip() -> None:
    shares = [Share(_random_u64(5), RING64, 20), Share(RING128.reduce(np.array([3, -4], dtype=object)), RING128, 40)]
    back = codec.wire_to_shares(codec.arrays_from_chunks(codec.arrays_to_chunks(codec.shares_to_wire(shares))))
    assert [(s.ring, s.frac) for s in back] == [(RING64, 20), (RING128, 40)]
    assert np.array_equal(back[0].data, shares[0].data) and list(back[1].data) == list(shares[1].data)
    comps = [Component("c", "arith", (4,)), Component("w", "xor", (2,))]
    secrets = {"c": _random_u64(4), "w": _random_u64(2, 1)}
    got = codec.wire_to_secrets(codec.arrays_from_chunks(codec.arrays_to_chunks(codec.secrets_to_wire(secrets, comps))))
    assert set(got) == {"c", "w"} and all(np.array_equal(got[k], secrets[k]) for k in secrets)


@pytest.mark.parametrize("size", [0, 1, 1 << 20, (1 << 20) + 1, 3_000_000])
def test_peer_messages_round_trip_and_are_valid_protobuf(size: int) -> None:
    payload = np.random.default_rng(size).bytes(size)
    wire = list(codec.message_to_wire("sess", "a", "sess/3/beaver", payload))
    assert len(wire) == max(1, -(-size // codec.CHUNK_BYTES))
    # protobuf reads the hand-built chunks as the same message...
    parsed = [pb.PeerChunk.FromString(w) for w in wire]
    assert parsed[0].session == "sess" and parsed[0].src == "a" and parsed[0].tag == "sess/3/beaver"
    assert parsed[0].total_bytes == size and b"".join(p.data for p in parsed) == payload
    # ...and the fast parser reads protobuf's own encoding too.
    msg = codec.message_from_wire(p.SerializeToString() for p in parsed)
    assert (msg.session, msg.src, msg.tag, msg.payload) == ("sess", "a", "sess/3/beaver", payload)
    assert codec.message_from_wire(wire).payload == payload


def test_a_short_peer_message_is_refused() -> None:
    wire = list(codec.message_to_wire("s", "a", "t", bytes(3 << 20)))
    with pytest.raises(ValueError, match="stream ended"):
        codec.message_from_wire(wire[:2])


def test_job_calls_outcomes_and_failures_round_trip() -> None:
    call = codec.JobCall("s1", "product", {"size": 10, "seed": 3}, ["a", "b", "c"], 12.5)
    assert codec.job_call_from_pb(codec.job_call_to_pb(call)) == call
    stats = CommStats(10, 20, 1, 2, rounds=3, dealer_requests=4, dealer_bytes=5)
    outcome = codec.JobOutcome(2, [Share(_random_u64(400_000), RING64, 20)], stats, 0.5, 1.25)
    back = codec.outcome_from_chunks(codec.outcome_to_chunks(outcome))
    assert isinstance(back, codec.JobOutcome)
    assert (back.rank, back.stats, back.prepare_seconds, back.compute_seconds) == (2, stats, 0.5, 1.25)
    assert np.array_equal(back.shares[0].data, outcome.shares[0].data)
    failure = codec.JobFailure("peer_failure", "b", "party b: stopped answering")
    assert codec.outcome_from_chunks(codec.failure_to_chunks(failure)) == failure


def test_aborts_and_pings_round_trip() -> None:
    info = codec.AbortInfo("s", "a", "b", "party b vanished")
    assert codec.abort_from_pb(codec.abort_to_pb(info)) == info
    assert codec.ping_abort(codec.ping_reply(None), "s", "a") is None
    assert codec.ping_abort(codec.ping_reply(info), "s", "a") == codec.AbortInfo("s", "a", "b", "party b vanished")
