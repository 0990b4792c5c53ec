"""Public power-of-two scales for the columns of AVG, VAR, STDDEV, CORR and MEDIAN/QUANTILE, and exact sums.

The protocols that form means, variances and correlations need their inputs in range: a
quotient below 2^39 (`protocols.division`), a root's argument below `ROOT_BOUND`
(`protocols.roots`). Every party therefore scales such a column by a public 2^-s before
computing its moment partials (exact in float64), so that every scaled |x| <= 2^HEADROOM,
and the results carry the scale back in their released exponents (`queries.floats`; CORR
is scale-free), and MEDIAN/QUANTILE size their order keys by it (`queries.order_keys`);
AVG, VAR and STDDEV refine it per group with a secret scale below it
(`queries.group_scales`). Only the exponent is opened to the
parties, as for LOGISTIC (`queries.regression._scales`): the power of two above the
column's largest |x| over all kept rows.

1. Each party p forms the bits a_p(e) = [max_p |x| <= 2^e] for every candidate e and XOR-shares
   them (from the pairwise seeds: no message).
2. An AND tree over the parties gives A(e) = AND_p a_p(e) = [max |x| <= 2^e] for every column
   and candidate (`protocols.circuits.all_ones_gates`: ceil(log4 n) rounds, one for up to four
   parties), and A is opened (one round). The passing candidates are a suffix, so A shows no
   more than the least passing candidate e; s = e - HEADROOM (so columns of tiny values are
   scaled up). Rounds: 2 for up to four parties.

With |x'| <= 2^18: |mean'| <= 2^18, sample variance' <= 2 (2^18)^2 = 2^37, centred sums
<= n 2^37 < 2^85 for n < 2^44. AVG, VAR and STDDEV carry their scale in a released
exponent, so they have no bound of their own.
"""

from __future__ import annotations

import numpy as np

from mpc.context import PartyContext
from protocols.boolean import lanes, pack_lanes, unpack_lanes
from protocols.circuits import all_ones_gates, run_circuits
from protocols.opening import open_xor
from protocols.sharing import share_words
from queries import ir
from queries.errors import QueryError
from queries.local import LocalData
from queries.order_keys import check_range
from queries.plan import Plan
from queries.table import numeric

CANDIDATES = tuple(range(-60, 63))
"""Candidate exponents e with max |x| <= 2^e; beyond 2^62 ~ 4.6e18 the column is refused."""

HEADROOM = 18
"""Scaled values satisfy |x 2^-s| <= 2^18."""

ROOT_BOUND = float(2**38)
"""Bound on a scaled variance (at most 2^37 plus rounding) given to the roots."""

MAX_ROWS = 2**40
"""A party's kept rows must stay below this, so that pooled counts stay below 2^44 (up to 16 sites)."""


def scaled_columns(plan: Plan) -> dict[str, set[str]]:
    """Each column of an AVG, VAR, STDDEV or CORR, with the functions that use it."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    out: dict[str, set[str]] = {}
    for agg in stmt.aggregates:
        if agg.func in ("AVG", "VAR", "STDDEV", "CORR"):
            for col in (agg.column, agg.column2):
                if col:
                    out.setdefault(col, set()).add(agg.func)
    return dict(sorted(out.items()))


def _local_max(local: LocalData, col: str) -> float:
    largest = local.stats[("amax", col)]
    return float(np.max(largest)) if len(largest) else 0.0


def _keyed_max(local: LocalData, col: str) -> float:
    """The largest |x| among the kept values of a MEDIAN/QUANTILE column, refused beyond their range."""
    x = numeric(local.frame, col)
    values = x[~np.isnan(x)]
    check_range(values, col)
    return float(np.max(np.abs(values))) if values.size else 0.0


def exponents(ctx: PartyContext, plan: Plan, local: LocalData) -> dict[tuple[str, str], int]:
    """The public scales s per scaled column (x is used as x 2^-s); see the module docstring.

    ("pair", col): e - HEADROOM, for CORR, which is scale-free and so never scaled back;
    ("bound", col): e itself, for every scaled column and every MEDIAN/QUANTILE column (whose
    order keys it sizes: `queries.order_keys.key_bits`; a value beyond their range is refused
    here, at its party, before anything is opened);
    ("one", col): e - HEADROOM, for AVG, VAR and STDDEV (columns of tiny values are scaled up),
    the top of their group scales (`queries.group_scales`), whose results are released as
    (mantissa, exponent) with the scales added to the exponent (`queries.floats`).

    Raises QueryError, the same at every party and before anything is released, when a
    column's values are beyond what its aggregates support.
    """
    cols = scaled_columns(plan)
    ordered = {c: _keyed_max(local, c) for c in dict.fromkeys(col for col, _ in plan.quantiles)}  # range checked
    keyed = [c for c in ordered if c not in cols]
    if not cols and not keyed:
        return {}
    if local.kept >= MAX_ROWS:
        raise QueryError(f"a site has {local.kept} rows; at most 2^40 are supported")
    largest = [_local_max(local, c) for c in cols] + [ordered[c] for c in keyed]
    below = np.array([[top <= 2.0**e for e in CANDIDATES] for top in largest], dtype=bool)
    size = below.size
    words = share_words(ctx, pack_lanes(below), [(lanes(size),)] * ctx.n, "scale-bits")
    (every,) = run_circuits(ctx, [all_ones_gates(np.stack(words))], "scale-and")
    (opened,) = open_xor(ctx, [every], "scales")
    passing = unpack_lanes(opened, size).reshape(below.shape)
    out: dict[tuple[str, str], int] = {}
    for col, row in zip([*cols, *keyed], passing):
        c = int(row.sum())
        if c == 0:
            raise QueryError(f"column {col}: values beyond 2^{CANDIDATES[-1]} (~4.6e18) are not supported")
        e = CANDIDATES[len(CANDIDATES) - c]
        if col in cols:
            out[("pair", col)] = e - HEADROOM
            out[("one", col)] = e - HEADROOM
        out[("bound", col)] = e
    return out


def exact_sums(local: LocalData, col: str, frac: int) -> list[int]:
    """Per group: sum of round(x 2^frac) over the non-null rows, exactly (Python integers).

    Computed by the party's engine (`queries.pushdown_partials`: the stat ("exact", col, frac)):
    an integer column's sum as an integer (frac 0), a float column's as the integer sum of each
    value's exact float64 x 2^frac rounded half to even. A float column with an infinite value or
    one at or beyond 2^(124 - frac) is refused."""
    largest = local.stats.get(("amax", col))
    if largest is not None and len(largest):
        top = float(np.max(largest))
        if not np.isfinite(top):
            raise QueryError(f"SUM({col}): an infinite value")
        if top >= 2.0 ** (124 - frac):
            raise QueryError(f"SUM({col}): values beyond 2^{124 - frac} in absolute value are not supported")
    return [int(v) for v in local.stats[("exact", col, frac)]]
