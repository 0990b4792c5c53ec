"""Evaluating a WHERE condition on a party's own rows (local, plaintext).

SQL three-valued logic: a comparison with NULL is unknown, and a row is kept only when the
condition is true. So `NOT (x > 5)` does not keep rows where x is NULL, as in SQL.
"""

from __future__ import annotations

from functools import singledispatch

import numpy as np
import pandas as pd

from queries import ir
from queries.errors import QueryError

Truth = tuple[np.ndarray, np.ndarray]
"""(true, known): true where the condition holds, known where it is not NULL."""


def keep_rows(frame: pd.DataFrame, cond: ir.Condition | None) -> np.ndarray:
    """Boolean mask of the rows where `cond` is true (all rows when there is no condition)."""
    if cond is None:
        return np.ones(len(frame), dtype=bool)
    true, known = _truth(cond, frame)
    return true & known


@singledispatch
def _truth(cond: object, frame: pd.DataFrame) -> Truth:
    raise QueryError(f"unsupported condition {type(cond).__name__}")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise QueryError(f"unknown column {name!r}")
    return frame[name]


def _compare_values(series: pd.Series, op: str, value: ir.Value) -> Truth:
    known = series.notna().to_numpy()
    is_text = pd.api.types.is_string_dtype(series)
    if is_text != isinstance(value, str):
        raise QueryError(
            f"column {series.name!r} is {'text' if is_text else 'numeric'}; compare it with a "
            f"{'string' if is_text else 'number'}"
        )
    filled = series.fillna("" if is_text else 0)
    ops = {
        "=": filled == value,
        "!=": filled != value,
        "<": filled < value,
        "<=": filled <= value,
        ">": filled > value,
        ">=": filled >= value,
    }
    return np.asarray(ops[op].to_numpy(), dtype=bool), known


@_truth.register
def _(cond: ir.Compare, frame: pd.DataFrame) -> Truth:
    return _compare_values(_column(frame, cond.column), cond.op, cond.value)


@_truth.register
def _(cond: ir.InList, frame: pd.DataFrame) -> Truth:
    series = _column(frame, cond.column)
    true = np.zeros(len(frame), dtype=bool)
    known = series.notna().to_numpy()
    for v in cond.values:
        t, _ = _compare_values(series, "=", v)
        true |= t
    return true, known


@_truth.register
def _(cond: ir.Between, frame: pd.DataFrame) -> Truth:
    series = _column(frame, cond.column)
    lo, known = _compare_values(series, ">=", cond.low)
    hi, _ = _compare_values(series, "<=", cond.high)
    return lo & hi, known


@_truth.register
def _(cond: ir.IsNull, frame: pd.DataFrame) -> Truth:
    isnull = _column(frame, cond.column).isna().to_numpy()
    return (~isnull if cond.negated else isnull), np.ones(len(frame), dtype=bool)


@_truth.register
def _(cond: ir.And, frame: pd.DataFrame) -> Truth:
    lt, lk = _truth(cond.left, frame)
    rt, rk = _truth(cond.right, frame)
    false_l, false_r = lk & ~lt, rk & ~rt
    true = lt & lk & rt & rk
    return true, true | false_l | false_r


@_truth.register
def _(cond: ir.Or, frame: pd.DataFrame) -> Truth:
    lt, lk = _truth(cond.left, frame)
    rt, rk = _truth(cond.right, frame)
    true = (lt & lk) | (rt & rk)
    return true, true | (lk & rk)


@_truth.register
def _(cond: ir.Not, frame: pd.DataFrame) -> Truth:
    t, k = _truth(cond.inner, frame)
    return ~t & k, k
