"""The secret rank search against sorting, with its round count; and the helpers it opens with."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.inprocess import make_contexts, run_parties
from mpc.ring import RING64, RING128
from mpc.share import Share
from protocols.material import KINDS
from protocols.opening import open_mixed
from protocols.rank_select import Layout, owner_bits, select_ranks
from protocols.sharing import share_inputs, share_words


def _case(slots: list[int], widths: list[int], seed: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    keys, member = [], []
    for size in slots:
        k = np.stack([rng.integers(0, 1 << min(w, 63), size, dtype=np.uint64) << np.uint64(max(0, w - 63))
                      for w in widths])
        k[:, ::4] = k[:, 1:2]  # ties, within and across parties
        keys.append(k)
        member.append(rng.random((len(widths), size)) < 0.5)
    member[0][:, 0] = True  # every search has a member
    pooled = [np.concatenate([keys[p][s][member[p][s]] for p in range(len(slots))]) for s in range(len(widths))]
    ranks = np.array([rng.integers(1, len(a) + 1) for a in pooled], dtype=np.uint64)
    ranks[0], ranks[-1] = 1, len(pooled[-1])  # the smallest and the largest
    return keys, member, ranks


def _run(slots: list[int], widths: list[int], bits: int, seed: int) -> tuple[list[int], list[int], int]:
    keys, member, ranks = _case(slots, widths, seed)
    layout = Layout(tuple(slots), tuple(widths), bits)

    def program(ctx: PartyContext) -> tuple[np.ndarray, int]:
        r = share_inputs(ctx, ranks if ctx.rank == 0 else np.zeros_like(ranks), RING64, 0)[0]
        before = ctx.stats.rounds
        out = select_ranks(ctx, layout, owner_bits(layout, keys[ctx.rank], member[ctx.rank]), r)
        return out, ctx.stats.rounds - before

    results = run_parties(len(slots), program, kinds=KINDS)
    total = results[0][0].copy()
    for share, _ in results[1:]:
        total ^= share
    got = [sum(int(total[s, b]) << b for b in range(total.shape[1])) for s in range(len(widths))]
    parties = range(len(slots))
    pooled = [np.sort(np.concatenate([keys[p][s][member[p][s]] for p in parties])) for s in range(len(widths))]
    want = [int(pooled[s][ranks[s] - 1]) for s in range(len(widths))]
    assert len({r for _, r in results}) == 1
    return got, want, results[0][1]


@pytest.mark.parametrize(("slots", "bits"), [([64, 128], 2), ([64, 128, 64], 1), ([64, 192, 128], 2),
                                             ([128, 64, 64], 3)])  # five parties: test_quantiles' order statistics
def test_ranks_match_sorting_with_five_rounds_a_step(slots: list[int], bits: int) -> None:
    widths = [1, 7, 46, 60, 64]
    got, want, rounds = _run(slots, widths, bits, seed=len(slots) * 10 + bits)
    assert got == want
    steps = -(-max(widths) // bits)
    assert rounds == 5 * steps - 1  # up to 2^16 slots; the last step needs no update round


def test_a_rank_beyond_the_count_gives_the_largest_key_of_the_width() -> None:
    layout = Layout((64, 64), (5,), 2)
    keys = [np.full((1, 64), 3, dtype=np.uint64)] * 2
    member = [np.ones((1, 64), dtype=bool)] * 2

    def program(ctx: PartyContext) -> np.ndarray:
        r = share_inputs(ctx, np.array([129 if ctx.rank == 0 else 0], dtype=np.uint64), RING64, 0)[0]
        return select_ranks(ctx, layout, owner_bits(layout, keys[ctx.rank], member[ctx.rank]), r)

    a, b = run_parties(2, program, kinds=KINDS)
    assert (a ^ b)[0].tolist() == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("bad", [dict(slots=(64, 100)), dict(slots=(0,)), dict(widths=(65,)), dict(step_bits=5)])
def test_layout_refuses_shapes_it_cannot_search(bad: dict) -> None:
    good = Layout((64, 64), (8,), 2)
    with pytest.raises(ValueError):
        replace(good, **bad)


@pytest.mark.parametrize("paired", [True, False])
def test_share_words_xor_shares_every_party_input(paired: bool) -> None:
    shapes = [(2, 3), (1, 5), (4,)]
    inputs = [np.arange(np.prod(s), dtype=np.uint64).reshape(s) * np.uint64(0x9E3779B97F4A7C15 + p)
              for p, s in enumerate(shapes)]
    ctxs = make_contexts(3, kinds=KINDS)
    if not paired:
        ctxs = [replace(c, pairs={}) for c in ctxs]

    def program(ctx: PartyContext) -> tuple[list[np.ndarray], int]:
        return share_words(ctx, inputs[ctx.rank], shapes), ctx.stats.rounds

    results = run_parties(3, program, contexts=ctxs)
    for owner in range(3):
        total = results[0][0][owner] ^ results[1][0][owner] ^ results[2][0][owner]
        np.testing.assert_array_equal(total, inputs[owner])
        assert not np.array_equal(results[owner - 1][0][owner], inputs[owner])  # a peer's share is not the input
    assert {r for _, r in results} == {0 if paired else 1}


def test_open_mixed_opens_words_and_shares_in_one_round() -> None:
    words = np.array([5, 7], dtype=np.uint64)
    value = [np.array([3, 4], dtype=object), np.array([9, 9], dtype=object)]

    def program(ctx: PartyContext) -> tuple[list[np.ndarray], list[np.ndarray], int]:
        w = words if ctx.rank == 0 else np.zeros(2, np.uint64)
        s = Share(RING128.reduce(value[ctx.rank]), RING128)
        opened_w, opened_s = open_mixed(ctx, [w], [s])
        return opened_w, opened_s, ctx.stats.rounds

    for got_w, got_s, rounds in run_parties(2, program, kinds=KINDS):
        assert got_w[0].tolist() == [5, 7] and got_s[0].tolist() == [12, 13] and rounds == 1
