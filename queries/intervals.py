"""95% confidence intervals of a SELECT, computed by the analyst from numbers the query releases.

`AVG_CI(x)`, `PROPORTION(condition)` and `RATE(events, person_time)` (`queries.intervals_sql`)
each run as ordinary aggregates hidden from the result (`ir.Interval.parts`), so every number
an interval is computed from passes the same disclosure rule as the aggregate itself; a
withheld part withholds the estimate and both bounds, a NULL part makes them NULL. Then, per row:

1. AVG_CI: mean m, n, standard deviation s (n - 1 denominator): m -+ t(0.975, n - 1) s / sqrt(n),
   Student's t as `scipy.stats.t`; NULL bounds when n < 2.
2. PROPORTION: x rows where the condition holds among the n where it is not NULL: x / n and the
   Wilson score interval, as `statsmodels.stats.proportion.proportion_confint(x, n, method="wilson")`
   (defined at x = 0 and x = n; NULL when n = 0).
3. RATE: D = SUM(events), T = SUM(person_time) over the rows where both are present: D / T and the
   exact Poisson (Garwood) interval on D, scaled by T: [chi2(0.025, 2D) / 2, chi2(0.975, 2D + 2) / 2] / T
   with `scipy.stats.chi2` (lower bound 0 when D = 0). T <= 0 or D < 0: the rate and its bounds are NULL.
"""

from __future__ import annotations

import math
from typing import Any

from queries import ir

SUFFIXES = ("", "_ci95_low", "_ci95_high")
"""An interval's three result columns: NAME, NAME_ci95_low, NAME_ci95_high."""


def t_interval(mean: float, sd: float, n: int) -> tuple[float | None, float | None]:
    """Student's t 95% interval of a mean from n values with sample standard deviation sd."""
    if n < 2 or not math.isfinite(sd):
        return None, None
    from scipy import stats  # the analyst's side only

    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def wilson_interval(x: float, n: float) -> tuple[float | None, float | None]:
    """Wilson's score 95% interval of the proportion x / n (statsmodels' "wilson")."""
    if n <= 0:
        return None, None
    from scipy import stats

    z = float(stats.norm.ppf(0.975))
    p, z2 = x / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return centre - half, centre + half


def poisson_interval(events: float, person_time: float) -> tuple[float | None, float | None]:
    """The exact (Garwood) 95% interval of the rate events / person_time, from chi-square quantiles."""
    if person_time <= 0 or events < 0:
        return None, None
    from scipy import stats

    low = float(stats.chi2.ppf(0.025, 2 * events)) / 2 if events > 0 else 0.0
    high = float(stats.chi2.ppf(0.975, 2 * events + 2)) / 2
    return low / person_time, high / person_time


METHODS = {"AVG_CI": "Student's t", "PROPORTION": "Wilson", "RATE": "exact Poisson"}


def explain_text(stmt: ir.Select) -> str:
    """EXPLAIN's words for the intervals the analyst computes: each name, method and released parts."""
    return "; ".join((f"{i.name} and its 95% CI ({METHODS[i.kind]}) from " if i.kind in METHODS else
                      f"{i.name} ({i.kind.lower()}) from ")
                     + ", ".join(stmt.aggregates[p].name for p in i.parts) for i in stmt.intervals)


def estimate(kind: str, parts: list[Any]) -> tuple[Any, Any, Any]:
    """(estimate, ci95_low, ci95_high) of one interval from its parts' released values (no part None)."""
    if kind not in METHODS:  # SELECT ... WEIGHT w: a weighted aggregate, no interval
        from queries.weights_select import estimate as weighted

        return weighted(kind, parts)
    if kind == "AVG_CI":
        mean, n, sd = parts
        low, high = t_interval(float(mean), float(sd), int(n)) if sd is not None else (None, None)
        return float(mean), low, high
    if kind == "PROPORTION":
        x, n = round(float(parts[0])), int(parts[1])
        if n <= 0:
            return None, None, None
        low, high = wilson_interval(x, n)
        return x / n, low, high
    events, person_time = float(parts[0]), float(parts[1])
    if person_time <= 0 or events < 0:
        return None, None, None
    low, high = poisson_interval(events, person_time)
    return events / person_time, low, high


def append(stmt: ir.Select, row: list[Any], withheld: list[bool], first: int) -> None:
    """Add every interval's three columns to one result row, whose aggregate i is at row[first + i]:
    withheld when a part is withheld; NULL when a part needed for the estimate is NULL."""
    for interval in stmt.intervals:
        values = [row[first + i] for i in interval.parts]
        if any(withheld[first + i] for i in interval.parts):
            row += [None] * 3
            withheld += [True] * 3
            continue
        needed = values[:2] if interval.kind == "AVG_CI" else values  # AVG_CI: a NULL STDDEV nulls the bounds
        row += list(estimate(interval.kind, values)) if all(v is not None for v in needed) else [None] * 3
        withheld += [False] * 3
