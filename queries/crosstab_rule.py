"""The disclosure rule of a CROSSTAB, and its plaintext reference `release_mask`.

A crosstab of r x c pooled counts n_ij shows the cells, the row margins R_i, the column
margins C_j and the total N. With k the minimum cell size, lo = 1 when a count of 0 is
released (`Plan.release_zero`) and lo = 0 when it is not, and t = max(k, lo + 2):

1. Primary: a cell is *small* when lo <= n_ij <= k - 1; a margin or the total is *small*
   when lo <= x <= t - 1. (t = k except for k = 2 with zeros released and k = 1 with
   zeros withheld, where t widens the range so that it holds at least two values.)
2. If no cell is small, everything is released: the margins and the total are sums of
   released cells.
3. Otherwise every cell is suppressed, and so is every chi-square and 2 x 2 statistic;
   the row margins are suppressed together if any of them is small, the column margins
   likewise, and the total if it is small. Margins that are all not small are released.

What the analyst sees: the released numbers and four yes/no facts (cells, row margins,
column margins, total suppressed). Never which cell or which margin is small.

Guarantee: for a table of at least two cells, every suppressed number takes at least two
values over the tables of non-negative integers that give the same view (same released
numbers and same four facts): none can be derived exactly, by linear equations, bounds or
the suppression pattern. The one exception is a cell in a row or column whose margin is
released as 0 — it is 0, and zeros are released. (A 1 x 1 table is one count: when
suppressed it is known to be small, as for any suppressed count.)
`tests/queries/test_crosstab_rule.py` checks this exhaustively on small tables.

Why (the suppressed cases; lo = 1 needs k >= 2, else nothing is small, so t >= 3 and
1 is small; lo = 0 makes 0 small and t >= 2):

* Margins both released. Drop the rows and columns with margin 0 (their cells are the
  exception). At least two rows and two columns remain, else every cell would equal a
  released margin (>= t, not small) or 0, and none would be small. Given both margins a
  cell takes every integer in its Frechet bounds [L, U] = [max(0, R_i + C_j - N),
  min(R_i, C_j)] (fixing n_ij leaves a transportation polytope, integral and, by
  convexity, not empty), and U - L = min(R_i, C_j, N - R_i, N - C_j) >= t. At n_ij = L and at
  n_ij = U some other cell is 0 (row i, column j, or all rows but i outside column j are
  exhausted), and at L + 1 and U - 1 some cell is 1. lo = 0: the tables at L and U both
  have a small cell; lo = 1: those at L + 1 and U - 1 do, and U - L >= t >= 3 keeps them
  apart. Same margins, same view, two values of n_ij.
* Rows released, columns suppressed (and symmetrically). Every row has R_i = 0 or
  R_i >= t, and c >= 2. For cell (i, j), j' != j: lo = 1: X puts R_i - 1 in (i, j) and
  1 in (i, j'), Y puts 1 in (i, j) and R_i - 1 in (i, j'); in X every other row sits in
  column j, in Y in column j'. Both have a cell of 1 and a column margin of 1 (C_j' in
  X, C_j in Y); n_ij is R_i - 1 against 1 and C_j differs. lo = 0: X puts every row in
  column j, Y every row in column j'; both have a 0 cell and a 0 column margin.
* Both margins suppressed, total released (N >= t): r, c >= 2 (else a margin equals N).
  lo = 1: X has N - 1 in (i, j) and 1 in (i', j'), Y the reverse (i' != i, j' != j):
  both have a cell, a row margin and a column margin of 1, and n_ij, R_i and C_j differ.
  lo = 0: all N in (i, j) against all N in (i', j').
* Everything suppressed (N small): lo = 1: one cell of 1 against two (or a different
  one) cells of 1; lo = 0: the all-zero table against a single 1. Both are small totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CrosstabRelease:
    """Which parts of a crosstab are released: each a bool (an array of them for a batch of tables)."""

    cells: Any
    rows: Any
    cols: Any
    total: Any


def thresholds(k: int, release_zero: bool) -> tuple[int, int, int]:
    """(lo, k, t): a cell is small when lo <= n < k; a margin or the total when lo <= x < t."""
    if k < 1:
        raise ValueError("the minimum cell size must be at least 1")
    lo = 1 if release_zero else 0
    return lo, k, max(k, lo + 2)


def release_mask(cells: Any, k: int, release_zero: bool) -> CrosstabRelease:
    """The rule above on plaintext counts: an (r, c) table, or a batch (..., r, c) of them."""
    x = np.asarray(cells)
    if x.ndim < 2 or x.dtype.kind not in "iu" or (x < 0).any():
        raise ValueError("a crosstab is a table of non-negative integer counts")
    lo, _, t = thresholds(k, release_zero)

    def small(v: np.ndarray, top: int) -> np.ndarray:
        return (v >= lo) & (v < top)

    hidden = small(x, k).any(axis=(-2, -1))
    rows = ~(hidden & small(x.sum(axis=-1), t).any(axis=-1))
    cols = ~(hidden & small(x.sum(axis=-2), t).any(axis=-1))
    total = ~(hidden & small(x.sum(axis=(-2, -1)), t))
    return CrosstabRelease(~hidden, rows, cols, total)


def rule_text(k: int, release_zero: bool, stratified: bool = False) -> str:
    """The rule in one line, for EXPLAIN's disclosure line (`stratified`: CROSSTAB ... STRATA, `queries.strata`)."""
    lo, _, t = thresholds(k, release_zero)
    if stratified:
        return (f"the pooled statistics are refused if a stratum has {lo}..{k - 1} rows or a cell of the table "
                f"summed over the strata has {lo}..{k - 1}; the per-stratum tables are released only if no cell of "
                f"any stratum has {lo}..{k - 1} rows; an estimate that a zero makes undefined is withheld")
    return (
        f"if any cell has {lo}..{k - 1} rows, no cell and no statistic is released, the row margins are "
        f"suppressed together if any has {lo}..{t - 1} rows, the column margins likewise, and the total if it has"
        f" {lo}..{t - 1} rows"
    )
