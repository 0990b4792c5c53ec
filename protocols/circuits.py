"""Log-depth binary circuits on XOR-shared bit arrays: comparator, AND tree, borrow prefix, suffix OR.

Every circuit here takes XOR-shared bits in the bit-sliced layout of `protocols.boolean`
— an array of shape (w, lanes): row i holds bit i (bit 0 the least significant) of every
element, 64 elements to a word — and spends one round per level; all gates of a level
travel in one message (`protocols.gates.and_families`: gates of up to four inputs, a bit per
variable and peer), so a tree over w rows takes ceil(log4 w) levels (`levels`). The comparator
and the AND tree shrink the number of rows fourfold at every level; the prefix circuits
(Sklansky's layout in radix 4) update three quarters of the rows per level.

Subtraction c - r of a public c and a shared r, bit by bit, is the common case: bit i
*generates* a borrow when r_i = 1 and c_i = 0 (g = r AND NOT c) and *propagates* one
when r_i = c_i (p = NOT (r XOR c)); a span of bits, high part H over low part L, has
G = G_H XOR (P_H AND G_L) and P = P_H AND P_L (the OR is an XOR: G_H = 1 implies P_H = 0);
four spans at once: G = G_3 XOR P_3 G_2 XOR P_3 P_2 G_1 XOR P_3 P_2 P_1 G_0, P = P_3 P_2 P_1 P_0.
The borrow out of the top of the span is [c < r] over those bits.

Each circuit is a generator of its levels (`Circuit`), so that `run_circuits` can run
independent circuits side by side in the same rounds.

References: Kogge & Stone (1973) and Sklansky, "Conditional-sum addition logic" (1960)
for the prefix layouts (here in radix 4); Damgard et al., TCC 2006, for comparison from a bitwise-shared
mask.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from mpc.context import PartyContext
from protocols.boolean import not_public
from protocols.gates import Family, and_families, dealer_words


def generate_propagate(ctx: PartyContext, c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g, p) of c - r for public rows c and shared rows r (local)."""
    g = r & ~c
    p = r ^ ~c if ctx.is_leader else r.copy()
    return g, p


Gates = list[Family]
Circuit = Generator[Gates, list[list[np.ndarray]], np.ndarray]
"""A circuit as a generator: it yields one level's AND gates (families of XOR-shared variables
and the monomials of 2 to 4 of them it wants, `protocols.gates`), receives each family's
monomials, and finally returns its output rows."""

RADIX = 4
"""Inputs combined per gate and level: every tree and prefix here has ceil(log4 w) levels."""


def levels(w: int) -> int:
    """Levels of a tree or prefix over w rows here: ceil(log4 w) (0 for one row)."""
    count, span = 0, 1
    while span < w:
        span *= RADIX
        count += 1
    return count


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
        products = and_families(ctx, [gate for i in order for gate in pending[i]], label)
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


def _groups(w: int) -> list[tuple[int, int]]:
    """Consecutive groups (start, size) of up to RADIX rows covering 0..w-1: full groups, then the rest."""
    return [(start, min(RADIX, w - start)) for start in range(0, w, RADIX)]


def _span_family(gs: list[np.ndarray], ps: list[np.ndarray], need_p: bool) -> Family:
    """The monomials combining spans 0..k-1 (low to high, k <= RADIX) into one:
    G = G_(k-1) XOR P_(k-1) G_(k-2) XOR ... XOR P_(k-1)..P_1 G_0, and P = P_(k-1)..P_0 if `need_p`.
    Variables: G_0..G_(k-2), then P_0..P_(k-1) (each opened once)."""
    k = len(gs)
    p_bit = [1 << (k - 1 + j) for j in range(k)]
    monomials = [sum(p_bit[m + 1 :]) | (1 << m) for m in range(k - 1)]
    if need_p:
        monomials.append(sum(p_bit))
    return Family(tuple(gs[: k - 1]) + tuple(ps), tuple(monomials))


