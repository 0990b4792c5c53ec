"""Opening the answer of a comparison to every party: the sign bits opened as XOR shares.

`protocols.compare.ltz` ends with a daBit conversion (one round) so that the bit can be
used in further arithmetic; a bit that is to be opened anyway (the convergence test of a
Newton loop) skips it: its XOR shares are opened directly, one round instead of two
(conversion, then opening). `all_within` goes further: the AND of many sign bits is taken
in the boolean domain, right after the comparator, and only that one bit is opened.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat
from protocols.arith import add_public
from protocols.bits import masked
from protocols.boolean import unpack_lanes
from protocols.circuits import Circuit, all_ones_gates, run_circuits
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


def _all_negative_gates(ctx: PartyContext, y: Share, opened: np.ndarray, r_bits: np.ndarray) -> Circuit:
    """The comparator's sign bits of every element of y, then the AND tree over them."""
    msb = yield from sign_gates(ctx, y.ring, [opened], r_bits)
    row = msb[0]
    idx = np.arange(y.size)
    bits = (row[idx // 64] >> (idx % 64).astype(np.uint64)) & np.uint64(1)  # one element per row
    every = yield from all_ones_gates(bits.reshape(-1, 1))
    return every


def all_within(ctx: PartyContext, x: Share, tolerance: float) -> bool:
    """Open one bit to every party: is |x| < tolerance for every element (read at x's scale)?

    1. y = (x - tol, -x - tol): every element is within exactly when all of y is negative.
    2. Open y + r (one round); the comparator circuit gives each sign bit (`compare.sign_gates`).
    3. The AND tree over the sign bits, its levels after the comparator's (`circuits.all_ones_gates`).
    4. Open the one XOR-shared bit (one round).
    """
    flat = x.reshape(x.size)
    y = add_public(ctx, concat([flat, -flat]), -float(tolerance))
    opened, mat = masked(ctx, y, "cmp-open")
    (every,) = run_circuits(ctx, [_all_negative_gates(ctx, y, opened, mat["r_bits"])], "within-level")
    (word,) = open_xor(ctx, [every], "within-open")
    return bool(int(word[0]) & 1)
