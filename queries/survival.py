"""SURVIVAL in MPC: each party's counts on the public time grid, the checks, and the released curve.

Every party works on its own complete cases (rows with a NULL time, event or group are dropped,
as incomplete cases). A time t counts at grid point j = ceil(t / w) (w the EVERY width, 1 by
default), shown as the time j w.

1. Checks, in one batched sign and zero test on the pooled sums of each party's counts (only
   the yes/no bits are opened): no negative (or infinite) time, every event 0 or 1, the grid
   size G = the least 2^b (b in `GRID_EXPONENTS`) beyond which no time lies — only that power
   of two is opened, as the models open the power of two above a column's maximum — at least
   k patients and at least k events in all. A failed check refuses the query (`queries.errors`).
2. Each party shares, per group and grid point, its events d and the patients leaving the
   risk set (events and censored); the pooled sums are added in shares, and the numbers at
   risk are suffix sums of the leaving counts (local).
3. One batched sign and zero test: [d < k] per group and grid point (the release rule), the
   zero tests the Kaplan-Meier and log-rank denominators need, and per group [patients < k],
   [events < k] and their zero tests.
4. `protocols.survival`: the Kaplan-Meier sums (log S and Greenwood's sum) per group and
   point, and with BY the log-rank chi2 (withheld, by a product of bits, if a group with
   patients has fewer than k patients or 1..k-1 events).
5. Release (one round of products): per group and grid point the released bit r = [d >= k]
   and r n, r d, r log S, r V, r dead; per group patients and events times their keep bits,
   and the bits; chi2 times its keep bit, and that bit. The analyst builds the table
   (`queries.survival_result`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.arith import add_public
from protocols.beaver import mul_many
from protocols.compare import not_bit, signs_and_zeros
from protocols.opening import open_arith
from protocols.sharing import share_inputs
from protocols.survival import kaplan_meier, logrank_parts, quadratic_form, suffix_sums
from queries import ir
from queries.errors import BadSurvivalData, OutOfRange, TooFewCases, TooFewEvents
from queries.plan import Plan
from queries.table import numeric

GRID_EXPONENTS = tuple(range(4, 13))
"""Grid sizes 2^b the parties may settle on: 16 to 4096 points."""


def grid_points(times: np.ndarray, every: float) -> np.ndarray:
    """The grid point of each time: ceil(t / w), with t / w rounded to 9 decimals first so that
    a time on a grid line (0.3 with w = 0.1) is not pushed to the next point by rounding."""
    return np.ceil(np.minimum(np.round(times / every, 9), 2.0**62)).astype(np.int64)  # capped: no int64 overflow


def complete_cases(plan: Plan, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, events, group index) of this party's complete cases; a row whose group is not a
    level of the plan (none can be: the levels are every party's values) is dropped."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Survival)
    time, event = numeric(frame, stmt.time), numeric(frame, stmt.event)
    keep = ~(np.isnan(time) | np.isnan(event))
    group = np.zeros(len(frame), dtype=np.int64)
    if stmt.group is not None:
        values = frame[stmt.group].astype(object).to_numpy()
        index = {key[0]: g for g, key in enumerate(plan.group_keys)}
        group = np.array([index.get(_plain(v), -1) if not pd.isna(v) else -1 for v in values], dtype=np.int64)
        keep &= group >= 0
    return time[keep], event[keep], group[keep]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_counts(plan: Plan, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """[bad times, bad events, rows beyond 2^b for each b, patients, events] at this party."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Survival)
    bad_time = ~np.isfinite(time) | (time < 0)
    bad_event = ~np.isin(event, (0.0, 1.0))
    fine = ~bad_time
    points = grid_points(np.where(fine, time, 0.0), stmt.every)
    beyond = [int(np.count_nonzero(fine & (points >= (1 << b)))) for b in GRID_EXPONENTS]
    return np.array([bad_time.sum(), bad_event.sum(), *beyond, len(time), int((event == 1).sum())], dtype=np.int64)


def grid_refusal(statement: str, time: str, event: str, every: float, ok_time: bool, ok_event: bool,
                 fits: list[int]) -> Exception | None:
    """The refusal the opened grid checks call for (`statement`: SURVIVAL or COX), or None: a negative
    or infinite time, an event other than 0/1, or no grid size (`GRID_EXPONENTS`) holding every time."""
    if not ok_time:
        return BadSurvivalData(f"{statement} needs times of 0 or more; some {time!r} is negative or infinite; "
                               "nothing is released")
    if not ok_event:
        return BadSurvivalData(f"{statement} needs an event column of 0 (censored) or 1 (event); some {event!r} "
                               "is neither; nothing is released")
    if not any(fits):
        most = 1 << GRID_EXPONENTS[-1]
        return OutOfRange(f"a time lies beyond the grid's {most} points (times up to {(most - 1) * every:g}); "
                          "coarsen it with EVERY w; nothing is released")
    return None