def _combined(g_top: np.ndarray, monomials: list[np.ndarray], need_p: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(G, P) of a combined span from `_span_family`'s monomials."""
    terms = monomials[:-1] if need_p else monomials
    out = g_top.copy()
    for t in terms:
        out ^= t
    return out, (monomials[-1] if need_p else None)


def borrow_out_gates(g: np.ndarray, p: np.ndarray) -> Circuit:
    """[borrow out of the top] of the w-row spans: one row; ceil(log4 w) levels.

    Each level combines groups of up to four adjacent rows by the span rule (`_span_family`;
    only G at the last level); a row left alone passes through.
    """
    while g.shape[0] > 1:
        w = g.shape[0]
        full, rest = w // RADIX, w % RADIX
        last = w <= RADIX
        top = RADIX * full
        families: Gates = []
        if full:
            families.append(_span_family([g[j:top:RADIX] for j in range(RADIX)], [p[j:top:RADIX] for j in range(RADIX)],
                                         not last))
        if rest > 1:
            families.append(_span_family([g[top + j : top + j + 1] for j in range(rest)],
                                         [p[top + j : top + j + 1] for j in range(rest)], not last))
        out = yield families
        pos = 0
        parts_g: list[np.ndarray] = []
        parts_p: list[Any] = []  # None where the last level needs no P
        if full:
            gg, pp = _combined(g[RADIX - 1 : top : RADIX], out[0], not last)
            parts_g.append(gg)
            parts_p.append(pp)
            pos = 1
        if rest > 1:
            gg, pp = _combined(g[w - 1 : w], out[pos], not last)
            parts_g.append(gg)
            parts_p.append(pp)
        elif rest == 1:
            parts_g.append(g[w - 1 : w])
            parts_p.append(p[w - 1 : w])
        if last:
            return parts_g[0][0].copy()
        g, p = np.concatenate(parts_g), np.concatenate(parts_p)
    return g[0].copy()


def borrow_out_words(w: int) -> tuple[int, int]:
    """(words opened per peer, dealer words) per lane of `borrow_out_gates` over w rows: a family
    opens a word per variable and takes a word per dealer product (`protocols.gates`)."""
    opened = dealt = 0
    while w > 1:
        groups = _groups(w)
        for _, size in groups:
            if size > 1:
                family = _span_family([np.zeros(1, np.uint64)] * size, [np.zeros(1, np.uint64)] * size, len(groups) > 1)
                opened += len(family.variables)
                dealt += dealer_words(family)
        w = len(groups)
    return opened, dealt


def borrow_out(ctx: PartyContext, g: np.ndarray, p: np.ndarray, label: str = "cmp-level") -> np.ndarray:
    """XOR-shared [borrow out of the top] of the w-row spans (`borrow_out_gates`); ceil(log4 w) rounds."""
    return run_circuits(ctx, [borrow_out_gates(g, p)], label)[0]


def all_ones_gates(bits: np.ndarray) -> Circuit:
    """AND of the w rows: one row; ceil(log4 w) levels, a gate per group of up to four rows."""
    while bits.shape[0] > 1:
        w = bits.shape[0]
        full, rest = w // RADIX, w % RADIX
        top = RADIX * full
        families: Gates = []
        if full:
            families.append(Family.gate(*(bits[j:top:RADIX] for j in range(RADIX))))
        if rest > 1:
            families.append(Family.gate(*(bits[top + j : top + j + 1] for j in range(rest))))
        out = yield families
        parts = [monomials[0] for monomials in out]
        if rest == 1:
            parts.append(bits[w - 1 : w])
        bits = np.concatenate(parts)
    return bits[0].copy()


def all_ones(ctx: PartyContext, bits: np.ndarray, label: str = "and-tree") -> np.ndarray:
    """XOR-shared AND of the w rows: one row; ceil(log4 w) rounds."""
    return run_circuits(ctx, [all_ones_gates(bits)], label)[0]


def _prefix_levels(w: int) -> list[tuple[int, list[tuple[np.ndarray, list[np.ndarray], bool]]]]:
    """Sklansky's prefix in radix 4. Per level of span s: for each j = 1..3, the rows i in the
    j-th quarter of their 4s-block, the top rows of the quarters 0..j-1 below (t_m, low first),
    and whether the block does not start at row 0 (P still needed)."""
    levels = []
    span = 1
    while span < w:
        parts = []
        block = RADIX * span
        for j in range(1, RADIX):
            for open_ended in (False, True):
                rows = np.array([i for i in range(w) if (i // span) % RADIX == j and (i >= block) == open_ended],
                                dtype=np.int64)
                if rows.size:
                    tops = [(rows // block) * block + (m + 1) * span - 1 for m in range(j)]
                    parts.append((rows, tops, open_ended))
        levels.append((span, parts))
        span *= RADIX
    return levels


def borrow_prefix_gates(g: np.ndarray, p: np.ndarray) -> Circuit:
    """G over rows 0..i for every i (the borrow out of bit i); ceil(log4 w) levels.

    Sklansky in radix 4: at the level of span s, every row in quarter j > 0 of its 4s-block
    combines its span with the full spans of quarters j - 1, ..., 0 (`_span_family`); P is kept
    only while the span does not yet reach row 0.
    """
    g, p = g.copy(), p.copy()
    for _, parts in _prefix_levels(g.shape[0]):
        families = [_span_family([g[t] for t in tops] + [g[rows]], [p[t] for t in tops] + [p[rows]], open_ended)
                    for rows, tops, open_ended in parts]
        out = yield families
        for (rows, _, open_ended), monomials in zip(parts, out):
            g[rows], new_p = _combined(g[rows], monomials, open_ended)
            if new_p is not None:
                p[rows] = new_p
    return g


def borrow_prefix(ctx: PartyContext, g: np.ndarray, p: np.ndarray, label: str = "prefix-level") -> np.ndarray:
    """XOR-shared borrow out of every bit (`borrow_prefix_gates`); ceil(log4 w) rounds."""
    return run_circuits(ctx, [borrow_prefix_gates(g, p)], label)[0]


def suffix_or_gates(ctx: PartyContext, bits: np.ndarray) -> Circuit:
    """OR of rows i..w-1 for every i; ceil(log4 w) levels, one AND per updated row.

    OR is NOT-AND-NOT: the suffix AND of the negated bits is a radix-4 Sklansky prefix over
    the rows read from the top (each row ANDed with the tops of the quarters below it).
    """
    u = not_public(ctx, bits[::-1]).copy()
    for _, parts in _prefix_levels(u.shape[0]):
        out = yield [Family.gate(*(u[t] for t in tops), u[rows]) for rows, tops, _ in parts]
        for (rows, _, _), monomials in zip(parts, out):
            u[rows] = monomials[0]
    return not_public(ctx, u[::-1]).copy()


def suffix_or(ctx: PartyContext, bits: np.ndarray, label: str = "suffix-or") -> np.ndarray:
    """XOR-shared OR of rows i..w-1 for every i (`suffix_or_gates`); ceil(log4 w) rounds."""
    return run_circuits(ctx, [suffix_or_gates(ctx, bits)], label)[0]
