"""CROSSTAB in MPC: pooled cell counts, margins and total, released by the rule of `queries.crosstab_rule`.

Every flag of the rule is computed on shares; the analyst reconstructs only the numbers the
rule releases and four bits (cells, row margins, column margins, total suppressed), never
which cell or margin is small. With (lo, k, t) from `queries.crosstab_rule.thresholds`:

1. Each party shares its r x c cell counts as integers in Z_2^64 (no round with pairwise
   seeds); the pooled cells are the sum of the sharings, the margins and the total sums
   of those (local).
2. One batched comparison: [x < k] for every cell, [x < t] for every margin and the total,
   and, when zeros are released, [x < 1] = [x == 0] for all of them (counts are
   non-negative integers). small = [x < threshold] - [x < 1] (or [x < threshold]): local.
3. keep bit per part: keep = prod (1 - small) over the cells, over the row margins, over
   the column margins (a balanced tree of products, each level of every part in one
   round; past COMPARE_ROUNDS levels, keep = [sum small < 1] by one comparison instead);
   keep = 1 - small for the total.
4. Release: every number times its part's keep bit (one round: integers times bits,
   exact), with the four bits 1 - keep.

Rounds (`rounds`): 5 (comparison) + min(ceil(log2(r c)), 5) + 1 — 8 for 2 x 2, 10 for
3 x 3, at most 11 — plus one for step 1 where parties hold no pairwise seeds.

When no cell is small the analyst shows the margins and total as the sums of the released
cells (`queries.result`); the margin bits it then also receives are functions of those
cells, so they tell nothing more.
"""

from __future__ import annotations

import math

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.arith import add_public
from protocols.beaver import mul_many
from protocols.circuits import levels
from protocols.compare import ltz, not_bit
from protocols.sharing import share_inputs
from queries.crosstab_rule import thresholds
from queries.local import LocalData, partials
from queries.plan import Plan

COMPARE_ROUNDS = levels(63) + 2
"""Rounds of one batched comparison in Z_2^64 (`protocols.compare`): the opening, the comparator's
levels over 63 bits (`protocols.circuits.levels`: 3), the conversion; 5."""


def shape(plan: Plan) -> tuple[int, int]:
    """(rows, columns) of the plan's table: the sizes of the two grouping domains ((0, 0) if either is empty)."""
    r = len(dict.fromkeys(key[0] for key in plan.group_keys))
    return (r, plan.groups // r) if r else (0, 0)


def rounds(r: int, c: int) -> int:
    """Rounds of `crosstab` for an r x c table, its inputs shared by pairwise seeds (as nodes do)."""
    depth = math.ceil(math.log2(r * c)) if r * c > 1 else 0
    return COMPARE_ROUNDS + min(depth, COMPARE_ROUNDS) + 1


def crosstab(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """This party's shares of [released counts (cells by row, row margins, column margins,
    total), suppressed bits (cells, row margins, column margins, total)]."""
    r, c = shape(plan)
    ring = ctx.fixed.ring
    mine = np.rint(partials(plan, local)[0]).astype(np.int64)
    sharings = share_inputs(ctx, mine, ring, 0, "crosstab-cells")
    cells = sharings[0]
    for other in sharings[1:]:
        cells = cells + other
    grid = cells.data.reshape(r, c)
    parts = [
        cells,
        Share(ring.sum(grid, axis=1), ring, 0),
        Share(ring.sum(grid, axis=0), ring, 0),
        Share(ring.sum(cells.data).reshape(1), ring, 0),
    ]
    small = _small(ctx, parts, plan.min_cell, plan.release_zero)
    keep = keep_bits(ctx, small[:3]) + [not_bit(ctx, small[3])]
    spread = concat([Share(np.repeat(bit.data, part.size), ring, 0) for bit, part in zip(keep, parts)])
    (released,) = mul_many(ctx, [(concat(parts), spread)])
    return [released, not_bit(ctx, concat(keep))]


def _small(ctx: PartyContext, parts: list[Share], k: int, release_zero: bool) -> list[Share]:
    """[lo <= x < threshold] for every number of every part, from one batched comparison."""
    lo, _, t = thresholds(k, release_zero)
    everything = concat(parts)
    limits = np.concatenate([np.full(p.size, float(k if i == 0 else t)) for i, p in enumerate(parts)])
    tested = [add_public(ctx, everything, -limits)]
    if lo:
        tested.append(add_public(ctx, everything, -1.0))
    below = split_like(ltz(ctx, concat(tested)), tested)
    flags = below[0] - below[1] if lo else below[0]  # [x < 1] implies [x < threshold]
    return split_like(flags, parts)


def keep_bits(ctx: PartyContext, groups: list[Share]) -> list[Share]:
    """[no bit of the group is set] for each group of 0/1 shares (1 for an empty group)."""
    groups = [g if g.size else Share(g.ring.zeros((1,)), g.ring, 0) for g in groups]
    longest = max(g.size for g in groups)
    if longest > 1 and math.ceil(math.log2(longest)) > COMPARE_ROUNDS:
        sums = [Share(g.ring.sum(g.data).reshape(1), g.ring, 0) for g in groups]
        shifted = [add_public(ctx, s, -1.0) for s in sums]
        return split_like(ltz(ctx, concat(shifted)), shifted)
    level = [not_bit(ctx, g) for g in groups]
    while any(g.size > 1 for g in level):
        halves = [g.size // 2 for g in level]
        pairs = [(g[:h], g[h : 2 * h]) for g, h in zip(level, halves) if h]
        products = iter(mul_many(ctx, pairs))
        level = [concat([next(products), g[2 * h :]]) if h else g for g, h in zip(level, halves)]
    return level
