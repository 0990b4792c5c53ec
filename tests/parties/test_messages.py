"""Protobuf messages <-> records: job calls, outcomes, failures, aborts and pings round-trip."""

from __future__ import annotations

import numpy as np

from mpc.ring import RING64
from mpc.share import Share
from mpc.stats import CommStats
from parties import messages
from parties.records import AbortInfo, JobCall, JobFailure, JobOutcome


def test_job_calls_outcomes_and_failures_round_trip() -> None:
    call = JobCall("s1", "product", {"size": 10, "seed": 3}, ["a", "b", "c"], 12.5)
    assert messages.job_call_from_pb(messages.job_call_to_pb(call)) == call
    stats = CommStats(10, 20, 1, 2, rounds=3, dealer_requests=4, dealer_bytes=5)
    data = np.random.default_rng(0).integers(0, 2**63, 400_000, dtype=np.uint64)
    outcome = JobOutcome(2, [Share(data, RING64, 20)], stats, 0.5, 1.25, {"query": "SELECT COUNT(*)"})
    back = messages.outcome_from_chunks(messages.outcome_to_chunks(outcome))
    assert isinstance(back, JobOutcome)
    assert (back.rank, back.stats, back.prepare_seconds, back.compute_seconds) == (2, stats, 0.5, 1.25)
    assert back.public == {"query": "SELECT COUNT(*)"}
    assert np.array_equal(back.shares[0].data, outcome.shares[0].data)
    failure = JobFailure("peer_failure", "b", "party b: stopped answering")
    assert messages.outcome_from_chunks(messages.failure_to_chunks(failure)) == failure


def test_aborts_and_pings_round_trip() -> None:
    info = AbortInfo("s", "a", "b", "party b vanished")
    assert messages.abort_from_pb(messages.abort_to_pb(info)) == info
    assert messages.ping_abort(messages.ping_reply(None), "s", "a") is None
    assert messages.ping_abort(messages.ping_reply(info), "s", "a") == AbortInfo("s", "a", "b", "party b vanished")
