"""exp2_capped: min(2^u, cap) and [2^u >= cap] in both rings, one round fewer than exp_capped, with a
lower polynomial degree where the ring's resolution allows (POISSON's Newton steps)."""

from __future__ import annotations

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FAST, FixedPoint
from mpc.share import Share
from protocols.exp_log import EXP2_ERRORS, exp2_capped, exp_capped
from protocols.polynomial import chebyshev_power_coefficients
from tests.protocols.nonlinear_support import RINGS, points, run_protocol
from tests.support import deal


def test_the_documented_polynomial_errors() -> None:
    phi = np.linspace(0.0, 1.0, 100_001)
    for degree, bound in EXP2_ERRORS.items():
        coeffs = chebyshev_power_coefficients("exp2", 0.0, 1.0, degree)
        value = np.polynomial.polynomial.polyval(2 * phi - 1, coeffs)
        worst = np.abs(value / 2**phi - 1).max()
        assert bound / 1.2 < worst < bound * 1.05, degree


@pytest.mark.parametrize("lean", [False, True], ids=["factors", "lean"])
@pytest.mark.parametrize("fp", RINGS)
def test_exp2_capped_is_exp_capped_of_u_ln2_a_round_sooner(fp: FixedPoint, lean: bool) -> None:
    """Over inputs below the range (0), inside it and far above the cap; one cap per element; 2^n by
    its bits' factors or, lean, by table lookups with the last powers untruncated (fewer bytes)."""
    fast = fp.ring.native
    u = points(fp, -30.0 if fast else -50.0, 80.0, 300, seed=5)
    caps = np.where(np.arange(u.size) % 2 == 0, 2.0**3.5, 2.0**10)
    keep = np.abs(u - np.log2(caps)) > 1e-5  # not on the boundary itself
    u, caps = u[keep], caps[keep]
    frac = fp.frac + 20
    degree = 5 if fast else 8
    def program(ctx: PartyContext, v: Share) -> Share:
        return exp2_capped(ctx, v, caps, out_frac=frac, degree=degree, lean=lean)[0]

    got, spent = run_protocol(3, program, deal(fp, u, 3))
    want = np.minimum(2.0**u, caps)
    inside = u >= (-24 if fast else -32)  # u + O >= 0
    assert np.all(np.abs(got - want)[inside] <= (4e-6 if fast else 2e-11) * want[inside] + 2.0**-frac)
    assert np.all(got[~inside] == 0.0) and (~inside).sum() > 10  # below the range: exactly 0
    x = u * np.log(2.0)
    _, full = run_protocol(3, lambda ctx, v: exp_capped(ctx, v, caps, out_frac=frac)[0], deal(fp, x, 3))
    # no product by log2(e) to truncate; in Z_2^128 also one level of powers (its products and truncation)
    assert spent.rounds == full.rounds - (1 if fast else 3) - (1 if lean else 0)  # lean: the last level untruncated
    if lean:
        _, bits_spent = run_protocol(3, lambda ctx, v: exp2_capped(ctx, v, caps, out_frac=frac, degree=degree)[0],
                                     deal(fp, u, 3))
        assert spent.bytes_sent < 0.85 * bits_spent.bytes_sent
    bits, _ = run_protocol(3, lambda ctx, v: exp2_capped(ctx, v, caps, degree=degree, lean=lean)[1],
                           deal(fp, u, 3), reveal_as="int")
    assert [int(b) for b in bits] == [int(v) for v in u >= np.log2(caps)]


def test_bad_arguments_are_refused() -> None:
    u = np.array([0.5, 1.0])
    with pytest.raises(ValueError, match="cap must be below"):
        run_protocol(2, lambda ctx, v: exp2_capped(ctx, v, 2.0**40)[0], deal(FAST, u, 2))
    with pytest.raises(ValueError, match="degree 2 or more"):
        run_protocol(2, lambda ctx, v: exp2_capped(ctx, v, 4.0, degree=1)[0], deal(FAST, u, 2))
    with pytest.raises(ValueError, match="needs u at 20 fractional bits"):
        run_protocol(2, lambda ctx, v: exp2_capped(ctx, v.with_frac(21), 4.0)[0], deal(FAST, u, 2))
