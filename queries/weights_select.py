"""SELECT ... WEIGHT w: frequency-weighted COUNT, SUM, AVG, VAR and STDDEV from released weighted sums.

A weighted aggregate is not new MPC work. Like an interval (`queries.intervals_sql`) it is
compiled into ordinary SUMs over derived columns, hidden from the result and released under the
disclosure rule, and the analyst computes the value from them (`estimate`). With
`present` = w > 0 and x present (for COUNT(*): w > 0):

    COUNT   sum of CASE WHEN present THEN w END                                     = sum w
    SUM     sum of CASE WHEN present THEN w * x END                                 = sum w x
    AVG     sum w x / sum w
    VAR     (sum w x^2 - (sum w x)^2 / sum w) / (sum w - 1)   (frequency weights: the rows repeated
    STDDEV  its square root                                    w times, as DescrStatsW(ddof=1))
    AVG_CI  AVG and Student's t interval with sum(w) - 1 df and sd / sqrt(sum w) (DescrStatsW.tconfint_mean)
    PROPORTION(c)  AVG of its 0/1 indicator and Wilson's interval on sum(w) rows (proportion_confint of
            the rows repeated w times)

Each SUM counts as contributors the rows where its derived column is present, so the minimum
cell k is a count of rows with w > 0, never a sum of weights: one patient of weight 50 is one
contributor, and the group is withheld. A hidden COUNT of the rows whose weight is negative or
infinite lets each party refuse locally before anything is shared (`check_local`): the query
fails at that party with a clear message, and nothing is released.

Refused with WEIGHT: MIN, MAX, MEDIAN, QUANTILE, CORR, RATE, HAVING, ROBUST
(a SELECT has no standard errors to make robust), and differential privacy (`queries.dp`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np

from queries import expr as e
from queries import ir
from queries.errors import QueryError
from queries.sql_text import text as canonical

KINDS = {"COUNT": "WEIGHTED COUNT", "SUM": "WEIGHTED SUM", "AVG": "WEIGHTED AVG", "VAR": "WEIGHTED VAR",
         "STDDEV": "WEIGHTED STDDEV", "AVG_CI": "WEIGHTED AVG_CI", "PROPORTION": "WEIGHTED PROPORTION"}
"""The `ir.Interval` kind of each weighted aggregate."""

BAD = "WEIGHT CHECK"
"""The kind of the hidden count of bad weights (checked at each party, never shown)."""

INFINITE = 1e300
"""A weight above this is infinite for the check (DuckDB and pandas hold +inf as a float)."""


def weigh(stmt: ir.Select, weight: str, pos: int) -> ir.Select:
    """`stmt` with every aggregate of its SELECT list replaced by its weighted form; QueryError for
    what cannot be weighted."""
    if stmt.having is not None:
        raise QueryError("HAVING is not available with WEIGHT: filter the released rows instead", pos)
    for interval in stmt.intervals:
        if interval.kind not in KINDS:
            raise QueryError(f"{interval.kind} is not available with WEIGHT; AVG_CI and PROPORTION are", pos)
    w = e.Column(weight)
    positive = e.Compare(w, ">", e.Literal(0))
    bad = e.Case(((e.Or(e.Compare(w, "<", e.Literal(0)), e.Compare(w, ">", e.Literal(INFINITE))), e.Literal(1)),))
    derived = {d.name: d for d in stmt.derived}
    aggregates: list[ir.Aggregate] = []
    intervals: list[ir.Interval] = []
    output: list[ir.Output] = []

    def hidden(func: str, value: e.Expr) -> int:
        name = canonical(value)
        derived.setdefault(name, ir.Derived(name, value))
        agg = ir.Aggregate(func, name, pos=pos)
        if agg not in aggregates:
            aggregates.append(agg)
        return aggregates.index(agg)

    def weighted(func: str, column: str | None, name: str) -> int:
        """The index of a new weighted interval of `func` over `column` (None: COUNT(*))."""
        x = None if column is None else derived[column].expr if column in derived else e.Column(column)
        present = positive if x is None else e.And(positive, e.IsNull(x, True))
        parts = [hidden("SUM", e.Case(((present, w),)))]
        if x is not None and func != "COUNT":
            parts.insert(0, hidden("SUM", e.Case(((present, e.Arith(w, "*", x)),))))
        if func in ("VAR", "STDDEV", "AVG_CI"):
            assert x is not None
            parts.insert(0, hidden("SUM", e.Case(((present, e.Arith(e.Arith(w, "*", x), "*", x)),))))
        intervals.append(ir.Interval(KINDS[func], name, tuple(parts)))
        return len(intervals) - 1

    moved = {j: weighted(i.kind, stmt.aggregates[i.parts[0]].column, i.name) for j, i in enumerate(stmt.intervals)}
    for out in stmt.output or [ir.Output(a.name, "aggregate", i) for i, a in enumerate(stmt.aggregates)]:
        if out.source == "interval":  # AVG_CI's column `part` of interval j
            j, part = divmod(out.index, 3)
            output.append(ir.Output(out.name, "interval", 3 * moved[j] + part))
        elif out.source == "aggregate":
            agg = stmt.aggregates[out.index]
            if agg.func not in KINDS:
                func = "MEDIAN and QUANTILE are" if agg.func == "QUANTILE" else f"{agg.func} is"
                raise QueryError(f"{func} not available with WEIGHT; COUNT, SUM, AVG, VAR, STDDEV and AVG_CI are",
                                 agg.pos)
            output.append(ir.Output(out.name, "interval", 3 * weighted(agg.func, agg.column, agg.name)))
        else:
            output.append(out)
    check = hidden("COUNT", bad)
    intervals.append(ir.Interval(BAD, f"bad weights of {weight}", (check,)))
    group_derived = [d for d in stmt.derived if d.name in stmt.group_by]
    new_derived = group_derived + [d for name, d in derived.items() if d not in group_derived and
                                   any(a.column == name for a in aggregates)]
    mentions = tuple(sorted(set(stmt.mentions) | {(weight, pos)}, key=lambda m: m[1]))
    return replace(stmt, aggregates=tuple(aggregates), derived=tuple(new_derived), output=tuple(output),
                   intervals=tuple(intervals), mentions=mentions, weight=weight)


def check_kind(stmt: ir.Statement, kinds: Mapping[str, str]) -> None:
    """A weight must be a numeric column (`kinds`: the agreed kind of each column; an unknown column is
    left to the schema check)."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    if isinstance(inner, ir.Select) and inner.weight and kinds.get(inner.weight, "float") not in ("int", "float"):
        raise QueryError(f"the weight {inner.weight!r} must be a numeric column", name=inner.weight)


