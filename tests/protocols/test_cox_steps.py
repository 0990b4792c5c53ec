"""COX's Newton step with the coefficients held as u = beta log2(e) (`protocols.cox_steps`): the
power-of-two scalings and their log2(e) copy, the cut of the next u, and the last step's beta."""

from __future__ import annotations

import math

import numpy as np

from mpc.fixedpoint import PRECISE
from mpc.share import Share, reconstruct
from protocols.cox_steps import last, next_point, scalings, step
from protocols.logistic import X_FRAC, pair_index, symmetric
from tests.support import deal, run_on_shares

H = np.array([[40.0, 0.2, -1.5], [0.2, 0.004, 0.001], [-1.5, 0.001, 900.0]])
G = np.array([2.5, -0.01, 30.0])
U = np.array([0.75, -1.25, 0.5])  # on the X_FRAC grid


def _decode(shares: list[Share]) -> np.ndarray:
    return PRECISE.decode(reconstruct(shares), shares[0].frac)


def test_scalings_are_powers_of_two_within_a_factor_two_and_their_log2e_copy() -> None:
    def program(ctx, m):  # noqa: ANN001, ANN202
        return scalings(ctx, m)

    out = run_on_shares(3, program, deal(PRECISE, H, 3))
    d, d_u = (_decode([o[k] for o in out]) for k in range(2))
    assert np.all(np.log2(d) == np.round(np.log2(d)))
    assert np.all((d * np.diag(H) >= 0.5) & (d * np.diag(H) < 1.0))
    np.testing.assert_allclose(d_u / d, math.log2(math.e), rtol=2.0**-20)


def test_steps_in_u_and_the_last_in_beta() -> None:
    p = len(G)
    pairs = np.array([H[j, k] for j, k in pair_index(p)])
    delta = np.linalg.solve(H, G)

    def program(ctx, h, g, u):  # noqa: ANN001, ANN202
        d, d_u = scalings(ctx, symmetric(h, p))
        raw, inv_a, _ = step(ctx, g, h, p, None, 30, d, d_u)
        u_fast, u_next = next_point(ctx, u, raw)
        raw_beta, _, _ = step(ctx, g, h, p, inv_a, 7, d, d)
        beta, by_g = last(ctx, u, raw_beta, g)
        return u_fast, u_next, beta, by_g

    u_shares = [Share(s.data, s.ring, X_FRAC) for s in deal(PRECISE, U, 3, X_FRAC)]
    out = run_on_shares(3, program, deal(PRECISE, pairs, 3), deal(PRECISE, G, 3), u_shares)
    u_fast = reconstruct([o[0] for o in out])
    u_next = _decode([o[1] for o in out])
    beta, by_g = _decode([o[2] for o in out]), _decode([o[3] for o in out])
    expected = U + math.log2(math.e) * delta
    np.testing.assert_allclose(u_next, expected, atol=2.0**-X_FRAC, rtol=1e-6)
    assert np.all(np.round(u_next * 2.0**X_FRAC) == u_next * 2.0**X_FRAC)  # on the grid
    np.testing.assert_allclose(u_fast.astype(np.int64) / 2.0**X_FRAC, u_next)
    np.testing.assert_allclose(beta, U * math.log(2) + delta, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(by_g, G * delta, rtol=1e-9, atol=1e-10)
