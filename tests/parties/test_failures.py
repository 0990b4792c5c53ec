"""A party that dies or freezes mid-computation makes the others fail cleanly, naming it.

Each test starts its own consortium (the failure ruins it) and stops every process on
exit; a frozen (SIGSTOP) process is continued first so it can be stopped.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from parties.client import ConsortiumClient, ConsortiumError
from parties.local import LocalConsortium

pytestmark = pytest.mark.network
NAMES = ["a", "b", "c"]
LONG_JOB = ("repeat_mul", {"size": 50_000, "repeat": 400})  # tens of seconds if nothing fails


@pytest.fixture()
def consortium() -> Iterator[LocalConsortium]:
    with LocalConsortium(NAMES, bench_jobs=True) as lc:
        yield lc


def _fail_mid_computation(lc: LocalConsortium, victim: str, sig: signal.Signals) -> tuple[ConsortiumError, float]:
    """Start the long job, hit `victim` with `sig` once every node runs it; (error, seconds to failure)."""
    outcome: dict[str, Any] = {}
    with lc.client() as client:

        def run() -> None:
            try:
                client.run(*LONG_JOB)
            except ConsortiumError as err:
                outcome["error"] = err
            outcome["at"] = time.monotonic()

        thread = threading.Thread(target=run)
        thread.start()
        _wait_until_running(client)
        time.sleep(0.3)
        os.kill(lc.pid(victim), sig)
        hit = time.monotonic()
        try:
            thread.join(30)
        finally:
            if sig == signal.SIGSTOP:
                os.kill(lc.pid(victim), signal.SIGCONT)
    assert "error" in outcome, "the job should have failed"
    return outcome["error"], outcome["at"] - hit


def _wait_until_running(client: ConsortiumClient) -> None:
    deadline = time.monotonic() + 20
    while not all(client.status(p).running_sessions for p in NAMES):
        assert time.monotonic() < deadline, "the job never started everywhere"
        time.sleep(0.05)


def test_a_killed_party_is_named_within_seconds(consortium: LocalConsortium) -> None:
    error, seconds = _fail_mid_computation(consortium, "b", signal.SIGKILL)
    assert error.party == "b"
    assert seconds < 10
    for survivor in ("a", "c"):
        assert "party b" in error.failures[survivor]


def test_a_frozen_party_is_detected_by_liveness_checks(consortium: LocalConsortium) -> None:
    error, seconds = _fail_mid_computation(consortium, "c", signal.SIGSTOP)
    assert error.party == "c"
    assert seconds < 10
    for survivor in ("a", "b"):
        assert "party c: stopped answering" in error.failures[survivor]


def test_a_dead_dealer_is_named(consortium: LocalConsortium) -> None:
    error, seconds = _fail_mid_computation(consortium, "dealer", signal.SIGKILL)
    assert error.party == "dealer"
    assert seconds < 10
