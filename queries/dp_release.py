"""The MPC half of a query under differential privacy: clamped sums, shared, with noise nobody knows.

Every party runs `release` with its own rows (`queries.local.LocalData`); the analyst
reconstructs the noisy statistics (`queries.dp_finish`). Recipe (`queries.dp.Privacy`
names the noised statistics):

1. Local, in plaintext: each value of a bounded column is clamped to the pooled bounds
   [min, max] (`Privacy.bounds`), then per group: the rows, the non-null counts, the sums
   of round(v 2^16) for v = clamp(x), clamp(x) - m or (clamp(x) - m)^2 (m the bounds'
   centre) that the plan's statistics ask for, and a QUANTILE's counts of clamped values in
   each of 128 equal bins over the bounds (CROSSTAB: the cell counts). Each term is
   an integer within the statistic's sensitivity (clipped to it), so the sensitivities
   hold exactly.
2. Every party shares its integer matrix in Z_2^128 (no round with pairwise seeds) and the
   parties add the sharings.
3. One call of `protocols.noise.discrete_laplace` for every statistic of every group at
   once (7 rounds, whatever the number of groups), each with its scale t = sensitivity
   2^frac / epsilon_i; the noise, drawn from every party's own operating-system randomness
   (`word_source`), is added to the shares. Nothing is opened: the shares go to the analyst.

No coalition of n - 1 parties and not the dealer knows the noise (`protocols.noise`), so
the released value + noise tells them no more than it tells the analyst.
"""

from __future__ import annotations

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from protocols.noise import WordSource, discrete_laplace, fresh_words
from protocols.sharing import share_inputs
from queries import ir
from queries.dp import Privacy
from queries.errors import QueryError
from queries.local import LocalData, partials
from queries.plan import Plan
from queries.table import numeric

_LIMIT = 2**62
"""The largest a party's local total may be (in units of 2^-frac), so that int64 sums are exact."""


def word_source(ctx: PartyContext) -> WordSource:
    """This party's contribution to the noise: fresh words from its operating system, every call."""
    return fresh_words


def local_totals(plan: Plan, privacy: Privacy, local: LocalData) -> np.ndarray:
    """Step 1: this party's integer totals, one row per noised statistic, one column per group."""
    if isinstance(plan.statement, ir.Crosstab):
        return np.rint(partials(plan, local)[:1]).astype(np.int64)
    rows = []
    for noised in privacy.noised:
        op = noised.stat[0]
        if op == "rows":
            rows.append(np.bincount(local.group, minlength=local.groups).astype(np.int64))
            continue
        x = numeric(local.frame, noised.stat[1])
        present = ~np.isnan(x)
        if op == "n":
            rows.append(np.bincount(local.group[present], minlength=local.groups).astype(np.int64))
            continue
        lo, hi = privacy.bound(noised.stat[1])
        clamped = np.clip(x[present], lo, hi)
        if op == "h":  # one row per bin: the count of clamped values in it, per group
            which = np.minimum(((clamped - lo) / (hi - lo) * noised.bins).astype(np.int64), noised.bins - 1)
            counts = np.zeros((noised.bins, local.groups), dtype=np.int64)
            np.add.at(counts, (which, local.group[present]), 1)
            rows += list(counts)
            continue
        if op != "s":
            clamped = clamped - privacy.centre(noised.stat[1])
        terms = clamped * clamped if op == "c2" else clamped
        units = np.clip(np.rint(np.ldexp(terms, noised.frac)), -noised.units, noised.units).astype(np.int64)
        if units.size and int(np.abs(units).max()) * units.size >= _LIMIT:
            raise QueryError(f"{noised.label()}: a site's sum is beyond the supported range under dp")
        sums = np.zeros(local.groups, dtype=np.int64)
        np.add.at(sums, local.group[present], units)
        rows.append(sums)
    return np.stack(rows) if rows else np.zeros((0, local.groups), dtype=np.int64)


def release(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """This party's shares of every noised statistic, steps 1-3: one Share per statistic, one value per
    group (a histogram: bins x groups, bin-major, flattened)."""
    privacy = plan.privacy
    assert privacy is not None
    ring = ctx.precise.ring
    mine = local_totals(plan, privacy, local)
    stats, groups = mine.shape  # a histogram takes `bins` rows
    sharings = share_inputs(ctx, np.array(mine.tolist(), dtype=object), ring, 0, "dp-totals")
    total = sharings[0].data
    for other in sharings[1:]:
        total = ring.add(total, other.data)
    scales = np.repeat([n.scale for n in privacy.noised for _ in range(n.bins)], groups)
    noise = discrete_laplace(ctx, scales, stats * groups, ring, source=word_source(ctx))
    noisy = ring.add(total, noise.data.reshape(stats, groups))
    starts = np.cumsum([0] + [n.bins for n in privacy.noised])
    return [Share(noisy[a:b].reshape(-1), ring, n.frac) for a, b, n in zip(starts, starts[1:], privacy.noised)]
