"""The crosstab disclosure rule against an attacker who knows the rule and sees everything released.

For a shape, k and release_zero, every table of non-negative integers whose total is at
most a bound is listed and grouped by its *view*: the released cells, margins and total,
with suppressed ones blanked (which says which parts are suppressed). A view with a
released total N holds every table of total N, and a suppressed total is at most t - 1,
within the bound: each group is exactly the set of tables the attacker cannot tell apart.
A suppressed number with one value across its group would be derived exactly.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import numpy as np
import pytest

from queries.crosstab_rule import release_mask, rule_text, thresholds

Rule = Callable[[np.ndarray, int, bool], np.ndarray]
"""Tables (m, r, c), k, release_zero -> released mask (m, r c + r + c + 1)."""

BOUND = {(1, 3): 18, (2, 2): 24, (2, 3): 24}
"""Largest total listed per shape (every pattern table below fits)."""


def numbers(tables: np.ndarray) -> np.ndarray:
    """Cells (by row), row margins, column margins and total of each table: (m, r c + r + c + 1)."""
    m = tables.shape[0]
    return np.concatenate(
        [tables.reshape(m, -1), tables.sum(axis=2), tables.sum(axis=1), tables.sum(axis=(1, 2))[:, None]], axis=1
    )


def the_rule(tables: np.ndarray, k: int, release_zero: bool) -> np.ndarray:
    rel = release_mask(tables, k, release_zero)
    _, r, c = tables.shape
    parts = [(rel.cells, r * c), (rel.rows, r), (rel.cols, c), (rel.total, 1)]
    return np.concatenate([np.repeat(np.asarray(p)[:, None], size, axis=1) for p, size in parts], axis=1)


@functools.cache
def _vectors(cells: int, bound: int) -> np.ndarray:
    """Every vector of `cells` non-negative integers with sum <= bound: (count, cells)."""
    if cells == 1:
        return np.arange(bound + 1, dtype=np.int64)[:, None]
    parts = []
    for first in range(bound + 1):
        rest = _vectors(cells - 1, bound - first)
        parts.append(np.column_stack([np.full(len(rest), first, dtype=np.int64), rest]))
    return np.concatenate(parts)


def all_tables(r: int, c: int, bound: int) -> np.ndarray:
    """Every r x c table of non-negative integers with total <= bound (C(bound + rc, rc) of them)."""
    return _vectors(r * c, bound).reshape(-1, r, c)


@functools.cache
def _listed(r: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """all_tables of the shape up to its BOUND and their numbers, computed once per shape (read only);
    the numbers as int8 (at most BOUND), which the grouping below moves and compares several times faster."""
    assert BOUND[(r, c)] <= np.iinfo(np.int8).max
    tables = all_tables(r, c, BOUND[(r, c)])
    values = numbers(tables).astype(np.int8)
    tables.flags.writeable = values.flags.writeable = False
    return tables, values


@functools.cache
def _listed_ids(r: int, c: int) -> np.ndarray:
    """The sorted _view_ids of _listed's tables (their cells as a view): one integer per listed table."""
    tables, _ = _listed(r, c)
    return np.sort(_view_ids(tables.reshape(len(tables), -1), BOUND[(r, c)]))


def is_listed(tables: np.ndarray) -> np.ndarray:
    """Per table (m, r, c) with cells within the shape's BOUND: whether all_tables lists it."""
    m, r, c = tables.shape
    assert 0 <= tables.min() and tables.max() <= BOUND[(r, c)]  # so that an id names one table
    listed = _listed_ids(r, c)
    ids = _view_ids(tables.reshape(m, -1), BOUND[(r, c)])
    return listed[np.minimum(np.searchsorted(listed, ids), len(listed) - 1)] == ids


def _view_ids(view: np.ndarray, bound: int) -> np.ndarray:
    """One integer per row of `view` (numbers in -1..bound), equal exactly when the rows are:
    the row's digits in base bound + 2 (np.unique over whole rows is 50 times slower; an integer
    matrix product is several times faster than multiplying and summing)."""
    base = bound + 2
    assert float(base) ** view.shape[1] < 2.0**63, "views too wide to pack into one int64"
    return (view + 1) @ base ** np.arange(view.shape[1], dtype=np.int64)


