"""Log-depth binary circuits on XOR-shared bit arrays: comparator, AND tree, borrow prefix, suffix OR.

Every circuit here takes XOR-shared bits in the bit-sliced layout of `protocols.boolean`
— an array of shape (w, lanes): row i holds bit i (bit 0 the least significant) of every
element, 64 elements to a word — and spends one round per level; all gates of a level
travel in one message (`protocols.boolean.and_many`), two bits per AND per peer. The
comparator and the AND tree halve the number of rows at every level, so their ~2w gates
cost about w / 2 bytes per element per peer in all; the prefix circuits (Sklansky's
layout) keep w / 2 to w gates per level.

Subtraction c - r of a public c and a shared r, bit by bit, is the common case: bit i
*generates* a borrow when r_i = 1 and c_i = 0 (g = r AND NOT c) and *propagates* one
when r_i = c_i (p = NOT (r XOR c)); a span of bits, high part H over low part L, has
G = G_H XOR (P_H AND G_L) and P = P_H AND P_L (the OR is an XOR: G_H = 1 implies P_H = 0).
The borrow out of the top of the span is [c < r] over those bits.

Each circuit is a generator of its levels (`Circuit`), so that `run_circuits` can run
independent circuits side by side in the same rounds.

References: Kogge & Stone (1973) and Sklansky, "Conditional-sum addition logic" (1960)
for the prefix layouts; Damgard et al., TCC 2006, for comparison from a bitwise-shared
mask.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np

from mpc.context import PartyContext
from protocols.boolean import and_many, not_public


def generate_propagate(ctx: PartyContext, c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g, p) of c - r for public rows c and shared rows r (local)."""
    g = r & ~c
    p = r ^ ~c if ctx.is_leader else r.copy()
    return g, p


Gates = list[tuple[np.ndarray, np.ndarray]]
Circuit = Generator[Gates, list[np.ndarray], np.ndarray]
"""A circuit as a generator: it yields one level's AND gates (pairs of XOR-shared word
arrays), receives their products, and finally returns its output rows."""


def run_circuits(ctx: PartyContext, circuits: Sequence[Circuit], label: str = "circuit-level") -> list[np.ndarray]:
    """Run circuits side by side: one round per level, the gates of every circuit's level together.

    The rounds taken are those of the deepest circuit; the shallower ones finish early.
    """
    results: list[np.ndarray | None] = [None] * len(circuits)
    pending: dict[int, Gates] = {}
    for i, circuit in enumerate(circuits):
        try:
            pending[i] = next(circuit)
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        order = sorted(pending)
        products = and_many(ctx, [pair for i in order for pair in pending[i]], label)
        following: dict[int, Gates] = {}
        pos = 0
        for i in order:
            got = products[pos : pos + len(pending[i])]
            pos += len(pending[i])
            try:
                following[i] = circuits[i].send(got)
            except StopIteration as stop:
                results[i] = stop.value
        pending = following
    return [r for r in results if r is not None]


def borrow_out_gates(g: np.ndarray, p: np.ndarray) -> Circuit:
    """[borrow out of the top] of the w-row spans: one row; ceil(log2 w) levels.

    Each level pairs row 2j + 1 (high) with row 2j (low) by the span rule (two ANDs; only
    G at the last level); an unpaired top row passes through.
    """
    while g.shape[0] > 1:
        w = g.shape[0]
        top = 2 * (w // 2)
        g_hi, p_hi, g_lo, p_lo = g[1:top:2], p[1:top:2], g[0:top:2], p[0:top:2]
        if w == 2:
            (pg,) = yield [(p_hi, g_lo)]
            return (g_hi ^ pg)[0]
        pg, pp = yield [(p_hi, g_lo), (p_hi, p_lo)]
        g_next, p_next = g_hi ^ pg, pp
        if w % 2:
            g_next, p_next = np.concatenate([g_next, g[-1:]]), np.concatenate([p_next, p[-1:]])
        g, p = g_next, p_next
    return g[0].copy()


def borrow_out(ctx: PartyContext, g: np.ndarray, p: np.ndarray, label: str = "cmp-level") -> np.ndarray:
    """XOR-shared [borrow out of the top] of the w-row spans (`borrow_out_gates`); ceil(log2 w) rounds."""
    return run_circuits(ctx, [borrow_out_gates(g, p)], label)[0]


def all_ones_gates(bits: np.ndarray) -> Circuit:
    """AND of the w rows: one row; ceil(log2 w) levels, halving each time."""
    while bits.shape[0] > 1:
        w = bits.shape[0]
        top = 2 * (w // 2)
        (z,) = yield [(bits[1:top:2], bits[0:top:2])]
        bits = np.concatenate([z, bits[-1:]]) if w % 2 else z
    return bits[0].copy()


def all_ones(ctx: PartyContext, bits: np.ndarray, label: str = "and-tree") -> np.ndarray:
    """XOR-shared AND of the w rows: one row; ceil(log2 w) rounds."""
    return run_circuits(ctx, [all_ones_gates(bits)], label)[0]


def _sklansky_levels(w: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per level: the rows updated, their source rows, and which of them still need P."""
    levels = []
    span = 1
    while span < w:
        rows = np.array([i for i in range(w) if i & span], dtype=np.int64)
        src = (rows // (2 * span)) * (2 * span) + span - 1
        open_ended = rows >= 2 * span  # the span does not reach row 0 yet: P still needed
        levels.append((rows, src, open_ended))
        span *= 2
    return levels


def borrow_prefix_gates(g: np.ndarray, p: np.ndarray) -> Circuit:
    """G over rows 0..i for every i (the borrow out of bit i); ceil(log2 w) levels.

    Sklansky: at the level of span s, every row with bit s of its index set combines with
    the top row of the lower half of its 2s-block; P is kept only while the span does not
    yet reach row 0.
    """
    g, p = g.copy(), p.copy()
    for rows, src, open_ended in _sklansky_levels(g.shape[0]):
        keep, keep_src = rows[open_ended], src[open_ended]
        pg, pp = yield [(p[rows], g[src]), (p[keep], p[keep_src])]
        g[rows] ^= pg
        p[keep] = pp
    return g


def borrow_prefix(ctx: PartyContext, g: np.ndarray, p: np.ndarray, label: str = "prefix-level") -> np.ndarray:
    """XOR-shared borrow out of every bit (`borrow_prefix_gates`); ceil(log2 w) rounds."""
    return run_circuits(ctx, [borrow_prefix_gates(g, p)], label)[0]


def suffix_or_gates(ctx: PartyContext, bits: np.ndarray) -> Circuit:
    """OR of rows i..w-1 for every i; ceil(log2 w) levels, one AND per updated row.

    OR is NOT-AND-NOT: the suffix AND of the negated bits is a Sklansky prefix over the
    rows read from the top.
    """
    u = not_public(ctx, bits[::-1]).copy()
    for rows, src, _ in _sklansky_levels(u.shape[0]):
        (z,) = yield [(u[rows], u[src])]
        u[rows] = z
    return not_public(ctx, u[::-1]).copy()


def suffix_or(ctx: PartyContext, bits: np.ndarray, label: str = "suffix-or") -> np.ndarray:
    """XOR-shared OR of rows i..w-1 for every i (`suffix_or_gates`); ceil(log2 w) rounds."""
    return run_circuits(ctx, [suffix_or_gates(ctx, bits)], label)[0]
