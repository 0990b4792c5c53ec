"""AND gates of fan-in 2 to 4 (`protocols.gates`): every monomial of a family against numpy, in one
round, each variable opened once, and the dealer's part as `dealer_words` says."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.inprocess import run_parties
from protocols.gates import Family, and_families, dealer_words
from protocols.material import KINDS
from protocols.opening import open_xor
from tests.support import rounds_of


def _xor_split(words: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    parts = [rng.integers(0, 2**63, words.shape, dtype=np.uint64) for _ in range(n - 1)]
    last = words.copy()
    for p in parts:
        last ^= p
    return [*parts, last]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_every_monomial_of_every_family_in_one_round(n: int) -> None:
    rng = np.random.default_rng(n)

    # a span combine (G0 G1 G2, P0 P1 P2 P3: the monomials of protocols.circuits), a lone 3-AND, a pair
    span = (0b1110000 | 0b0001, 0b1100000 | 0b0010, 0b1000000 | 0b0100, 0b1111000)
    layouts = [(7, span), (3, (0b111,)), (2, (0b11,))]
    values = {v: rng.integers(0, 2**63, (v, 4), dtype=np.uint64) << 1 ^ rng.integers(0, 2, (v, 4), dtype=np.uint64)
              for v, _ in layouts}
    shares = {v: [_xor_split(values[v][i], n, rng) for i in range(v)] for v, _ in layouts}


    def program(ctx: PartyContext, _: Any) -> Any:
        families = [Family(tuple(shares[v][i][ctx.rank] for i in range(v)), monomials) for v, monomials in layouts]
        out, rounds = rounds_of(ctx, lambda: and_families(ctx, families))
        sent = ctx.stats.bytes_sent
        return [open_xor(ctx, got) for got in out], rounds, sent

    answers = run_parties(n, program, args=[None] * n, kinds=KINDS)
    opened, rounds, sent = answers[0]
    for (v, monomials), got in zip(layouts, opened):
        for mono, word in zip(monomials, got):
            want = np.full(4, np.uint64(2**64 - 1))
            for i in range(v):
                if mono >> i & 1:
                    want &= values[v][i]
            assert np.array_equal(word, want)
    assert rounds == 1
    assert sent == (7 + 3 + 2) * 4 * 8 * (n - 1)  # one word per variable, element and peer
    assert [dealer_words(Family((), m)) for _, m in layouts] == [22, 4, 1]
