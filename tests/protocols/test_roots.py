"""Square root and inverse square root: the issue's 1e-5 relative target over [1e-4, 1e8] in
Z_2^128, the documented bound over each ring's whole default range, round counts."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.fixedpoint import FAST, PRECISE, FixedPoint
from protocols.roots import rsqrt, sqrt
from tests.protocols.nonlinear_support import PARTIES, RINGS, points, run_protocol
from tests.support import deal


@pytest.mark.parametrize("n", PARTIES)
def test_sqrt_meets_1e5_relative_over_1e4_to_1e8(n: int) -> None:
    y = points(PRECISE, 1e-4, 1e8, 150, log_scale=True, seed=n)
    y[2:5] = [1.0, 2.0, 0.5]  # both parities of the exponent around 1
    got, spent = run_protocol(n, lambda ctx, x: sqrt(ctx, x, y_bound=2**27), deal(PRECISE, y, n))
    assert np.abs(got / np.sqrt(y) - 1).max() <= 1e-5
    inv, spent_inv = run_protocol(n, lambda ctx, x: rsqrt(ctx, x, y_bound=2**27), deal(PRECISE, y, n))
    assert np.abs(inv * np.sqrt(y) - 1).max() <= 1e-5
    assert spent.rounds == spent_inv.rounds == 27  # 68 lanes: 1 + 4 + 4 + 1 + 1 + 2 + 2 + 3 x 4


@pytest.mark.parametrize("fp", RINGS)
def test_roots_over_the_default_range(fp: FixedPoint) -> None:
    top = 2.0 ** (20 if fp.ring.native else 40)
    y = points(fp, fp.resolution, 0.999 * top, 3000, log_scale=True, seed=7)
    y[2:6] = [1.0, 2.0, 3.0, 0.75]
    slack = 2.0 ** -(fp.frac - (3 if fp.ring.native else 2))  # relative; 2 steps in Z_2^64, 3 in Z_2^128
    got, spent = run_protocol(3, sqrt, deal(fp, y, 3))
    assert np.all(np.abs(got - np.sqrt(y)) <= slack * np.sqrt(y) + 6 * fp.resolution)
    inv, _ = run_protocol(3, rsqrt, deal(fp, y, 3))
    assert np.all(np.abs(inv - 1 / np.sqrt(y)) <= slack / np.sqrt(y) + 6 * fp.resolution)
    assert spent.rounds == (21 if fp.ring.native else 27)


def test_roots_keep_shape() -> None:
    y = np.array([[4.0, 9.0], [0.25, 1e4]])
    got, _ = run_protocol(2, sqrt, deal(FAST, y, 2))
    assert np.all(np.abs(got - np.sqrt(y).ravel()) <= 2**-17 * np.sqrt(y).ravel() + 6 * FAST.resolution)


def test_sqrt_normalised_gives_both_as_mantissa_and_exponent() -> None:
    from mpc.share import Share
    from protocols.roots import sqrt_normalised

    y = PRECISE.decode(PRECISE.encode(np.array([0.0, 3 * 2.0**-40, 1e-9, 0.75, 1.0, 2.0, 12345.678, 2.0**37])))
    fracs: list[int] = []

    def both(ctx, x):  # type: ignore[no-untyped-def]
        (vm, ve), (rm, re) = sqrt_normalised(ctx, x, y_bound=2.0**38)
        fracs[:] = [vm.frac, ve.frac, rm.frac, re.frac]
        return Share(np.concatenate([vm.data, ve.data, rm.data, re.data]), vm.ring, 0)

    raw, spent = run_protocol(3, both, deal(PRECISE, y, 3), reveal_as="int")
    signed = [int(v) - (1 << 128) if int(v) >= 1 << 127 else int(v) for v in raw]
    vm, ve, rm, re = ([v / 2**f for v in signed[k * len(y) : (k + 1) * len(y)]] for k, f in enumerate(fracs))
    assert fracs[1] == fracs[3] == 0
    assert [m * 2.0**e for m, e in zip(vm, ve)] == list(y)  # the variance's bits, none lost
    assert all(0.5 <= m < 2 for m in vm[1:]) and all(0.7 < m < 1.42 for m in rm[1:])
    roots = np.array([m * 2.0**e for m, e in zip(rm, re)])
    assert roots[0] == 0 and np.all(np.abs(roots[1:] / np.sqrt(y[1:]) - 1) <= 2.0**-37)
    assert spent.rounds == 27  # those of sqrt


def test_a_blurred_normalised_square_root_keeps_its_rounds_and_root() -> None:
    # the variance's mantissa gets uniform bits below its last place (protocols.normalize.Blur);
    # the root is untouched and no round is added
    from mpc.share import Share
    from protocols.normalize import Blur
    from protocols.roots import sqrt_normalised_nonzero

    y = PRECISE.decode(PRECISE.encode(np.array([0.0, 3 * 2.0**-40, 5 * 2.0**-30, 0.75, 12345.678, 2.0**37])))
    fracs: list[int] = []

    def both(ctx, x):  # type: ignore[no-untyped-def]
        (vm, ve), (rm, re), nz = sqrt_normalised_nonzero(ctx, x, 2.0**38, blur=Blur(42))
        fracs[:] = [vm.frac, rm.frac]
        return Share(np.concatenate([vm.data, ve.data, rm.data, re.data, nz.data]), vm.ring, 0)

    raw, spent = run_protocol(3, both, deal(PRECISE, y, 3), reveal_as="int")
    signed = [int(v) - (1 << 128) if int(v) >= 1 << 127 else int(v) for v in raw]
    vm, ve, rm, re, nz = (signed[k * len(y) : (k + 1) * len(y)] for k in range(5))
    assert vm[0] == ve[0] == rm[0] == re[0] == nz[0] == 0 and nz[1:] == [1] * (len(y) - 1)
    values = np.array([m / 2.0 ** fracs[0] * 2.0**e for m, e in zip(vm, ve)])
    assert np.all(np.abs(values - y) <= 3 * 2.0**-40 + 2.0**-80 * y)  # at most n_sites units of 2^-40
    assert all((m & -m).bit_length() - 1 < 24 for m in vm[1:])  # without the blur: 42 or more zeros
    roots = np.array([m / 2.0 ** fracs[1] * 2.0**e for m, e in zip(rm, re)])
    assert np.all(np.abs(roots[1:] / np.sqrt(y[1:]) - 1) <= 2.0**-37)
    assert spent.rounds == 27  # those of sqrt
