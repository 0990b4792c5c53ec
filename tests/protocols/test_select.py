"""Selection by a shared bit, and maximum, minimum, absolute value and clipping built on it: exact."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mpc.context import PartyContext
from mpc.fixedpoint import FixedPoint
from mpc.share import Share
from protocols.compare import ltz
from protocols.opening import reveal
from protocols.select import absolute, clip, maximum, minimum, select
from tests.protocols.nonlinear_support import PARTIES, RINGS, points
from tests.support import deal, rounds_of, run_on_shares


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("fp", RINGS)
def test_select_max_min_abs_clip_are_exact(n: int, fp: FixedPoint) -> None:
    a = points(fp, -500, 500, 2000, seed=1)
    b = points(fp, -500, 500, 2000, seed=2)
    a[2:6] = [0.0, -fp.resolution, 250.5, -100.0]  # zero, a hair below it, the clip bounds
    b[2:6] = [0.0, 0.0, 250.5, 3.0]  # ties

    def program(ctx: PartyContext, xa: Share, xb: Share) -> dict[str, Any]:
        out: dict[str, Any] = {}
        bit = ltz(ctx, xa - xb)
        for name, step in [
            ("select", lambda: select(ctx, bit, xa, xb)),
            ("max", lambda: maximum(ctx, xa, xb)),
            ("min", lambda: minimum(ctx, xa, xb)),
            ("abs", lambda: absolute(ctx, xa)),
            ("clip", lambda: clip(ctx, xa, -100.0, 250.5)),
        ]:
            share, out[name + "_rounds"] = rounds_of(ctx, step)
            assert share.frac == xa.frac and share.shape == xa.shape
            out[name] = reveal(ctx, share)
        return out

    out = run_on_shares(n, program, deal(fp, a, n), deal(fp, b, n))[0]
    assert np.array_equal(out["select"], np.where(a < b, a, b))
    assert np.array_equal(out["max"], np.maximum(a, b)) and np.array_equal(out["min"], np.minimum(a, b))
    assert np.array_equal(out["abs"], np.abs(a)) and np.array_equal(out["clip"], np.clip(a, -100.0, 250.5))
    cmp = 5 if fp.ring.native else 6
    assert out["select_rounds"] == 1
    assert out["max_rounds"] == out["min_rounds"] == out["abs_rounds"] == out["clip_rounds"] == cmp + 1
