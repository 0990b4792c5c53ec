"""What each party computes from its own rows, in plaintext: the local half of a plan.

`LocalData` is a party's part for a plan: per-group aggregates computed by its data source's
engine (`stats`, `queries.pushdown_partials`: one GROUP BY statement, no row reaching Python)
and, only where a plan needs rows (the order keys of MEDIAN and QUANTILE, `queries.order_keys`),
its kept rows with each row's group. `partials` gives what the plan's measures ask for per
group: counts and sums (the parties add them in MPC), and local means with sums of squares
centred on them (combined in MPC by the parallel-axis rule, so pooled variances keep their
precision); `extremes` the local minima/maxima. Nothing here leaves the party except through
secret sharing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpc.errors import EncodingError
from mpc.fixedpoint import FixedPoint
from queries.errors import QueryError
from queries.plan import Measure, Plan
from queries.pushdown_partials import EXTREME_SENTINEL, Stat


@dataclass(frozen=True)
class LocalData:
    groups: int
    stats: Mapping[Stat, np.ndarray] = field(default_factory=dict)  # per-group aggregates (`queries.pushdown_partials`)
    kept: int = 0  # rows the plan keeps in its groups
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)  # the kept rows, only for plans that need rows
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # group index of each kept row
    table_rows: int = 0  # rows of the party's whole table, before WHERE (sizes the quantile search)


def prepare(plan: Plan, frame: pd.DataFrame, frac: int = 40) -> LocalData:
    """A frame's `LocalData` for the plan: WHERE, derived columns and per-group aggregates run by
    DuckDB over the frame (`queries.sources.FrameSource`)."""
    from queries.sources import FrameSource

    return FrameSource(frame).local(plan, frac)


def group_rows(plan: Plan, kept: pd.DataFrame, table_rows: int) -> LocalData:
    """Assign each row the plan keeps (WHERE applied, derived columns computed: by a data source,
    `queries.sources`) to its group. A NULL grouping value goes to the column's NULL level where
    the plan has one (SELECT: as pandas' groupby(dropna=False)) and is dropped otherwise
    (CROSSTAB, as pandas' crosstab); a value outside the domain is dropped. `table_rows`: the
    rows of the whole table, before the WHERE."""
    group = np.zeros(len(kept), dtype=np.int64)
    valid = np.ones(len(kept), dtype=bool)
    stride = 1
    for pos in reversed(range(len(plan.group_columns))):
        col = plan.group_columns[pos]
        domain = list(dict.fromkeys(k[pos] for k in plan.group_keys))
        values = [v for v in domain if v is not None]
        codes = pd.Index(values).get_indexer(kept[col]).astype(np.int64)  # -1: NULL or unknown
        if None in domain:
            codes[kept[col].isna().to_numpy()] = domain.index(None)
        valid &= codes >= 0
        group += np.maximum(codes, 0) * stride
        stride *= len(domain)
    return LocalData(plan.groups, kept=int(valid.sum()), frame=kept[valid], group=group[valid], table_rows=table_rows)


COUNT_OPS = frozenset({"rows", "n", "pn"})
"""Measures that are counts: integers, shared exactly."""

PER_PARTY_OPS = frozenset({"mean", "pmx", "pmy"})
"""Measures that are not summed across parties (local means); the others are partial sums."""


PAIR_OPS = frozenset({"pn", "px", "py", "pmx", "pmy", "pm2x", "pm2y", "pcxy"})
"""Measures over the rows where both columns of a CORR are present."""


def measure(local: LocalData, m: Measure, scales: Mapping[tuple[str, str], int] | None = None) -> np.ndarray:
    """One measure per group over this party's kept rows, from its per-group aggregates: a count,
    a sum, a local mean, or a sum of squares / cross products centred on the local means. A
    column with a scale s in `scales` is used as x 2^-s (exact in float64); the scales are
    keyed ("one", column) for a column's own moments and ("pair", column) for CORR's."""
    op, st = m[0], local.stats
    scales = scales or {}
    kind = "pair" if op in PAIR_OPS else "one"

    def at(values: np.ndarray, *cols: str) -> np.ndarray:
        return np.ldexp(np.asarray(values, dtype=np.float64), -sum(scales.get((kind, c), 0) for c in cols))

    if op == "rows":
        return np.asarray(st[("rows",)], dtype=np.float64)
    if op == "n":
        return np.asarray(st[("n", m[1])], dtype=np.float64)
    x = m[1]
    if op == "s":
        return at(st[("sum", x)], x)
    if op == "mean":
        return at(st[("sum", x)] / np.maximum(st[("n", x)], 1.0), x)
    if op == "m2":
        return at(st[("m2", x)], x, x)
    y = m[2]
    n = st[("pn", x, y)]
    if op == "pn":
        return np.asarray(n, dtype=np.float64)
    if op in ("px", "py"):
        col, other = (x, y) if op == "px" else (y, x)
        return at(st[("psum", col, other)], col)
    if op in ("pmx", "pmy"):
        col, other = (x, y) if op == "pmx" else (y, x)
        return at(st[("psum", col, other)] / np.maximum(n, 1.0), col)
    if op == "pm2x":
        return at(st[("pm2", x, y)], x, x)
    if op == "pm2y":
        return at(st[("pm2", y, x)], y, y)
    assert op == "pcxy"
    return at(st[("pcross", x, y)], x, y)


def partials(plan: Plan, local: LocalData, scales: Mapping[tuple[str, str], int] | None = None) -> np.ndarray:
    """All measures, measure-major: shape (len(plan.measures), groups). This is the party's
    whole input to MPC for the plan's pooled aggregates (besides extremes and quantile keys)."""
    return np.stack([measure(local, m, scales) for m in plan.measures]) if plan.measures else np.zeros((0, plan.groups))


def local_partials(plan: Plan, frame: pd.DataFrame) -> np.ndarray:
    """A party's plaintext part for the plan's measures (a pure function of its table):
    filter, group, then `partials`."""
    return partials(plan, prepare(plan, frame))


def extremes(plan: Plan, local: LocalData) -> list[np.ndarray]:
    """Local minimum / maximum per group for each (kind, column); a sentinel where empty.

    Integer columns give Python ints (exact beyond float64's 2^53), others float64."""
    out = []
    for kind, col in plan.extremes:
        largest = local.stats[("amax", col)]
        if len(largest) and np.max(largest) >= EXTREME_SENTINEL:
            raise QueryError(f"{kind.upper()}({col}): values beyond 2^80 in absolute value are not supported")
        out.append(local.stats[(kind, col)])
    return out


def encode_private(fixed: FixedPoint, values: np.ndarray, frac: int | None = None) -> np.ndarray:
    """A party's private values in fixed point; a value out of range fails the query with a
    message that names no value (EncodingError's own message quotes the largest one, and a
    failure's message reaches the analyst and the peers)."""
    try:
        return fixed.encode(values, frac)
    except EncodingError:
        bound = 2.0 ** (fixed.ring.bits - 3 - (fixed.frac if frac is None else frac))
        raise QueryError(
            f"a value or partial sum at this party is NaN, infinite or beyond the supported range (±{bound:.3g})"
        ) from None
