"""Sigmoid: within 1e-5 absolute (the issue asks 1e-4) over [-40, 40] and far beyond, in both
rings, for 2 and 3 parties; the coefficient tables; 16 / 17 rounds."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.fixedpoint import FixedPoint
from protocols.sigmoid import piece_coefficients, sigmoid
from tests.protocols.nonlinear_support import PARTIES, RINGS, points, run_protocol
from tests.support import deal


def _sigma(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(x / 2.0))  # no overflow for large |x|


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_sigmoid_over_minus_40_to_40_and_beyond(n: int, fp: FixedPoint) -> None:
    x = points(fp, -40, 40, 3000, seed=n)
    half = 16 if fp.ring.native else 32  # the table covers [-half, half); beyond, 0 or 1
    edges = [0.0, fp.resolution, -fp.resolution, 1.0, -1.0, half - fp.resolution, -half, half, -half - fp.resolution]
    far = [1e5, -1e5, 0.49 * fp.max_abs, -0.49 * fp.max_abs]
    x = np.concatenate([x, np.linspace(-half - 1, half + 1, 400), edges, far])
    x = fp.decode(fp.encode(x))
    got, spent = run_protocol(n, sigmoid, deal(fp, x, n))
    err = np.abs(got - _sigma(x))
    assert err.max() <= (3e-6 if fp.ring.native else 1e-10)
    assert spent.rounds == (13 if fp.ring.native else 14)


def test_piece_tables_interpolate_the_sigmoid() -> None:
    bits, degree, frac = 5, 5, 40
    coeffs = np.array(piece_coefficients(bits, degree, frac), dtype=np.float64) / 2.0**frac
    t = np.linspace(-1, 1, 101)
    for i in range(2**bits):
        x = i - 16 + (t + 1) / 2
        assert np.abs(np.polyval(coeffs[::-1, i], t) - _sigma(x)).max() <= 3e-7
