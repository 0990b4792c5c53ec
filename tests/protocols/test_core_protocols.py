"""Opening, Beaver products, truncation and secure sum against numpy, with round counts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from mpc.share import Share
from protocols.aggregate import secure_sum
from protocols.arith import add_public, mul_public
from protocols.beaver import fixed_matmul, fixed_mul, fixed_mul_many, matmul, mul, mul_many
from protocols.opening import open_arith, reveal, reveal_int
from protocols.sharing import share_from, share_inputs, split
from protocols.truncation import truncate
from tests.support import deal, rounds_of, run_on_shares

PARTIES = [2, 3, 5]
RINGS = [pytest.param(FAST, id="z64"), pytest.param(PRECISE, id="z128")]


def _size(fp: FixedPoint) -> int:
    return 2000 if fp.ring.native else 60


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_share_and_open_round_trip_in_one_round(n: int, fp: FixedPoint) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(0, 1000, _size(fp))
    y = rng.integers(-(10**6), 10**6, _size(fp))

    def program(ctx: PartyContext, xs: Share, ys: Share) -> tuple[np.ndarray, np.ndarray, int, int]:
        (opened, rounds) = rounds_of(ctx, lambda: open_arith(ctx, [xs, ys]))
        return fp.decode(opened[0]), fp.ring.to_signed(opened[1]), rounds, ctx.stats.messages_sent

    for got_x, got_y, rounds, messages in run_on_shares(n, program, deal(fp, x, n), deal(fp, y, n, frac=0)):
        assert np.allclose(got_x, x, atol=fp.resolution)
        assert [int(v) for v in got_y] == [int(v) for v in y]
        assert rounds == 1
        assert messages == n - 1  # both values travel in one message per peer


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_beaver_product_is_exact_on_integers(n: int, fp: FixedPoint) -> None:
    rng = np.random.default_rng(10 + n)
    x = rng.integers(-(10**8), 10**8, _size(fp))
    y = rng.integers(-(10**8), 10**8, _size(fp))

    def program(ctx: PartyContext, xs: Share, ys: Share) -> tuple[np.ndarray, int]:
        z, rounds = rounds_of(ctx, lambda: mul(ctx, xs, ys))
        return reveal_int(ctx, z), rounds

    for z, rounds in run_on_shares(n, program, deal(fp, x, n, 0), deal(fp, y, n, 0)):
        assert [int(v) for v in z] == [int(a) * int(b) for a, b in zip(x, y)]
        assert rounds == 1


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_fixed_point_product_error_is_within_bound(n: int, fp: FixedPoint) -> None:
    rng = np.random.default_rng(20 + n)
    limit = np.sqrt(fp.max_product) * 0.9
    x = rng.uniform(-limit, limit, _size(fp))
    y = rng.uniform(-limit, limit, _size(fp))
    x[:4] = [0.0, limit, -limit, fp.resolution]
    y[:4] = [limit, limit, limit, 1.0]

    def program(ctx: PartyContext, xs: Share, ys: Share) -> tuple[np.ndarray, int]:
        z, rounds = rounds_of(ctx, lambda: fixed_mul(ctx, xs, ys))
        return reveal(ctx, z), rounds

    ex, ey = fp.decode(fp.encode(x)), fp.decode(fp.encode(y))  # the encoded inputs
    for z, rounds in run_on_shares(n, program, deal(fp, x, n), deal(fp, y, n)):
        # Truncation is off by at most one unit in the last place (plus float64 rounding of the oracle).
        assert np.all(np.abs(z - ex * ey) <= fp.resolution * (1 + 1e-6) + np.abs(ex * ey) * 2**-50)
        assert rounds == 2


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_truncation_is_exact_to_one_ulp_across_the_whole_safe_range(n: int, fp: FixedPoint) -> None:
    k = fp.ring.bits
    rng = np.random.default_rng(30 + n)
    count = _size(fp)
    bound = 2 ** (k - 2)
    raw = [int(v) for v in rng.integers(-(2**62), 2**62, count)]
    raw = [v * (2 ** (k - 64)) for v in raw] + [bound - 1, -bound + 1, -bound, 0, -1, 1, 2**20, -(2**20)]
    m = 13
    values = np.array(raw, dtype=object)

    def program(ctx: PartyContext, xs: Share) -> tuple[np.ndarray, int]:
        z, rounds = rounds_of(ctx, lambda: truncate(ctx, xs, m))
        return reveal_int(ctx, z.with_frac(0)), rounds

    shares = [Share(part, fp.ring, m) for part in split(fp.ring, fp.ring.reduce(values), n)]
    for z, rounds in run_on_shares(n, program, shares):
        for got, v in zip(z, raw):
            assert int(got) - (v >> m) in (0, 1, -1), (v, int(got))
        assert rounds == 1


@pytest.mark.parametrize("n", PARTIES)
def test_matrix_product_against_numpy(n: int) -> None:
    rng = np.random.default_rng(40 + n)
    a = rng.normal(0, 3, (30, 20))
    b = rng.normal(0, 3, (20, 4))
    v = rng.normal(0, 3, 20)

    def program(ctx: PartyContext, xa: Share, xb: Share, xv: Share) -> tuple[np.ndarray, np.ndarray, int]:
        m, rounds = rounds_of(ctx, lambda: fixed_matmul(ctx, xa, xb))
        return reveal(ctx, m), reveal(ctx, fixed_matmul(ctx, xa, xv)), rounds

    ea, eb, ev = (FAST.decode(FAST.encode(t)) for t in (a, b, v))
    for m, mv, rounds in run_on_shares(n, program, deal(FAST, a, n), deal(FAST, b, n), deal(FAST, v, n)):
        assert np.abs(m - ea @ eb).max() <= 2 * FAST.resolution
        assert np.abs(mv - ea @ ev).max() <= 2 * FAST.resolution
        assert rounds == 2


def test_matrix_product_exact_in_the_precise_ring() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(-1000, 1000, (5, 8))
    b = rng.integers(-1000, 1000, (8, 3))

    def program(ctx: PartyContext, xa: Share, xb: Share) -> np.ndarray:
        return reveal_int(ctx, matmul(ctx, xa, xb))

    got = run_on_shares(3, program, deal(PRECISE, a, 3, 0), deal(PRECISE, b, 3, 0))[0]
    assert [[int(t) for t in row] for row in got] == (a @ b).tolist()


def test_many_products_share_one_round() -> None:
    rng = np.random.default_rng(8)
    xs = [rng.normal(0, 10, s) for s in (5, 7, 1)]

    def program(ctx: PartyContext, a: Share, b: Share, c: Share) -> tuple[list[np.ndarray], int, list[np.ndarray]]:
        out, rounds = rounds_of(ctx, lambda: mul_many(ctx, [(a, a), (b, b), (c, c)]))
        fixed = fixed_mul_many(ctx, [(a, a), (b, b), (c, c)])
        return [reveal(ctx, o) for o in out], rounds, [reveal(ctx, o) for o in fixed]

    dealt = [deal(FAST, x, 3) for x in xs]
    raw, rounds, fixed = run_on_shares(3, program, *dealt)[2]
    assert rounds == 1
    for got, want in zip(fixed, xs):
        assert np.allclose(got, want**2, atol=1e-4)
    assert all(r.shape == x.shape for r, x in zip(raw, xs))


@pytest.mark.parametrize("paired", [True, False], ids=["pair-seeds", "sent-shares"])
@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_secure_sum_of_private_inputs(n: int, fp: FixedPoint, paired: bool) -> None:
    inputs = [np.arange(6) * (r + 1) - 3.25 * r for r in range(n)]

    def program(ctx: PartyContext) -> tuple[np.ndarray, int, int]:
        if not paired:
            ctx.pairs = {}
        total, rounds = rounds_of(ctx, lambda: secure_sum(ctx, fp.encode(inputs[ctx.rank]), fp.ring, fp.frac))
        return reveal(ctx, total), rounds, ctx.stats.bytes_sent

    from mpc.inprocess import run_parties

    for total, rounds, sent in run_parties(n, program):
        assert np.allclose(total, np.sum(inputs, axis=0), atol=n * fp.resolution)
        # With pairwise seeds the inputs are shared without a message; the reveal is the one round left.
        assert rounds == (0 if paired else 1)
        assert sent == (1 if paired else 2) * (n - 1) * 6 * fp.ring.nbytes((1,))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_pair_seeded_sharing_sends_nothing_and_adds_up_to_the_input(n: int) -> None:
    fp = FAST
    x = fp.encode(np.linspace(-4, 4, 7))

    def program(ctx: PartyContext) -> tuple[list[np.ndarray], np.ndarray]:
        shares = share_inputs(ctx, x * (ctx.rank + 1), fp.ring, fp.frac)
        return [s.data for s in shares], share_from(ctx, 1, x if ctx.rank == 1 else None, x.shape, fp.ring, 0).data

    from mpc.inprocess import make_contexts, run_parties

    ctxs = make_contexts(n)
    out = run_parties(n, program, contexts=ctxs)
    assert all(c.stats.rounds == 0 and c.stats.bytes_sent == 0 for c in ctxs)
    for owner in range(n):
        total = fp.ring.zeros(x.shape)
        for rank in range(n):
            total = fp.ring.add(total, out[rank][0][owner])
        assert np.array_equal(total, fp.ring.reduce(x * (owner + 1)))
        others = [out[r][0][owner] for r in range(n) if r != owner]
        assert all(not np.array_equal(a, b) for i, a in enumerate(others) for b in others[i + 1:])  # distinct draws
    one = fp.ring.zeros(x.shape)
    for rank in range(n):
        one = fp.ring.add(one, out[rank][1])
    assert np.array_equal(one, fp.ring.reduce(x))


def test_agreed_pair_seeds_match_across_parties_and_differ_between_pairs() -> None:
    from mpc.inprocess import InProcessNetwork
    from mpc.pairs import agree_pair_seeds

    n = 3
    net = InProcessNetwork(n, 10.0)
    got: list[dict] = [{} for _ in range(n)]

    def body(rank: int) -> None:
        got[rank] = agree_pair_seeds(net.transport(rank), rank, n, "setup")

    threads = [threading.Thread(target=body, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    draw = {(i, j): got[i][j].stream("x", 16) for i in range(n) for j in range(n) if i != j}
    assert all(draw[i, j] == draw[j, i] for i, j in draw)
    assert len({draw[i, j] for i, j in draw if i < j}) == 3


def test_inputs_from_one_owner_and_public_operations() -> None:
    x = np.array([1.5, -2.0, 3.25])

    def program(ctx: PartyContext) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        xs = share_from(ctx, 1, FAST.encode(x) if ctx.rank == 1 else None, (3,), FAST.ring, FAST.frac)
        plus = reveal(ctx, add_public(ctx, xs, 10.0))
        times = reveal(ctx, truncate(ctx, mul_public(ctx, xs, 0.5), FAST.frac))
        each = share_inputs(ctx, FAST.encode(np.full(3, float(ctx.rank))), FAST.ring, FAST.frac)
        return plus, times, [reveal(ctx, s) for s in each]

    from mpc.inprocess import run_parties

    plus, times, each = run_parties(3, program)[0]
    assert np.allclose(plus, x + 10)
    assert np.allclose(times, x * 0.5, atol=2 * FAST.resolution)
    assert [float(e[0]) for e in each] == [0.0, 1.0, 2.0]


def test_shares_of_different_rings_or_scales_do_not_mix() -> None:
    a = deal(FAST, [1.0], 2)[0]
    b = deal(PRECISE, [1.0], 2)[0]
    with pytest.raises(ValueError, match="Z_2"):
        _ = a + b
    with pytest.raises(ValueError, match="fractional bits"):
        _ = a + a.with_frac(3)
