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

from parties import messages
from parties.certs import CertFiles, Identity
from parties.client import ConsortiumError
from parties.local import LocalConsortium
from parties.proto import pooled_pb2_grpc as rpc
from parties.tls import TlsMaterial

pytestmark = pytest.mark.network
NAMES = ["a", "b", "c"]
LONG_JOB = ("repeat_mul", {"size": 50_000, "repeat": 400})  # tens of seconds if nothing fails


def _corrections(stub: rpc.DealerStub) -> int:
    """How many corrections the dealer has handed out so far."""
    return messages.dealer_stats_from_pb(stub.Stats(messages.empty(), timeout=5))["corrections"]


def test_a_dead_dealer_is_named() -> None:
    outcome: dict[str, Any] = {}
    with LocalConsortium(NAMES, bench_jobs=True) as lc, lc.client() as client:

        def run() -> None:
            try:
                client.run(*LONG_JOB)
            except ConsortiumError as err:
                outcome["error"] = err
            outcome["at"] = time.monotonic()

        client.run("product", {"size": 10})  # every node has looked up its peers at the dealer
        tls = TlsMaterial.load(CertFiles.in_dir(lc.certs_dir, Identity.party("a")))
        with tls.channel(lc.dealer_address, Identity.dealer()) as channel:
            stub = rpc.DealerStub(channel)
            before = _corrections(stub)
            thread = threading.Thread(target=run)
            thread.start()
            deadline = time.monotonic() + 60
            while _corrections(stub) == before:  # the long job is past its set-up, drawing on the dealer
                assert time.monotonic() < deadline, "the job never reached its multiplications"
                time.sleep(0.02)
        os.kill(lc.pid("dealer"), signal.SIGKILL)
        hit = time.monotonic()
        thread.join(60)
    assert "error" in outcome, "the job should have failed"
    error: ConsortiumError = outcome["error"]
    assert error.party == "dealer", error
    assert outcome["at"] - hit < 10
