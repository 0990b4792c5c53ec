"""Products with shared operands: each distinct operand opened once, results exact, one round."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import PRECISE, FixedPoint
from mpc.share import Share
from protocols.beaver import PendingMul
from protocols.opening import open_arith, reveal_int
from protocols.products import PendingProducts, products
from protocols.sharing import split
from tests.protocols.nonlinear_support import PARTIES, RINGS
from tests.support import rounds_of, run_on_shares


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_shared_operands_are_opened_once(n: int, fp: FixedPoint) -> None:
    rng = np.random.default_rng(n)
    size = 300 if fp.ring.native else 40
    vals = [rng.integers(-(2**20), 2**20, size) for _ in range(3)]
    dealt = [[Share(p, fp.ring, 0) for p in split(fp.ring, fp.ring.reduce(v), n)] for v in vals]
    short = [Share(p, fp.ring, 0) for p in split(fp.ring, fp.ring.reduce(vals[0][:7]), n)]

    def program(ctx: PartyContext, a: Share, b: Share, c: Share, s: Share) -> tuple[list[list[int]], int, int, int]:
        before = ctx.stats.bytes_sent
        outs, rounds = rounds_of(ctx, lambda: products(ctx, [(a, b), (a, c), (b, b), (c, a)]))
        spent = ctx.stats.bytes_sent - before
        (odd,) = products(ctx, [(s, s)])  # also fine for any size
        mixed = products(ctx, [(a, b), (s, s)])  # sizes differ: plain Beaver products
        got = [[int(v) for v in reveal_int(ctx, o)] for o in outs + [odd] + mixed]
        return got, rounds, spent, len(outs)

    got, rounds, spent, count = run_on_shares(n, program, *dealt, short)[0]
    a, b, c = (v.astype(object) for v in vals)
    assert got[:4] == [list(a * b), list(a * c), list(b * b), list(c * a)]
    assert got[4] == list(a[:7] * a[:7]) and got[5] == list(a * b) and got[6] == list(a[:7] * a[:7])
    assert rounds == 1 and count == 4
    assert spent == 3 * size * fp.ring.element_bytes * (n - 1)  # a, b, c once each (not 8 openings)


@pytest.mark.parametrize("n", PARTIES)
def test_pending_products_share_a_round_with_other_openings(n: int) -> None:
    # the executor opens Beaver products of another size in the same message (queries.executor._one_round)
    fp = PRECISE
    rng = np.random.default_rng(n)
    vals = [rng.integers(-(2**30), 2**30, 12) for _ in range(3)]
    dealt = [[Share(p, fp.ring, 0) for p in split(fp.ring, fp.ring.reduce(v), n)] for v in vals]
    short = [Share(p, fp.ring, 0) for p in split(fp.ring, fp.ring.reduce(vals[0][:5]), n)]

    def program(ctx: PartyContext, u: Share, a: Share, b: Share, s: Share) -> tuple[list[list[int]], int]:
        def both() -> list[Share]:
            plain, reused = PendingMul.begin(ctx, [(s, s)]), PendingProducts.begin(ctx, [(u, a), (u, b)])
            mine = plain.shares()
            opened = open_arith(ctx, mine + reused.shares(), "both")
            return plain.finish(ctx, opened[: len(mine)]) + reused.finish(ctx, opened[len(mine) :])

        outs, rounds = rounds_of(ctx, both)
        return [[int(v) for v in reveal_int(ctx, o)] for o in outs], rounds

    got, rounds = run_on_shares(n, program, *dealt, short)[0]
    u, a, b = (v.astype(object) for v in vals)
    assert got == [list(u[:5] * u[:5]), list(u * a), list(u * b)] and rounds == 1
    with pytest.raises(ValueError, match="different sizes"):
        PendingProducts.begin(None, [(dealt[0][0], short[0])])  # type: ignore[arg-type]
