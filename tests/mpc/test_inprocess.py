"""The in-process transport: tags keep steps apart, early messages wait, failures spread."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.errors import PeerFailure
from mpc.inprocess import InProcessNetwork, SharedPrg, make_contexts, run_parties
from mpc.prg import Prg
from mpc.ring import Ring


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


def test_a_shared_prg_draws_what_a_prg_draws_and_the_repeat_is_a_copy() -> None:
    seed = bytes(range(32))
    plain, shared = Prg(seed), SharedPrg(seed)
    for ring in (Ring(64), Ring(128)):
        want = plain.ring_elements(ring, "s|3|triple|a", (4, 5))
        first = shared.ring_elements(ring, "s|3|triple|a", (4, 5))
        first[0, 0] = 0  # the first drawer writes to its array: the kept draw is a copy
        second = shared.ring_elements(ring, "s|3|triple|a", (4, 5))
        assert np.array_equal(second, want) and first[0, 0] == 0 and want[0, 0] != 0
        assert np.array_equal(shared.ring_elements(ring, "s|3|triple|a", (4, 5)), want)  # a third draw: drawn again
    assert np.array_equal(shared.words("s|4|and|a", (7,)), plain.words("s|4|and|a", (7,)))
    assert np.array_equal(shared.words("s|4|and|a", (7,)), plain.words("s|4|and|a", (7,)))


def test_a_shared_prg_drops_draws_never_repeated_oldest_first() -> None:
    class Small(SharedPrg):
        KEEP = 3
        KEEP_BYTES = 8 * 100

    seed = bytes(32)
    plain, shared = Prg(seed), Small(seed)
    labels = [f"s|{t}|x|b" for t in range(10)]
    for label in labels:  # never repeated: at most 3 kept, and never more than 100 words
        shared.words(label, (40,))
        assert shared.waiting[0] <= 3 and shared.waiting[1] <= 8 * 100
    assert shared.waiting == (2, 2 * 8 * 40)
    big = shared.words("s|big|x|b", (200,))  # beyond the byte bound: not kept
    assert np.array_equal(big, plain.words("s|big|x|b", (200,))) and shared.waiting == (0, 0)
    shared.words(labels[-1], (40,))
    shared.words(labels[-1], (40,))  # a repeat takes the kept draw
    assert shared.waiting == (0, 0)
    for label in reversed(labels):
        assert np.array_equal(shared.words(label, (40,)), plain.words(label, (40,)))
