"""Signed normalisation: the leading one of |y| found on shares, for values of either sign."""

from __future__ import annotations

import numpy as np

from mpc.fixedpoint import PRECISE
from mpc.share import Share
from protocols.beaver import mul_many
from protocols.normalize import exponent, tables
from tests.protocols.nonlinear_support import run_protocol
from tests.support import deal


def test_signed_exponent_normalises_values_of_either_sign() -> None:
    y = PRECISE.decode(PRECISE.encode(np.array([3.0, -3.0, -4.0, 2.0**-38, -(2.0**-38), 1e-9, -123456.789, 0.0])))
    fracs: list[int] = []

    def both(ctx, x):  # type: ignore[no-untyped-def]
        e = exponent(ctx, x, 2.0**20, signed=True)
        (s_tab,) = tables(ctx, e, [lambda p: 1 << (e.top - 1 - p)])
        (ys,) = mul_many(ctx, [(Share(x.data, x.ring, 0), s_tab)])
        fracs[:] = [e.top]
        return Share(np.concatenate([ys.data, e.linear(ctx, lambda p: p + 1 - x.frac).data]), x.ring, 0)

    raw, spent = run_protocol(3, both, deal(PRECISE, y, 3), reveal_as="int")
    signed = [int(v) - (1 << 128) if int(v) >= 1 << 127 else int(v) for v in raw]
    mantissas = [v / 2.0 ** fracs[0] for v in signed[: len(y)]]
    exps = signed[len(y) :]
    assert [m * 2.0**e for m, e in zip(mantissas, exps)] == list(y)  # exact: y's bits, shifted
    assert all(0.5 <= abs(m) <= 1 for m in mantissas[:-1]) and mantissas[-1] == 0
    assert spent.rounds == 16  # bits and leading one of 62 lanes (61 and the sign), digits, table, product
