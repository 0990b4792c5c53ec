"""WEIGHT w [ROBUST] on a model: frequency weights, or inverse-probability weights with robust errors
(a SELECT's WEIGHT w: `queries.weights_select`).

    LINEAR y ~ x WEIGHT w            frequency weights: row i stands for w_i identical rows
    LINEAR y ~ x WEIGHT w ROBUST     inverse-probability (sampling) weights, HC0 sandwich errors
    (LOGISTIC and POISSON alike)

A weight is a numeric column. Rows whose weight is NULL are dropped with the other incomplete
cases; rows whose weight is 0 are dropped too (they contribute nothing to any fit), so every
row a model counts (the minimum-cell and parameter checks, the released n) is a contributor,
never a sum of weights. A negative or infinite weight at any party refuses the model
(`queries.errors.BadWeights`, decided in MPC with `queries.model_checks`: only that bit is opened).

What is matched (statsmodels):
* frequency: the fit on the rows repeated w times (integer w), i.e. WLS coefficients with
  df_resid = sum(w) - p (LINEAR: `OLS` on the repeated rows; GLM(..., freq_weights=w));
* ROBUST: WLS(y, X, weights=w).fit(cov_type="HC0") for LINEAR, GLM(..., var_weights=w)
  .fit(cov_type="HC0") for LOGISTIC and POISSON; z statistics and the normal distribution, as
  statsmodels reports under a robust covariance.

The fits: `queries.weighted_linear`, `protocols.logistic` (weighted published matrices),
`protocols.poisson` (`weighted`: counts w y and offsets offset + log w).

This module holds what does not depend on MPC: where the clause sits in the query text, the
local weight vector of a party, the refusal's message and EXPLAIN's steps.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_CLAUSE = re.compile(
    r"(?i)WEIGHT\s+(?:`[^`]*`|\"[^\"]*\"|[A-Za-z_][A-Za-z0-9_]*)\s*(?:ROBUST(?![A-Za-z0-9_]))?\s*"
    r"(?:$|(?:FROM|WHERE|MAXITER|TOL)(?![A-Za-z0-9_]))"
)


_SELECT_TAIL = re.compile(
    r"(?i)(?<![A-Za-z0-9_.])WEIGHT\s+(`[^`]*`|\"[^\"]*\"|[A-Za-z_][A-Za-z0-9_]*)(\s+ROBUST)?\s*;?\s*$"
)
_NOT_A_CLAUSE = re.compile(r"(?i)(?:\bBY|[,(=<>+*/-])\s*$")


def select_weight_at(text: str, start: int) -> tuple[int, str, int, bool] | None:
    """A WEIGHT clause ending a SELECT's text: (its start, the column, the column's start, ROBUST or not),
    or None: not after BY, a comma or an operator, nor before ASC/DESC (`ORDER BY weight DESC` sorts by
    a column named weight)."""
    m = _SELECT_TAIL.search(text, start)
    if m is None or m.group(1).upper() in ("ASC", "DESC") or _NOT_A_CLAUSE.search(text[start : m.start()]):
        return None
    raw = m.group(1)
    name = raw[1:-1] if raw[0] in "`\"" else raw
    return m.start(), name, m.start(1), m.group(2) is not None


def clause_at(text: str, i: int) -> bool:
    """Whether a WEIGHT clause (WEIGHT name [ROBUST], then the end or FROM/WHERE/MAXITER/TOL) starts at
    index i: the word WEIGHT alone is a column name like any other (`y ~ height + weight`)."""
    if i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_."):
        return False
    return _CLAUSE.match(text, i) is not None


def weight_values(rows: pd.DataFrame, column: str) -> np.ndarray:
    """This party's weights on its complete cases, as float64."""
    from queries.table import numeric  # pandas: only where rows are read

    return numeric(rows, column)


def bad_count(w: np.ndarray) -> int:
    """Rows whose weight is negative or not finite (NaN has been dropped as NULL before)."""
    return int(np.count_nonzero(~np.isfinite(w) | (w < 0)))


def message(column: str) -> str:
    return (f"the weight {column!r} must be a finite number >= 0 at every complete case; "
            "exclude the other rows with WHERE")


def weighted_steps(stmt: object) -> list[str]:
    """EXPLAIN's steps of a weighted LINEAR fit."""
    robust = bool(getattr(stmt, "robust", False))
    column = getattr(stmt, "weight", "")
    return [
        f"weights {column!r}: rows with NULL or 0 weight dropped (local); a negative or infinite weight refuses the "
        "model (checked with the refusal checks, one bit); counts are of rows, never of weights",
        "local: X'WX, X'Wy, y'Wy, sum(w) per party" + (" and the HC0 meat's moments in the coefficients" if robust
                                                      else "") + "; secure sum (one round)",
        "Jacobi scaling by secure reciprocals; (X'WX)^-1 by Newton-Schulz; coefficients, weighted RSS and TSS"
        + ("; the sandwich (X'WX)^-1 M (X'WX)^-1 in shares" if robust else ""),
        "release to the analyst: coefficients, diag (X'WX)^-1, RSS, TSS, n, sum(w)"
        + (", diag of the sandwich (HC0)" if robust else "") + " (unscaled by the public powers of two)",
    ]


def _model_weight_steps(stmt: object, how: str, robust: str) -> list[str]:
    """EXPLAIN's steps for a GLM's weights: the common checks, then `how` the fit uses them, and `robust`
    (the HC0 step) when the statement asks for it."""
    column = getattr(stmt, "weight", "")
    steps = [f"weights {column!r}: rows with NULL or 0 weight dropped (local); a negative or infinite weight refuses "
             f"the model (one bit); {how}"]
    if getattr(stmt, "robust", False):
        steps.append(f"robust (HC0): {robust} and the sandwich diag(H^-1 M H^-1) in shares")
    return steps


def logistic_weight_steps(stmt: object) -> list[str]:
    """EXPLAIN's steps for LOGISTIC's weights (before the fit's own steps)."""
    return _model_weight_steps(
        stmt, "each party publishes [X | WX | w] and W Z instead of X and Z (one more round in all: the weighted "
        "log-likelihood's truncation)", "each party also publishes W^2 Z; at the final coefficients mu (from the "
        "final pass), the meat (W^2 Z)'(y - mu)^2")


def poisson_weight_steps(stmt: object) -> list[str]:
    """EXPLAIN's steps for POISSON's weights (before the fit's own steps)."""
    return _model_weight_steps(
        stmt, "each party fits counts w y with offsets offset + log w (the same score, information and Pearson chi2 "
        "as the weighted ones; no extra round); sum(w) added in shares",
        "at the final coefficients the meat Z'(y - mu)^2")