def estimate(kind: str, parts: list[Any]) -> tuple[Any, Any, Any]:
    """A weighted aggregate from its released sums (no part None); no interval (None, None)."""
    if kind == BAD:
        return None, None, None
    values = [float(v) for v in parts]
    total_w = values[-1]
    if kind == "WEIGHTED COUNT":
        return total_w, None, None
    if kind == "WEIGHTED SUM":
        return values[0], None, None
    if total_w <= 0:
        return None, None, None
    if kind == "WEIGHTED AVG":
        return values[0] / total_w, None, None
    if kind == "WEIGHTED PROPORTION":  # the rows repeated w times: Wilson's interval on sum(w) rows
        from queries.intervals import wilson_interval

        low, high = wilson_interval(values[0], total_w)
        return values[0] / total_w, low, high
    if total_w <= 1:
        return None, None, None
    var = _spread(parts)
    if kind == "WEIGHTED AVG_CI":  # DescrStatsW.tconfint_mean: t with sum(w) - 1 df, sd / sqrt(sum(w))
        from scipy import stats  # the analyst's side only

        mean = values[1] / total_w
        if var is None:
            return mean, None, None
        half = float(stats.t.ppf(0.975, total_w - 1)) * math.sqrt(var / total_w)
        return mean, mean - half, mean + half
    if var is None:
        return None, None, None
    return (var if kind == "WEIGHTED VAR" else math.sqrt(var)), None, None


