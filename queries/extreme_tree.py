"""Secure MIN and MAX across the parties: every party's local extremes shared, then a tree of
secure minima (a MAX enters negated). The tree's first level runs beside the executor's
disclosure flags and product round (`queries.executor`); the rest follows here."""

from __future__ import annotations

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.select import minimum
from protocols.sharing import share_inputs
from queries.local import LocalData, encode_private, extremes
from queries.plan import Plan


def extreme_inputs(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """Every party's local extremes, shared (no round: `protocols.sharing.share_inputs`), one
    Share per party holding every (kind, column); a max enters negated, so all are minima."""
    if not plan.extremes:
        return []
    fp = ctx.precise
    local_extremes = zip(extremes(plan, local), plan.extremes)
    rows = [encode_private(fp, row if kind == "min" else -row) for row, (kind, _) in local_extremes]
    return share_inputs(ctx, np.stack(rows), fp.ring, fp.frac, "extremes")


def extreme_pairs(inputs: list[Share]) -> list[tuple[Share, Share]]:
    """The first level of the minimum tree over the parties' inputs: (a, b) pairs, concatenated
    (party j against party half + j); an odd input left over joins the next level."""
    half = len(inputs) // 2
    if not half:
        return []
    return [(concat(inputs[:half]), concat(inputs[half : 2 * half]))]


def tree_extremes(ctx: PartyContext, plan: Plan, level: list[Share]) -> dict[tuple[str, str], Share]:
    """Secure min/max across parties, every (kind, column) batched, from the minimum tree's
    level after its first (`extreme_pairs`, whose comparisons run with the disclosure flags
    and whose selections run in the NULL denominators' product round)."""
    if not plan.extremes:
        return {}
    inputs = level
    while len(inputs) > 1:
        half = len(inputs) // 2
        merged = split_like(minimum(ctx, concat(inputs[:half]), concat(inputs[half : 2 * half])), inputs[:half])
        inputs = merged + inputs[2 * half :]
    best = inputs[0]
    out = {}
    for j, (kind, col) in enumerate(plan.extremes):
        value = best[j]
        out[(kind, col)] = value if kind == "min" else -value
    return out
