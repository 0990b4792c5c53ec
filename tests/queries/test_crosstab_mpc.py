"""CROSSTAB in MPC (in-process parties) against the plaintext rule `queries.crosstab_rule.release_mask`,
and its round count."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from queries.crosstab import rounds
from queries.crosstab_rule import release_mask
from queries.engine import run_in_process
from queries.table import normalize_frame

QUERY = "CROSSTAB a BY b WHERE w = 1"


def _sites(table: np.ndarray, n: int, seed: int = 0) -> list[pd.DataFrame]:
    """The table's rows dealt at random to n parties; each party also holds one row (w = 0,
    filtered out) of every row and column value, so that empty cells stay in the domains."""
    r, c = table.shape
    names = [(f"r{i:03d}", f"c{j:03d}") for i in range(r) for j in range(c)]
    rows = [names[g] for g, count in enumerate(table.ravel()) for _ in range(int(count))]
    owner = np.random.default_rng(seed).integers(0, n, len(rows))
    frames = []
    for p in range(n):
        mine = [row for row, o in zip(rows, owner) if o == p] + names
        weight = [1] * (len(mine) - len(names)) + [0] * len(names)
        columns = {"a": [x for x, _ in mine], "b": [y for _, y in mine], "w": weight}
        frames.append(normalize_frame(pd.DataFrame(columns)))
    return frames


def _expected(table: np.ndarray, k: int, release_zero: bool) -> tuple[list[list[Any]], list[bool]]:
    rel = release_mask(table, k, release_zero)
    r, c = table.shape
    rows = []
    for i in range(r):
        cells = [int(v) if rel.cells else None for v in table[i]]
        rows.append([f"r{i:03d}", *cells, int(table[i].sum()) if rel.rows else None])
    rows.append(["total", *[int(v) if rel.cols else None for v in table.sum(axis=0)],
                 int(table.sum()) if rel.total else None])
    flags = [not (rel.cells and rel.rows)] * r + [not (rel.cols and rel.total)]
    return rows, flags


def _random_tables(seed: int) -> list[tuple[np.ndarray, int, bool]]:
    """Tables of 2 x 2, 2 x 3 and 3 x 3 cells drawn from 0, small (< k) and large (>= k)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape, k, release_zero in [((2, 2), 5, True), ((2, 3), 3, False), ((3, 3), 5, True), ((3, 3), 4, False),
                                   ((3, 2), 2, True), ((3, 3), 3, True)]:
        kind = rng.integers(0, 3, shape)
        values = np.where(kind == 0, 0, np.where(kind == 1, rng.integers(1, k, shape), rng.integers(k, 3 * k, shape)))
        out.append((values, k, release_zero))
    return out


FIXED = [
    (np.array([[15, 15], [11, 1]]), 5, True),  # one small cell: cells hidden, margins and total shown
    (np.array([[10, 20], [30, 40]]), 5, True),  # nothing small
    (np.array([[2, 0, 0], [0, 30, 30], [0, 30, 30]]), 5, True),  # a small row margin: every row margin hidden
    (np.array([[0, 7, 9], [8, 0, 6], [5, 5, 5]]), 5, False),  # zeros withheld: every cell hidden
    (np.array([[0, 7, 9], [8, 0, 6], [5, 5, 5]]), 5, True),  # zeros released: everything shown
    (np.array([[1, 1], [0, 0]]), 5, True),  # the total too is small
    (np.array([[1, 1], [1, 10]]), 2, True),  # k = 2: margins of 2 beside a suppressed cell are hidden (t = 3)
]


@pytest.mark.parametrize("case", range(len(FIXED) + 6))
def test_mpc_crosstab_releases_what_the_plaintext_rule_releases(case: int) -> None:
    """Each table on two parties or three, in turn (the rule is decided on the pooled counts' shares,
    whatever the number of parties): seven tables on two, six on three."""
    table, k, release_zero = (FIXED + _random_tables(seed=7))[case]
    n = 2 + case % 2
    result, _ = run_in_process(_sites(table, n, seed=case), QUERY, min_cell=k, release_zero=release_zero)
    rows, flags = _expected(table, k, release_zero)
    assert result.rows == rows
    assert result.suppressed == flags
    shown = bool(release_mask(table, k, release_zero).cells)
    live = bool((table.sum(axis=1) > 0).sum() >= 2 and (table.sum(axis=0) > 0).sum() >= 2)
    assert ("chi2" in result.extra) is (shown and live)
    assert shown or "withheld" in result.extra["statistics"]
    assert ("suppressed_parts" in result.extra) is not shown


def test_a_small_row_margin_is_not_derivable_from_the_total_and_the_others() -> None:
    table = np.array([[2, 0, 0], [0, 30, 30], [0, 30, 30]])
    result, _ = run_in_process(_sites(table, 3), QUERY, min_cell=5)
    assert [row[-1] for row in result.rows] == [None, None, None, 122]  # no row margin: 122 - 60 - 60 is not open
    assert result.rows[-1][1:4] == [None, None, None]  # column margin 2 is small: every column margin hidden
    assert result.extra["suppressed_parts"] == ["cells", "row margins", "column margins"]


@pytest.mark.parametrize(("shape", "expected"), [((2, 2), 8), ((3, 3), 10), ((2, 130), 11)])
def test_rounds_are_one_comparison_a_log_depth_tree_and_one_product(shape: tuple[int, int], expected: int) -> None:
    """5 (one batched comparison) + ceil(log2 cells), at most 5 (past that, one more comparison
    of the sums) + 1 (release); the inputs are shared by pairwise seeds, without a round."""
    table = np.full(shape, 6)
    table[0, 1] = 1
    result, plan = run_in_process(_sites(table, 3), QUERY, min_cell=5)
    assert plan.cost["rounds"] == rounds(*shape) == expected
    rows, _ = _expected(table, 5, True)
    assert result.rows == rows


def test_the_analyst_receives_only_kept_counts_and_four_bits() -> None:
    from mpc.inprocess import make_contexts, run_parties
    from mpc.share import reconstruct
    from protocols.material import KINDS
    from queries.crosstab import crosstab
    from queries.engine import local_domains, plan_query
    from queries.local import prepare
    from queries.table import check_schemas, schema_of

    table = np.array([[15, 15], [11, 1]])
    frames = _sites(table, 2)
    plan = plan_query(QUERY, check_schemas([schema_of(f) for f in frames]), local_domains(frames, ["a", "b"]), 5)
    shares = run_parties(2, lambda ctx, f: crosstab(ctx, plan, prepare(plan, f)), args=frames,
                         contexts=make_contexts(2, kinds=KINDS))
    released, bits = (reconstruct(output).astype(np.int64) for output in zip(*shares))
    assert released.tolist() == [0, 0, 0, 0, 30, 12, 26, 16, 42]  # cells zeroed in MPC, margins and total kept
    assert bits.tolist() == [1, 0, 0, 0]  # cells, row margins, column margins, total


def test_an_empty_domain_gives_an_empty_table_with_total_zero() -> None:
    frame = normalize_frame(pd.DataFrame({"a": ["x", "y"], "b": pd.Series([None, None], dtype="string"), "w": [1, 1]}))
    result, plan = run_in_process([frame, frame], QUERY, min_cell=5, release_zero=False)
    assert result.rows == [["total", 0]] and result.suppressed == [False]
    assert plan.cost["rounds"] == rounds(0, 0) == 6