def _grid(ctx: PartyContext, plan: Plan, mine: np.ndarray) -> int | Exception:
    """The public grid size from the pooled checks (step 1), or the refusal."""
    ring = ctx.precise.ring
    total = None
    for s in share_inputs(ctx, mine, ring, 0, "survival-checks"):
        total = s if total is None else total + s
    assert total is not None
    k = plan.min_cell
    zeros = total[: 2 + len(GRID_EXPONENTS)]
    below, zero = signs_and_zeros(ctx, add_public(ctx, total[-2:], -k), zeros)
    bits = [int(v) for v in open_arith(ctx, [concat([zero, below])], "survival-checks")[0]]
    ok_time, ok_event, fits, few = bits[0], bits[1], bits[2 : 2 + len(GRID_EXPONENTS)], bits[-2:]
    stmt = plan.statement
    assert isinstance(stmt, ir.Survival)
    refused = grid_refusal("SURVIVAL", stmt.time, stmt.event, stmt.every, bool(ok_time), bool(ok_event), fits)
    if refused is not None:
        return refused
    if few[0]:
        return TooFewCases(f"fewer than {k} complete cases; nothing is released")
    if few[1]:
        return TooFewEvents(f"fewer than {k} events in all; nothing is released")
    return 1 << GRID_EXPONENTS[fits.index(1)]


def local_counts(plan: Plan, time: np.ndarray, event: np.ndarray, group: np.ndarray, grid: int) -> np.ndarray:
    """[events; leaving] per group and grid point at this party, shape (2, groups, grid)."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Survival)
    out = np.zeros((2, plan.groups, grid), dtype=np.int64)
    points = grid_points(time, stmt.every)
    np.add.at(out[0], (group[event == 1], points[event == 1]), 1)
    np.add.at(out[1], (group, points), 1)
    return out


def execute(ctx: PartyContext, plan: Plan, kept: pd.DataFrame) -> tuple[list[Share], dict[str, Any]]:
    """This party's shares of the released values (step 5's order) and the public facts (the grid size)."""
    time, event, group = complete_cases(plan, kept)
    grid = _grid(ctx, plan, _check_counts(plan, time, event))
    if isinstance(grid, Exception):
        return [], {"refused": str(grid), "refusal": getattr(grid, "reason", "refused")}
    ring = ctx.precise.ring
    k, groups = plan.min_cell, plan.groups
    total = None
    for s in share_inputs(ctx, local_counts(plan, time, event, group, grid), ring, 0, "survival-counts"):
        total = s if total is None else total + s
    assert total is not None
    d, n = total[0], suffix_sums(total[1])
    patients = Share(n.data[:, 0].copy(), ring, 0)
    events = Share(ring.sum(d.data, axis=1), ring, 0)
    pooled_n = Share(ring.sum(n.data, axis=0), ring, 0)
    signs = [add_public(ctx, d, -k), add_public(ctx, patients, -k), add_public(ctx, events, -k)]
    zeros = [n, n - d, pooled_n, add_public(ctx, pooled_n, -1), patients, events]
    below, zero = signs_and_zeros(ctx, concat([s.reshape(s.size) for s in signs]),
                                 concat([z.reshape(z.size) for z in zeros]))
    small_d, small_p, small_e = split_like(below, [s.reshape(s.size) for s in signs])
    empty, gone, none, single, no_patients, no_events = [
        z.reshape(*like.shape) for z, like in zip(split_like(zero, [z.reshape(z.size) for z in zeros]), zeros)]
    if plan.release_zero:  # a count of 0 is released: small means 1..k-1
        small_p, small_e = small_p - no_patients, small_e - no_events
    by = groups > 1
    more = concat([pooled_n + none, add_public(ctx, pooled_n, -1) + none.scale_int(2) + single]) if by else None
    curve = kaplan_meier(ctx, n, d, empty, gone, more)
    released = not_bit(ctx, small_d).reshape(groups, grid)
    keep_p, keep_e = not_bit(ctx, small_p), not_bit(ctx, small_e)
    pairs = [(n, released), (d, released), (curve.log_survival, released), (curve.greenwood, released),
             (curve.dead, released), (patients, keep_p), (events, keep_e)]
    tail: list[Share] = []
    if by:
        assert curve.reciprocals is not None
        inv_n, inv_m = split_like(curve.reciprocals, [pooled_n, pooled_n])
        z, v = logrank_parts(ctx, n, d, inv_n, inv_m, single, no_patients)
        chi2 = quadratic_form(ctx, v, z)
        keep = _all(ctx, concat([keep_p, keep_e]))
        pairs.append((chi2, keep))
        tail = [not_bit(ctx, keep)]
    out = mul_many(ctx, pairs)
    return [released, *out[:7], small_p, small_e, *out[7:], *tail], {"grid": grid}


def _all(ctx: PartyContext, bits: Share) -> Share:
    """[every bit is 1], shape (1,): a tree of products, one round per level."""
    level = bits
    while level.size > 1:
        half = level.size // 2
        (prod,) = mul_many(ctx, [(level[:half], level[half : 2 * half])])
        level = concat([prod, level[2 * half :]])
    return level
