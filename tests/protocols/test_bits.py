"""Bit-level building blocks: the bit-sliced layout, circuits, bit decomposition, leading one and
bit-to-arithmetic conversion — against plaintext, with their rounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc.context import PartyContext
from mpc.fixedpoint import FixedPoint
from mpc.inprocess import run_parties
from mpc.share import Share
from protocols.bits import bit_decompose, decompose_rows, lanes_to_arith, leading_one
from protocols.boolean import from_slices, lanes, pack_lanes, to_slices, unpack_lanes
from protocols.circuits import (
    all_ones,
    all_ones_gates,
    borrow_out,
    borrow_out_gates,
    borrow_prefix,
    generate_propagate,
    run_circuits,
    suffix_or,
)
from protocols.material import KINDS
from protocols.opening import open_xor, reveal_int
from protocols.sharing import split
from tests.protocols.nonlinear_support import PARTIES, RINGS, xor_split
from tests.support import rounds_of


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 300), st.integers(1, 2), st.integers(0, 2**32))
def test_bit_slicing_round_trips(n: int, words: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**64, (n, words), dtype=np.uint64)
    rows = to_slices(x)
    assert rows.shape == (64 * words, lanes(n))
    e, i = int(rng.integers(n)), int(rng.integers(64 * words))
    assert (int(rows[i, e // 64]) >> (e % 64)) & 1 == (int(x[e, i // 64]) >> (i % 64)) & 1
    assert np.array_equal(from_slices(rows, n), x)
    bits = rng.integers(0, 2, n)
    assert np.array_equal(unpack_lanes(pack_lanes(bits), n), bits)


def _plain_bits(values: np.ndarray, width: int) -> np.ndarray:
    """(width, count) 0/1 matrix of the low bits of unsigned integers."""
    return np.array([[(int(v) >> i) & 1 for v in values] for i in range(width)], dtype=np.int64)


@pytest.mark.parametrize("n", PARTIES)
def test_circuits_match_plaintext(n: int) -> None:
    rng = np.random.default_rng(n)
    count, width = 200, 37
    c = rng.integers(0, 2**width, count, dtype=np.uint64)
    r = rng.integers(0, 2**width, count, dtype=np.uint64)
    r[:3] = c[:3]  # ties
    c_rows = to_slices(c.reshape(-1, 1))[:width]
    r_shares = xor_split(to_slices(r.reshape(-1, 1))[:width], n, n)

    def program(ctx: PartyContext, r_rows: np.ndarray) -> dict[str, Any]:
        g, p = generate_propagate(ctx, c_rows, r_rows)
        out: dict[str, Any] = {}
        out["lt"], out["lt_rounds"] = rounds_of(ctx, lambda: borrow_out(ctx, g, p))
        out["prefix"], out["prefix_rounds"] = rounds_of(ctx, lambda: borrow_prefix(ctx, g, p))
        out["or"], out["or_rounds"] = rounds_of(ctx, lambda: suffix_or(ctx, r_rows))
        out["all"], out["all_rounds"] = rounds_of(ctx, lambda: all_ones(ctx, r_rows))
        both, out["side_by_side_rounds"] = rounds_of(
            ctx, lambda: run_circuits(ctx, [borrow_out_gates(g, p), all_ones_gates(r_rows)])
        )
        out["same"] = [
            np.array_equal(w, v) for w, v in zip(open_xor(ctx, both), open_xor(ctx, [out["lt"], out["all"]]))
        ]
        for key in ("lt", "prefix", "or", "all"):
            (out[key],) = open_xor(ctx, [out[key]])
        return out

    out = run_parties(n, program, args=r_shares, kinds=KINDS)[0]
    assert list(unpack_lanes(out["lt"], count)) == [int(u < v) for u, v in zip(c, r)]
    rb = _plain_bits(r, width)
    prefix = np.stack([unpack_lanes(row, count) for row in out["prefix"]])
    mask = (1 << np.arange(1, width + 1, dtype=object)) - 1
    want_prefix = [[int((int(u) & int(m)) < (int(v) & int(m))) for u, v in zip(c, r)] for m in mask]
    assert prefix.tolist() == want_prefix
    suffix = np.stack([unpack_lanes(row, count) for row in out["or"]])
    assert suffix.tolist() == [[int(any(rb[j:, e])) for e in range(count)] for j in range(width)]
    assert list(unpack_lanes(out["all"], count)) == [int(all(rb[:, e])) for e in range(count)]
    assert out["same"] == [True, True]
    assert out["lt_rounds"] == out["prefix_rounds"] == out["or_rounds"] == out["all_rounds"] == 3  # ceil(log4 64)
    assert out["side_by_side_rounds"] == 3


@pytest.mark.parametrize("fp", RINGS)
def test_bit_decomposition_leading_one_and_lanes(fp: FixedPoint) -> None:
    rng = np.random.default_rng(3)
    k = fp.ring.bits
    vals = [int(v) << (k - 64) | int(w) for v, w in zip(rng.integers(0, 2**62, 120), rng.integers(0, 2**60, 120))]
    vals[:5] = [0, 1, 2 ** (k - 1), 2**k - 1, 2 ** (k - 1) - 1]
    shares = [Share(p, fp.ring, 0) for p in split(fp.ring, fp.ring.reduce(np.array(vals, dtype=object)), 3)]

    def program(ctx: PartyContext, x: Share) -> tuple[Any, ...]:
        bits, r1 = rounds_of(ctx, lambda: bit_decompose(ctx, x))
        lead, r2 = rounds_of(ctx, lambda: leading_one(ctx, bits))
        lanes_, r3 = rounds_of(ctx, lambda: lanes_to_arith(ctx, bits, [(0, 0), (bits.shape[1] - 1, 63)], fp.ring))
        low, r4 = rounds_of(ctx, lambda: decompose_rows(ctx, x, 20))
        return (*open_xor(ctx, [bits, lead, low]), r1, r2, r3, r4, reveal_int(ctx, lanes_))

    bits, lead, low, r1, r2, r3, r4, lanes_ = run_parties(3, program, args=shares, kinds=KINDS)[0]
    words = bits.shape[1]
    assert [sum(int(bits[i, w]) << (64 * w) for w in range(words)) for i in range(len(vals))] == vals
    assert [sum(int(lead[i, w]) << (64 * w) for w in range(words)) for i in range(len(vals))] == [
        1 << (v.bit_length() - 1) if v else 0 for v in vals
    ]
    assert [[int(t) for t in row] for row in lanes_] == [[v & 1, v >> (k - 1)] for v in vals]
    assert [
        sum(int(b) << i for i, b in enumerate(unpack_lanes(row, len(vals))[e] for row in low)) for e in range(len(vals))
    ] == [v & (2**20 - 1) for v in vals]
    # bits: 1 + ceil(log4 (w - 1)) rounds; leading one: ceil(log4 w)
    assert (r1, r2, r3, r4) == ((4, 3, 1, 4) if fp.ring.native else (5, 4, 1, 4))