def pinned(rule: Rule, r: int, c: int, k: int, release_zero: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tables, their numbers, mask of suppressed numbers with one value in their view's group),
    a suppressed cell equal to 0 in a row or column released with margin 0 excepted.

    Only tables with a suppressed number are grouped: the view shows which numbers are suppressed,
    so a group holds tables of one mask, and a table with none suppressed has nothing to derive."""
    tables, values = _listed(r, c)
    shown_all = rule(tables, k, release_zero)
    assert (values[:, -1] <= BOUND[(r, c)]).all() and thresholds(k, release_zero)[2] - 1 <= BOUND[(r, c)]
    out = np.zeros_like(shown_all)
    some = np.flatnonzero(~shown_all.all(axis=1))
    if not len(some):
        return tables, values, out
    shown, mine = shown_all[some], values[some]
    view = np.where(shown, mine, -1)
    ids = _view_ids(view, BOUND[(r, c)])
    order = np.argsort(ids, kind="stable")  # tables of one view next to each other
    new_view = np.r_[True, np.diff(ids[order]) != 0]
    grouped = mine[order]
    # a number varies within its group when it differs between two neighbours of the group
    varies = np.zeros_like(shown)
    varies[1:] = (grouped[1:] != grouped[:-1]) & ~new_view[1:, None]
    starts = np.flatnonzero(new_view)
    varied = np.logical_or.reduceat(varies, starts, axis=0)
    same = np.empty_like(shown)
    same[order] = ~varied[np.cumsum(new_view) - 1]
    stuck = ~shown & same
    if release_zero:
        margin_zero = np.zeros_like(stuck)
        grid = np.arange(r * c).reshape(r, c)
        for i, j in itertools.product(range(r), range(c)):
            row_zero = shown[:, r * c + i] & (mine[:, r * c + i] == 0)
            col_zero = shown[:, r * c + r + j] & (mine[:, r * c + r + j] == 0)
            margin_zero[:, grid[i, j]] = row_zero | col_zero
        stuck &= ~margin_zero
    out[some] = stuck
    return tables, values, out


CASES = [(shape, k, rz) for shape in BOUND for k in (1, 2, 3, 5) for rz in (True, False) if shape != (2, 3) or k < 5]


def _patterns(r: int, c: int, k: int) -> list[np.ndarray]:
    """Every table whose cells are each 0, small (< k) or large (>= k), in three concrete
    variants: small 1 and large k; k - 1 and k + 1; and both alternating by position."""
    out = []
    for pattern in itertools.product("0sb", repeat=r * c):
        for variant in range(3):
            values = []
            for pos, p in enumerate(pattern):
                odd = variant == 1 or (variant == 2 and pos % 2 == 1)
                values.append({"0": 0, "s": k - 1 if odd else 1, "b": k + 1 if odd else k}[p])
            out.append(np.array(values, dtype=np.int64).reshape(r, c))
    return out


@pytest.mark.parametrize(
    ("shape", "k", "release_zero"), CASES, ids=[f"{r}x{c}-k{k}-{'zeros' if z else 'nozeros'}" for (r, c), k, z in CASES]
)
def test_no_suppressed_number_is_derived_from_any_small_table(
    shape: tuple[int, int], k: int, release_zero: bool
) -> None:
    """Every table up to the bound, among them every 0 / small / large pattern of the shape."""
    tables, _, stuck = pinned(the_rule, *shape, k, release_zero)
    bad = np.flatnonzero(stuck.any(axis=1))
    assert bad.size == 0, f"derivable: {tables[bad[:3]].tolist()}"
    patterns = _patterns(*shape, k)
    assert is_listed(np.stack(patterns)).all()  # each pattern's total is within the bound
    if k > 1:
        assert (~the_rule(np.stack(patterns), k, release_zero)).any()  # and they do exercise suppression


def _per_margin(tables: np.ndarray, k: int, release_zero: bool) -> np.ndarray:
    """The rule this module replaces: every margin and the total suppressed on its own count."""
    lo = 1 if release_zero else 0
    values = numbers(tables)
    small = (values >= lo) & (values < k)
    cells = tables.shape[1] * tables.shape[2]
    shown = ~small
    shown[:, :cells] = ~small[:, :cells].any(axis=1, keepdims=True)
    return shown


def _no_widening(tables: np.ndarray, k: int, release_zero: bool) -> np.ndarray:
    """This rule with t = k: margins and total judged by the cells' threshold."""
    values = numbers(tables)
    lo = 1 if release_zero else 0
    small = (values >= lo) & (values < k)
    r, c = tables.shape[1:]
    hidden = small[:, : r * c].any(axis=1, keepdims=True)
    spans = [(0, r * c), (r * c, r * c + r), (r * c + r, r * c + r + c), (r * c + r + c, r * c + r + c + 1)]
    shown = np.ones_like(small)
    for a, b in spans:
        shown[:, a:b] = ~(hidden & small[:, a:b].any(axis=1, keepdims=True)) if a else ~hidden
    return shown


def test_the_attacker_derives_cells_from_rules_that_leak() -> None:
    """The check can fail: margins suppressed one by one give the suppressed margin away
    (total minus the others), and without widening t, k = 2 pins a cell through its bounds."""
    _, _, stuck = pinned(_per_margin, 2, 3, 3, True)
    assert stuck[:, 6:8].any()  # a suppressed row margin, derived
    tables, _, stuck = pinned(_no_widening, 2, 2, 2, True)
    hit = [t.tolist() for t, s in zip(tables, stuck) if s[:4].any()]
    assert [[1, 1], [1, 10]] in hit  # margins 2, 11 / 2, 11: only n_11 = 1 has a cell of 1


def test_the_analyst_sees_which_parts_are_suppressed_not_which_number() -> None:
    rel = release_mask(np.array([[15, 15], [11, 1]]), 5, True)
    assert (rel.cells, rel.rows, rel.cols, rel.total) == (False, True, True, True)
    rel = release_mask(np.array([[2, 30, 30], [30, 30, 30]]), 5, True)  # column margin 32: columns still shown
    assert (rel.cells, rel.rows, rel.cols, rel.total) == (False, True, True, True)
    rel = release_mask(np.array([[2, 0, 0], [0, 30, 30]]), 5, True)  # row margin 2 and column margin 2
    assert (rel.cells, rel.rows, rel.cols, rel.total) == (False, False, False, True)
    assert bool(release_mask(np.array([[0, 7], [9, 8]]), 5, True).cells)
    assert not bool(release_mask(np.array([[0, 7], [9, 8]]), 5, False).cells)  # zeros withheld: 0 is small


def test_margins_are_judged_by_t_only_when_a_cell_is_suppressed() -> None:
    """k = 2 with zeros released: t = 3, so a margin of 2 is suppressed only beside a suppressed cell."""
    assert thresholds(2, True) == (1, 2, 3) and thresholds(1, False) == (0, 1, 2) and thresholds(5, True)[2] == 5
    assert bool(release_mask(np.array([[2, 0], [0, 9]]), 2, True).rows)
    assert not bool(release_mask(np.array([[1, 1], [1, 10]]), 2, True).rows)
    assert "1..4 rows" in rule_text(5, True) and "0..4 rows" in rule_text(5, False)


@pytest.mark.parametrize("bad", [np.array([[1, -1], [2, 3]]), np.array([[1.5, 1], [2, 3]]), np.array([1, 2])])
def test_release_mask_refuses_what_is_not_a_table_of_counts(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="non-negative integer counts"):
        release_mask(bad, 5, True)
    with pytest.raises(ValueError, match="at least 1"):
        release_mask(np.array([[1, 2], [3, 4]]), 0, True)
