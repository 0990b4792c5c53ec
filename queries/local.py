"""What each party computes from its own rows, in plaintext: the local half of a plan.

`LocalData` is a party's filtered table with every kept row assigned to its group.
`partials` gives what the plan's measures ask for per group: counts and sums (the parties
add them in MPC), and local means with sums of squares centred on them (combined in MPC by
the parallel-axis rule, so pooled variances keep their precision); `extremes` the local
minima/maxima (the keys of the quantile search are in `queries.order_keys`). Nothing
here leaves the party except through secret sharing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from queries.errors import QueryError
from queries.evaluate import plan_rows
from queries.plan import Measure, Plan
from queries.table import numeric

EXTREME_SENTINEL = float(2**80)
"""Stands for 'no value' in a party's local minimum (+) or maximum (-); never released."""


@dataclass(frozen=True)
class LocalData:
    frame: pd.DataFrame
    group: np.ndarray  # group index of each kept row
    groups: int
    table_rows: int = 0  # rows of the party's whole table, before WHERE (sizes the quantile search)


def prepare(plan: Plan, frame: pd.DataFrame) -> LocalData:
    """Filter by WHERE, compute the derived columns (`queries.evaluate`) and assign each row to
    its group (`group_rows`)."""
    return group_rows(plan, plan_rows(plan, frame), len(frame))


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
    return LocalData(kept[valid], group[valid], plan.groups, table_rows)


def _per_group(local: LocalData, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.bincount(local.group[mask], weights=values[mask], minlength=local.groups).astype(np.float64)


COUNT_OPS = frozenset({"rows", "n", "pn"})
"""Measures that are counts: integers, shared exactly."""

PER_PARTY_OPS = frozenset({"mean", "pmx", "pmy"})
"""Measures that are not summed across parties (local means); the others are partial sums."""


def _local_mean(local: LocalData, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = _per_group(local, np.ones(len(x)), mask)
    return _per_group(local, x, mask) / np.maximum(n, 1.0)


def _centred(local: LocalData, a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per group: sum of (a - mean a)(b - mean b) over the masked rows, means taken locally."""
    da = np.where(mask, a - _local_mean(local, a, mask)[local.group], 0.0)
    db = np.where(mask, b - _local_mean(local, b, mask)[local.group], 0.0)
    return _per_group(local, da * db, mask)


PAIR_OPS = frozenset({"pn", "px", "py", "pmx", "pmy", "pm2x", "pm2y", "pcxy"})
"""Measures over the rows where both columns of a CORR are present."""


def measure(local: LocalData, m: Measure, scales: Mapping[tuple[str, str], int] | None = None) -> np.ndarray:
    """One measure per group over this party's kept rows: a count, a sum, a local mean, or a
    sum of squares / cross products centred on the local means (two passes, in float64).
    A column with a scale s in `scales` is used as x 2^-s (exact in float64); the scales are
    keyed ("one", column) for a column's own moments and ("pair", column) for CORR's."""
    op = m[0]
    scales = scales or {}
    kind = "pair" if op in PAIR_OPS else "one"

    def values(col: str) -> np.ndarray:
        return np.ldexp(numeric(local.frame, col), -scales.get((kind, col), 0))

    ones = np.ones(len(local.frame))
    if op == "rows":
        return _per_group(local, ones, ones.astype(bool))
    if op == "n":
        present = local.frame[m[1]].notna().to_numpy()
        return _per_group(local, ones, present)
    x = values(m[1])
    if op in ("s", "mean", "m2"):
        present = ~np.isnan(x)
        if op == "s":
            return _per_group(local, x, present)
        return _local_mean(local, x, present) if op == "mean" else _centred(local, x, x, present)
    y = values(m[2])
    both = ~np.isnan(x) & ~np.isnan(y)
    if op in ("pn", "px", "py"):
        return _per_group(local, np.where(both, {"pn": ones, "px": x, "py": y}[op], 0.0), both)
    if op in ("pmx", "pmy"):
        return _local_mean(local, x if op == "pmx" else y, both)
    a, b = {"pm2x": (x, x), "pm2y": (y, y), "pcxy": (x, y)}[op]
    return _centred(local, a, b, both)


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
        x = numeric(local.frame, col)
        present = ~np.isnan(x)
        if np.any(np.abs(x[present]) >= EXTREME_SENTINEL):
            raise QueryError(f"{kind.upper()}({col}): values beyond 2^80 in absolute value are not supported")
        fill = EXTREME_SENTINEL if kind == "min" else -EXTREME_SENTINEL
        series = local.frame[col]
        if col in plan.integer_columns and series.dtype != object:
            ints = series.to_numpy(dtype=np.int64, na_value=0)[present]
            info = np.iinfo(np.int64)
            best = np.full(local.groups, info.max if kind == "min" else info.min, dtype=np.int64)
            (np.minimum if kind == "min" else np.maximum).at(best, local.group[present], ints)
            seen = np.bincount(local.group[present], minlength=local.groups) > 0
            out.append(np.array([int(b) if s else int(fill) for b, s in zip(best, seen)], dtype=object))
            continue
        vals = np.full(local.groups, fill)
        func = np.minimum if kind == "min" else np.maximum
        func.at(vals, local.group[present], x[present])
        out.append(vals)
    return out
