"""A party's private matrix times shared vectors: correct, reusable, one round per batch."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST
from mpc.inprocess import run_parties
from mpc.ring import RING64
from protocols.material import KINDS
from protocols.opening import open_arith, reveal
from protocols.owned import owned_matvec_many, publish_masked
from protocols.sharing import share_from
from protocols.truncation import truncate
from tests.support import rounds_of


@pytest.mark.parametrize("n", [2, 3, 5])
def test_private_matrices_times_shared_vectors(n: int) -> None:
    rng = np.random.default_rng(n)
    cols = 4
    rows = {r: 10 + 3 * r for r in range(n)}
    data = {r: rng.normal(0, 50, (rows[r], cols)) for r in range(n)}
    beta = [rng.normal(0, 1, cols) for _ in range(2)]
    resid = {r: rng.normal(0, 1, rows[r]) for r in range(n)}
    fx = 12

    def program(ctx: PartyContext) -> tuple[list[np.ndarray], list[np.ndarray], int]:
        mine = {ctx.rank: FAST.encode(data[ctx.rank], fx)}
        shapes = {r: (rows[r], cols) for r in range(n)}
        owned, publish_rounds = rounds_of(
            ctx, lambda: publish_masked(ctx, list(range(n)), mine, shapes, "X", FAST.ring, fx)
        )
        assert publish_rounds == 1
        etas = []
        for b in beta:  # the same published matrices serve every iteration
            bs = share_from(ctx, 0, FAST.encode(b) if ctx.is_leader else None, (cols,), FAST.ring, FAST.frac)
            prods, rounds = rounds_of(ctx, lambda bs=bs: owned_matvec_many(ctx, [(om, bs, False) for om in owned]))
            assert rounds == 1
            etas.append(np.concatenate([reveal(ctx, truncate(ctx, p, fx)) for p in prods]))
        grads = []
        for om in owned:
            v = share_from(
                ctx, om.owner, FAST.encode(resid[om.owner]) if ctx.rank == om.owner else None,
                (rows[om.owner],), FAST.ring, FAST.frac,
            )
            (g,) = owned_matvec_many(ctx, [(om, v, True)])
            grads.append(reveal(ctx, truncate(ctx, g, fx)))
        return etas, grads, ctx.stats.dealer_bytes

    results = run_parties(n, program, kinds=KINDS)
    etas, grads, _ = results[0]
    x_all = np.vstack([data[r] for r in range(n)])
    for eta, b in zip(etas, beta):
        assert np.allclose(eta, x_all @ b, atol=1e-3)
    for r in range(n):
        assert np.allclose(grads[r], data[r].T @ resid[r], atol=1e-2)
    # Only the last party hears from the dealer, and only vector-sized corrections.
    assert results[0][2] == 0
    assert 0 < results[-1][2] < 8 * 4 * sum(rows.values()) * 3


def test_products_are_exact_in_the_ring_and_each_matrix_is_split_once() -> None:
    """Opened without truncation, every product equals the modular integer product, in every
    iteration and both directions; each party converts a published matrix (and its own mask) once."""
    n, cols = 3, 5
    rng = np.random.default_rng(11)
    rows = {r: 600 + 7 * r for r in range(n)}
    data = {r: rng.integers(0, 2**64 - 1, size=(rows[r], cols), dtype=np.uint64) for r in range(n)}
    vecs = [rng.integers(0, 2**64 - 1, size=(cols,), dtype=np.uint64) for _ in range(2)]
    backs = {r: rng.integers(0, 2**64 - 1, size=(rows[r],), dtype=np.uint64) for r in range(n)}

    def program(ctx: PartyContext) -> tuple[list[np.ndarray], list[np.ndarray], list[bool]]:
        owned = publish_masked(ctx, list(range(n)), {ctx.rank: data[ctx.rank]},
                               {r: (rows[r], cols) for r in range(n)}, "X", FAST.ring, 0)
        first = [om.masked_limbs for om in owned]
        forward = []
        for v in vecs:
            vs = share_from(ctx, 0, v if ctx.is_leader else None, (cols,), FAST.ring, 0)
            forward += open_arith(ctx, owned_matvec_many(ctx, [(om, vs, False) for om in owned]))
        shared = [share_from(ctx, om.owner, backs[om.owner] if ctx.rank == om.owner else None, (rows[om.owner],),
                             FAST.ring, 0) for om in owned]
        back = open_arith(ctx, owned_matvec_many(ctx, [(om, w, True) for om, w in zip(owned, shared)]))
        kept = [om.masked_limbs is limbs for om, limbs in zip(owned, first)]
        kept += [(om.mask_limbs is not None) == (om.owner == ctx.rank) for om in owned]
        return forward, back, kept

    for forward, back, kept in run_parties(n, program, kinds=KINDS):
        assert all(kept)
        want = [RING64.matmul(data[r], v) for v in vecs for r in range(n)]
        assert all(np.array_equal(g, w) for g, w in zip(forward, want, strict=True))
        assert all(np.array_equal(back[r], RING64.matmul(data[r].T, backs[r])) for r in range(n))
