"""Openings send their arrays' own buffers when they can, and Beaver's finish leaves its inputs alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE
from mpc.share import Share
from protocols.beaver import PendingMul, mul
from protocols.opening import open_arith, open_mixed, packed
from tests.support import Recorder, deal, run_on_shares


class _Sent(Recorder):
    """Keeps, besides the log, each payload object as `send` received it."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.objects: list[object] = []

    def send(self, dst: int, tag: str, payload: bytes) -> None:
        self.objects.append(payload)
        super().send(dst, tag, payload)


def _with_recorder(ctx: PartyContext) -> _Sent:
    sent = _Sent(ctx.transport)
    ctx.transport = sent
    return sent


def test_shares_packed_end_to_end_are_opened_from_their_own_buffer() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.integers(-1000, 1000, 500), rng.integers(-1000, 1000, 500)

    def program(ctx: PartyContext, xs: Share, ys: Share) -> tuple[list[np.ndarray], list[bool]]:
        sent = _with_recorder(ctx)
        e, d = packed(xs.ring, xs.size, 2)
        e[:], d[:] = xs.data, ys.data
        opened = open_arith(ctx, [Share(e, xs.ring), Share(d, ys.ring)])
        whole = e.base
        same = [isinstance(p, memoryview) and np.shares_memory(np.frombuffer(p, np.uint8), whole)
                for p in sent.objects]
        return opened, same

    for opened, same in run_on_shares(3, program, deal(FAST, x, 3, frac=0), deal(FAST, y, 3, frac=0)):
        assert np.array_equal(FAST.ring.to_signed(opened[0]), x)
        assert np.array_equal(FAST.ring.to_signed(opened[1]), y)
        assert same == [True, True]  # both peers got a view of the packed buffer, not a copy


def test_separate_arrays_are_copied_into_one_message_and_open_with_words_and_both_rings() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(-1000, 1000, 40)
    words = [rng.integers(0, 2**63, 7, dtype=np.uint64) for _ in range(3)]

    def program(ctx: PartyContext, fast: Share, precise: Share) -> tuple[list[np.ndarray], list[np.ndarray]]:
        mine = [w if ctx.rank == 0 else np.zeros_like(w) for w in words]
        return open_mixed(ctx, mine, [fast, precise[::2], fast[1:]])

    dealt = (deal(FAST, x, 3, frac=0), deal(PRECISE, x, 3, frac=0))
    for got_words, got in run_on_shares(3, program, *dealt):
        assert all(np.array_equal(g, w) for g, w in zip(got_words, words))
        assert np.array_equal(FAST.ring.to_signed(got[0]), x)
        assert list(PRECISE.ring.to_signed(got[1])) == list(x[::2])
        assert np.array_equal(FAST.ring.to_signed(got[2]), x[1:])


@pytest.mark.parametrize("fp", [FAST, PRECISE], ids=["z64", "z128"])
def test_finish_leaves_the_opened_values_it_is_given_unchanged(fp: Any) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.integers(-100, 100, 50), rng.integers(-100, 100, 50)

    def program(ctx: PartyContext, xs: Share, ys: Share) -> tuple[np.ndarray, bool]:
        pending = PendingMul.begin(ctx, [(xs, ys)])
        opened = open_arith(ctx, pending.shares())
        before = [o.copy() for o in opened]
        (z,) = pending.finish(ctx, opened)
        unchanged = all(np.array_equal(a, b) for a, b in zip(opened, before))
        return open_arith(ctx, [z])[0], unchanged and np.array_equal(open_arith(ctx, [mul(ctx, xs, ys)])[0],
                                                                      open_arith(ctx, [z])[0])

    for product, ok in run_on_shares(3, program, deal(fp, x, 3, frac=0), deal(fp, y, 3, frac=0)):
        assert ok
        assert list(fp.ring.to_signed(product)) == list(x * y)
