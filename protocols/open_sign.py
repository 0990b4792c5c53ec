"""Opening the answer of a comparison to every party: the sign bit opened as XOR shares.

`protocols.compare.ltz` ends with a daBit conversion (one round) so that the bit can be
used in further arithmetic; a bit that is to be opened anyway (the convergence test of a
Newton loop) skips it: its XOR shares are opened directly, one round instead of two
(conversion, then opening).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from protocols.arith import add_public
from protocols.bits import masked
from protocols.boolean import unpack_lanes
from protocols.circuits import run_circuits
from protocols.compare import sign_gates
from protocols.opening import open_xor


def open_less_than_public(ctx: PartyContext, x: Share, c: Any) -> np.ndarray:
    """The public booleans x < c (c read at x's scale), opened to every party.

    1. Open m = (x - c) + r, r a dealer mask with its bits XOR-shared (one round).
    2. msb(x - c) = msb(m - r) by the comparator circuit (`compare.sign_gates`).
    3. Open the XOR-shared sign bits (one round).
    """
    y = add_public(ctx, x, -np.asarray(c, dtype=np.float64))
    opened, mat = masked(ctx, y, "cmp-open")
    (msb,) = run_circuits(ctx, [sign_gates(ctx, y.ring, [opened], mat["r_bits"])], "cmp-level")
    (words,) = open_xor(ctx, [msb[0]], "sign-open")
    return unpack_lanes(words, y.size).reshape(y.shape).astype(bool)