def exact_parts(stmt: ir.Statement) -> set[int]:
    """The aggregates whose exact values a weighted VAR, STDDEV or AVG_CI needs: sum w x^2 and
    (sum w x)^2 / sum w nearly cancel when the spread is small beside the mean, so the analyst
    reads those sums exactly (`queries.engine.finish_result`) rather than rounded to float64."""
    if not isinstance(stmt, ir.Select) or not stmt.weight:
        return set()
    return {i for interval in stmt.intervals if interval.kind in ("WEIGHTED VAR", "WEIGHTED STDDEV",
                                                                   "WEIGHTED AVG_CI") for i in interval.parts}


PRODUCT_ERROR = 2.0**-51
"""Bound on the relative error that each party's float64 products w x and w x^2 (two roundings each)
bring to the sums sum w x^2 and (sum w x)^2 / sum w."""

SPREAD_PRECISION = 1e-7
"""A weighted VAR (STDDEV, AVG_CI) whose bound on its relative error exceeds this is withheld (NULL):
right or not shown, never silently imprecise."""


def _spread(parts: list[Any]) -> float | None:
    """(sum w x^2 - (sum w x)^2 / sum w) / (sum w - 1), in exact rational arithmetic when the sums
    are exact (`exact_parts`); None when the parties' float64 products could move it by more than
    `SPREAD_PRECISION` relative: values whose spread is tiny beside their mean (costs of 1e7 with an sd
    of 3) cancel in w x^2, so the variance needs the unweighted VAR's centred sums."""
    squares, total, weights = (Fraction(v) if isinstance(v, Fraction | int) else Fraction(float(v)) for v in parts)
    centred = squares - total * total / weights
    if centred == 0:
        return 0.0
    if centred < 0 or PRODUCT_ERROR * float(squares) > SPREAD_PRECISION * float(centred):
        return None
    return float(centred / (weights - 1))


SPREAD_KINDS = ("WEIGHTED VAR", "WEIGHTED STDDEV", "WEIGHTED AVG_CI")
"""The weighted aggregates computed from w x^2 (`_spread`)."""


def spread_notes(stmt: ir.Select, rows: list[list[Any]], first: int) -> list[str]:
    """Why a weighted VAR or STDDEV, or an AVG_CI's interval, is NULL where its sums were released
    (`_spread` withheld it): one note per aggregate, with the way out; `first`: where the aggregates
    start in a row."""
    notes = []
    for interval in stmt.intervals:
        if interval.kind not in SPREAD_KINDS:
            continue
        for row in rows:
            parts = [row[first + i] for i in interval.parts]
            if all(v is not None for v in parts) and float(parts[-1]) > 1 and _spread(parts) is None:
                what = f"{interval.name}'s 95% CI is" if interval.kind == "WEIGHTED AVG_CI" else f"{interval.name} is"
                notes.append(f"{what} NULL where the values' spread is too small beside their size for the weighted "
                             f"sums to give it within {SPREAD_PRECISION:g} relative; centre the column in the query, "
                             f"as in VAR(x - c) with c near its mean (here {float(parts[1]) / float(parts[2]):.4g})")
                break
    return notes


def check_local(stmt: ir.Statement, stats: Any) -> None:
    """Refuse at this party, before anything is shared, if it has a negative or infinite weight."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    if not isinstance(inner, ir.Select):
        return
    for interval in inner.intervals:
        if interval.kind == BAD:
            column = inner.aggregates[interval.parts[0]].column
            counts = stats.get(("n", column))
            if counts is not None and np.any(np.asarray(counts, dtype=np.float64) > 0):
                weight = interval.name.removeprefix("bad weights of ")
                raise QueryError(f"the weight {weight!r} must be a finite number >= 0 in every row; exclude the "
                                 "other rows with WHERE")
