"""A dealer that dies mid-computation makes every node fail cleanly, naming it.

The test starts its own consortium (the failure ruins it) and stops every process on exit.
A node killed or frozen mid-query is tested on a deployed consortium, which then recovers
(tests/parties/test_deployment.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from parties.client import ConsortiumError
from parties.local import LocalConsortium

pytestmark = pytest.mark.network
NAMES = ["a", "b", "c"]
LONG_JOB = ("repeat_mul", {"size": 50_000, "repeat": 400})  # tens of seconds if nothing fails


def test_a_dead_dealer_is_named() -> None:
    outcome: dict[str, Any] = {}
    with LocalConsortium(NAMES, bench_jobs=True) as lc, lc.client() as client:

        def run() -> None:
            try:
                client.run(*LONG_JOB)
            except ConsortiumError as err:
                outcome["error"] = err
            outcome["at"] = time.monotonic()

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        while not all(client.status(p).running_sessions for p in NAMES):
            assert time.monotonic() < deadline, "the job never started everywhere"
            time.sleep(0.05)
        os.kill(lc.pid("dealer"), signal.SIGKILL)
        hit = time.monotonic()
        thread.join(60)
    assert "error" in outcome, "the job should have failed"
    error: ConsortiumError = outcome["error"]
    assert error.party == "dealer", error
    assert outcome["at"] - hit < 10
