"""The in-process transport: tags keep steps apart, early messages wait, failures spread."""

from __future__ import annotations

import time

import pytest

from mpc.context import PartyContext
from mpc.errors import PeerFailure
from mpc.inprocess import InProcessNetwork, make_contexts, run_parties


def test_early_arrivals_are_buffered_by_tag() -> None:
    net = InProcessNetwork(2)
    a, b = net.transport(0), net.transport(1)
    a.send(1, "s/2/x", b"second")
    a.send(1, "s/1/x", b"first")
    assert b.recv(0, "s/1/x") == b"first"
    assert b.recv(0, "s/2/x") == b"second"


def test_a_failing_party_makes_the_others_fail_fast() -> None:
    def program(ctx: PartyContext) -> bytes:
        if ctx.rank == 1:
            raise RuntimeError("disk on fire")
        return ctx.all_to_all(b"x", "step")[1]

    start = time.monotonic()
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_parties(3, program)
    assert time.monotonic() - start < 30  # the others are told at once, well before their 60 s receive timeout


def test_a_silent_party_times_out_with_its_name() -> None:
    ctxs = make_contexts(2, timeout=0.3)
    with pytest.raises(PeerFailure, match="P1"):
        ctxs[0].transport.recv(1, "never")


def test_counters_count_one_round_per_exchange() -> None:
    def program(ctx: PartyContext) -> tuple[int, int, int]:
        ctx.all_to_all(b"abcd", "one")
        ctx.all_to_all(b"ef", "two")
        return ctx.stats.rounds, ctx.stats.bytes_sent, ctx.stats.messages_sent

    for rounds, sent, messages in run_parties(3, program):
        assert rounds == 2
        assert sent == 2 * (4 + 2)
        assert messages == 4


def test_context_rejects_bad_ranks() -> None:
    ctx = make_contexts(2)[0]
    with pytest.raises(ValueError):
        PartyContext(2, 2, ctx.transport, ctx.material)
    with pytest.raises(ValueError):
        PartyContext(0, 1, ctx.transport, ctx.material)
