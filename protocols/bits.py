"""Bit decomposition of shared values, and turning chosen bits back into arithmetic shares.

Normalising a value (for reciprocal, square root, log) and splitting it into integer and
fractional parts (for exp, sigmoid) need its bits. `bit_decompose` opens x masked by a
dealer mask r whose bits the parties hold XOR-shared, and recomputes x = c - r bit by
bit: the borrow into every bit comes from a parallel-prefix circuit
(`protocols.circuits.borrow_prefix`), three rounds in Z_2^64, four in Z_2^128.
`leading_one` marks the highest set bit with a suffix OR; `rows_to_arith` and
`lanes_to_arith` convert chosen bits to additive shares with one opening of daBits.

The `_rows` functions work in the bit-sliced layout of `protocols.boolean` (row i holds
bit i of every element) that the circuits use; the others take and return per-element
words, shape (n, k / 64), low word first.

References: Damgard et al., TCC 2006 (bit decomposition from a bitwise-shared mask);
Sklansky (1960) (parallel prefix); Rotaru & Wood, INDOCRYPT 2019 (daBits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.material import Component, MaterialKind, MaterialRequest, Secrets
from mpc.ring import Ring, ring_of
from mpc.share import Share
from protocols.boolean import from_opened_bit, from_slices, lanes, to_slices, unpack_lanes
from protocols.circuits import Circuit, borrow_prefix_gates, generate_propagate, run_circuits, suffix_or
from protocols.masks import to_words
from protocols.opening import open_arith, open_xor


def masked(ctx: PartyContext, x: Share, label: str = "bits-open") -> tuple[np.ndarray, Mapping[str, np.ndarray]]:
    """Open c = x + r for a dealer mask r (`cmp_mask`, one round): the public c, and the mask.

    The mask holds r's bits as XOR-shared rows (`r_bits`) and a daBit per element.
    """
    ring = x.ring
    flat = x.data.ravel()
    mat = ctx.dealer(MaterialRequest("cmp_mask", {"shape": [int(flat.size)], "ring": ring.bits}))
    (c,) = open_arith(ctx, [Share(ring.add(flat, mat["r"]), ring)], label)
    return c, mat


def rows_of(ring: Ring, values: np.ndarray) -> np.ndarray:
    """Public ring elements as bit-sliced rows (k rows)."""
    return to_slices(to_words(ring, values))


def low_bits(ctx: PartyContext, c_rows: np.ndarray, r_rows: np.ndarray, width: int) -> Circuit:
    """The circuit giving bits 0..width-1 of c - r: ceil(log4(width - 1)) levels.

    Borrow out of every bit by the prefix circuit over (g, p) = (r AND NOT c,
    NOT (r XOR c)) on bits 0..width-2; then bit i = c_i XOR r_i XOR borrow_(i-1).
    """
    bits = r_rows[:width].copy()
    if width > 1:
        g, p = generate_propagate(ctx, c_rows[: width - 1], r_rows[: width - 1])
        borrows = yield from borrow_prefix_gates(g, p)
        bits[1:] ^= borrows
    if ctx.is_leader:
        bits ^= c_rows[:width]
    return bits


def decompose_rows(ctx: PartyContext, x: Share, width: int | None = None) -> np.ndarray:
    """XOR-shared bits 0..width-1 (default: all k) of x read unsigned, as bit-sliced rows.

    1. Open c = x + r (r from the dealer, with its bits XOR-shared).
    2. x = c - r bit by bit (`low_bits`).
    Rounds: 4 in Z_2^64, 5 in Z_2^128 (fewer for a small width: 1 + ceil(log4(width - 1))).
    """
    c, mat = masked(ctx, x)
    circuit = low_bits(ctx, rows_of(x.ring, c), mat["r_bits"], width or x.ring.bits)
    return run_circuits(ctx, [circuit], "bits-level")[0]


def bit_decompose(ctx: PartyContext, x: Share) -> np.ndarray:
    """XOR-shared bits of x (read unsigned), packed: shape (n, words), low word first.

    `decompose_rows`, returned per element. Rounds: 7 in Z_2^64, 8 in Z_2^128.
    """
    return from_slices(decompose_rows(ctx, x), x.size)


def leading_one_rows(ctx: PartyContext, rows: np.ndarray) -> np.ndarray:
    """XOR-shared one-hot rows marking each element's highest set bit (none if zero).

    Suffix OR from the top, m_i = OR_{j >= i} x_j (ceil(log4 w) rounds), then the one-hot
    is m_i XOR m_(i+1).
    """
    m = suffix_or(ctx, rows, "lead-level")
    onehot = m.copy()
    onehot[:-1] ^= m[1:]
    return onehot


def leading_one(ctx: PartyContext, bits: np.ndarray) -> np.ndarray:
    """XOR-shared one-hot words marking the highest set bit (all zero if none). 3-4 rounds."""
    n = bits.shape[0]
    return from_slices(leading_one_rows(ctx, to_slices(bits)), n)


def _dabits_free(p: dict[str, Any]) -> list[Component]:
    return [Component("s", "xor", (int(p["rows"]), lanes(int(p["n"]))))]


def _dabits_derived(p: dict[str, Any]) -> list[Component]:
    return [Component("s_arith", "arith", (int(p["rows"]), int(p["n"])), int(p.get("ring", 64)))]


def _dabits_derive(p: dict[str, Any], s: Secrets) -> Secrets:
    ring = ring_of(int(p.get("ring", 64)))
    n = int(p["n"])
    bits = np.stack([unpack_lanes(row, n) for row in s["s"]]) if len(s["s"]) else np.zeros((0, n), np.uint64)
    return {"s_arith": ring.reduce(bits if ring.native else bits.astype(object))}


DABIT_ROWS = MaterialKind("dabit_rows", _dabits_free, _dabits_derived, _dabits_derive)
"""daBits for bit-sliced rows: random rows XOR-shared, and each bit additively shared."""


def rows_to_arith(ctx: PartyContext, rows: np.ndarray, n: int, ring: Ring) -> Share:
    """Additive 0/1 shares of XOR-shared bit-sliced rows, shape (rows, n). One round.

    With random rows s (XOR-shared) and [s] additive from the dealer:
    1. Open e = rows XOR s (one bit per element and row).
    2. [b] = e + [s] - 2 e [s].
    """
    pending = PendingRowsToArith.begin(ctx, rows, n, ring)
    return pending.finish(ctx, open_xor(ctx, pending.words(), "rows-open"))


class PendingRowsToArith:
    """`rows_to_arith` in two halves, for protocols that open other values in the same round."""

    def __init__(self, rows: np.ndarray, n: int, ring: Ring, mat: Mapping[str, np.ndarray]) -> None:
        self._rows, self._n, self._ring, self._mat = rows, n, ring, mat

    @staticmethod
    def begin(ctx: PartyContext, rows: np.ndarray, n: int, ring: Ring) -> PendingRowsToArith:
        mat = ctx.dealer(MaterialRequest("dabit_rows", {"n": n, "rows": int(rows.shape[0]), "ring": ring.bits}))
        return PendingRowsToArith(rows, n, ring, mat)

    def words(self) -> list[np.ndarray]:
        """The masked rows to open: rows XOR s."""
        return [self._rows ^ self._mat["s"]]

    def opened_bits(self, opened: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The public e, shape (rows, n), and this party's additive [s], for callers that only
        need sums of the bits (sum [b] = sum e + sum (1 - 2e) [s], no per-element array)."""
        (e,) = opened
        count = int(self._rows.shape[0])
        e_bits = np.stack([unpack_lanes(row, self._n) for row in e]) if count else np.zeros((0, self._n), np.uint64)
        return e_bits, self._mat["s_arith"]

    def finish(self, ctx: PartyContext, opened: Sequence[np.ndarray]) -> Share:
        e_bits, s_arith = self.opened_bits(opened)
        return Share(from_opened_bit(ctx, e_bits, self._ring, s_arith), self._ring, 0)


def lanes_to_arith(ctx: PartyContext, bits: np.ndarray, lanes_: Sequence[tuple[int, int]], ring: Ring) -> Share:
    """Additive 0/1 shares of the chosen (word, bit) lanes of XOR-shared words; shape (n, lanes). One round."""
    rows = to_slices(bits)[[64 * w + b for w, b in lanes_]]
    out = rows_to_arith(ctx, rows, bits.shape[0], ring)
    return Share(np.ascontiguousarray(out.data.T), ring, 0)
