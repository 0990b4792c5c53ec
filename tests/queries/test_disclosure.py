"""The threshold rule of SELECT: every released number has at least k contributing rows.

In-process consortia (the nodes' code path). A curious analyst builds groups where the row
count passes k but a statistic rests on fewer patients (one non-null value, a pair of
columns rarely both present), asks order statistics of a group of exactly k, and probes
empty groups; each case checks what the analyst receives against the rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from queries.engine import run_in_process
from queries.table import normalize_frame


def _frame(**cols: list) -> pd.DataFrame:
    return normalize_frame(pd.DataFrame(cols))


def _two_sites() -> list[pd.DataFrame]:
    """Group "x": 5 rows, one non-null sbp (patient value 171); group "y": 12 rows, all sbp present."""
    nan = np.nan
    a = _frame(g=["x"] * 3 + ["y"] * 6, sbp=[171.0, nan, nan] + [120.0, 130, 125, 140, 135, 128],
               chol=[nan] * 3 + [5.0, 5.8, nan, nan, nan, 6.1])
    b = _frame(g=["x"] * 2 + ["y"] * 6, sbp=[nan, nan] + [118.0, 122, 150, 111, 133, 129],
               chol=[nan] * 2 + [4.2, nan, nan, 5.5, nan, nan])
    return [a, b]


@pytest.mark.parametrize("parties", [2, 3])
def test_a_statistic_with_fewer_than_k_contributors_is_suppressed_though_the_group_has_k_rows(parties: int) -> None:
    sites = _two_sites()
    if parties == 3:
        sites = [sites[0], sites[1].iloc[:4], sites[1].iloc[4:]]
    query = "SELECT COUNT(*), COUNT(sbp), SUM(sbp), AVG(sbp), VAR(sbp), STDDEV(sbp), MEDIAN(sbp) GROUP BY g"
    result, _ = run_in_process(sites, query, min_cell=5)
    x, y = result.rows
    assert x[0] == "x" and x[1] == 5  # the row count itself has 5 contributors
    assert x[2:] == [None] * 6, "a value resting on one patient was released"
    assert result.cell_suppressed[0] == [False, False] + [True] * 6
    pooled = pd.concat(sites)
    want = pooled[pooled.g == "y"].sbp
    assert y[1:7] == [12, 12, pytest.approx(want.sum()), pytest.approx(want.mean()), pytest.approx(want.var()),
                      pytest.approx(want.std())]
    assert y[7] == pytest.approx(want.median())
    assert result.cell_suppressed[1] == [False] * 8
    assert "suppressed" in result.to_table() and "171" not in result.to_table() + result.to_json()


def test_corr_needs_k_rows_with_both_values() -> None:
    result, _ = run_in_process(_two_sites(), "SELECT COUNT(chol), COUNT(sbp), CORR(sbp, chol) GROUP BY g", min_cell=5)
    # group y: 5 chol values, 12 sbp values, but only 5 rows with both -> released; with k = 6 it is not.
    assert result.rows[1][1:3] == [5, 12] and result.rows[1][3] is not None
    stricter, _ = run_in_process(_two_sites(), "SELECT COUNT(sbp), CORR(sbp, chol) GROUP BY g", min_cell=6)
    assert stricter.rows[1] == ["y", 12, None] and stricter.cell_suppressed[1] == [False, False, True]


def test_order_statistics_need_k_values_at_or_below_and_at_or_above() -> None:
    five = [_frame(v=[3.0, 9.0, 4.0]), _frame(v=[7.0, 1.0])]
    result, _ = run_in_process(five, "SELECT COUNT(*), QUANTILE(v, 0.25), MEDIAN(v), QUANTILE(v, 0.75)", min_cell=5)
    assert result.rows == [[5, None, None, None]]  # a group of exactly k releases none of its values
    ten = [_frame(v=[float(i) for i in range(6)]), _frame(v=[float(i) for i in range(6, 10)])]
    result, _ = run_in_process(ten, "SELECT MEDIAN(v), QUANTILE(v, 0.25), QUANTILE(v, 0.5)", min_cell=5)
    assert result.rows == [[4.5, None, 4.5]]  # median: 5 below and 5 above; Q25: only 2.5 below
    twenty = [_frame(v=[float(i) for i in range(11)]), _frame(v=[float(i) for i in range(11, 20)])]
    result, _ = run_in_process(twenty, "SELECT QUANTILE(v, 0.25), QUANTILE(v, 0.75)", min_cell=5)
    assert result.rows == [[pytest.approx(4.75), pytest.approx(14.25)]]


def test_exactly_k_contributors_is_released_and_k_minus_one_is_not() -> None:
    sites = [_frame(g=["a"] * 3 + ["b"] * 2, v=[1.0, 2, 3, 4, 5]), _frame(g=["a"] * 2 + ["b"] * 2, v=[6.0, 7, 8, 9])]
    result, _ = run_in_process(sites, "SELECT COUNT(*), AVG(v) GROUP BY g", min_cell=5)
    assert result.rows == [["a", 5, pytest.approx(3.8)], ["b", None, None]]
    assert result.suppressed == [False, True]


def test_extremes_when_a_site_allows_them_still_need_k_contributors() -> None:
    sites = _two_sites()
    result, _ = run_in_process(sites, "SELECT MIN(sbp), MAX(sbp) GROUP BY g", min_cell=5)
    assert result.rows[0] == ["x", None, None]
    assert result.rows[1] == ["y", 111.0, 150.0]


def test_zeros_are_released_only_when_every_site_releases_them() -> None:
    sites = [_frame(g=["a"] * 6 + ["b"] * 3, v=[1.0] * 6 + [np.nan] * 3),
             _frame(g=["a"] * 2 + ["b"] * 4 + ["c"], v=[2.0] * 2 + [np.nan] * 5)]
    query = "SELECT COUNT(*), COUNT(v), AVG(v) GROUP BY g"
    released, _ = run_in_process(sites, query, min_cell=5)
    assert released.rows == [["a", 8, 8, pytest.approx(1.25)], ["b", 7, 0, None], ["c", None, 0, None]]
    assert released.cell_suppressed[1] == [False, False, False, False]  # 0 and the NULL it implies are shown
    assert released.cell_suppressed[2] == [False, True, False, False]  # one row: its count is withheld, 0 is not
    withheld, _ = run_in_process(sites, query, min_cell=5, release_zero=False)
    assert withheld.rows[1] == ["b", 7, None, None] and withheld.cell_suppressed[1] == [False, False, True, True]
    # an empty group shows as suppressed rather than disappearing, so it cannot be told from a small one
    empty_too = [_frame(g=["a"] * 6 + ["b"], v=[1.0] * 7), _frame(g=["c"] * 6, v=[1.0] * 6)]
    shown, _ = run_in_process(empty_too, "SELECT COUNT(*) GROUP BY g", min_cell=5, release_zero=False)
    assert [r[0] for r in shown.rows] == ["a", "b", "c", None]  # None: the NULL group, empty here
    assert shown.suppressed == [False, True, False, True]


def test_the_analyst_gets_no_null_flag_for_a_suppressed_value() -> None:
    """VAR of one value is NULL (n < 2); inside a suppressed cell even that fact is withheld."""
    from mpc.fixedpoint import PRECISE
    from mpc.inprocess import make_contexts, run_parties
    from mpc.share import reconstruct
    from protocols.material import KINDS
    from queries.engine import local_domains, plan_query, run_party
    from queries.table import check_schemas, schema_of

    sites = _two_sites()
    query = "SELECT VAR(sbp), AVG(chol) GROUP BY g"
    plan = plan_query(query, check_schemas([schema_of(f) for f in sites]), local_domains(sites, ("g",)), 5)
    shares = run_parties(2, lambda ctx, frame: run_party(ctx, plan, frame), args=sites,
                         contexts=make_contexts(2, kinds=KINDS))
    opened = [PRECISE.decode(reconstruct(o), o[0].frac) if o[0].ring.bits == 128 else reconstruct(o)
              for o in zip(*shares)]
    empty, var, avg, var_null, avg_null, var_hidden, avg_hidden, var_exponent, avg_exponent = (
        np.rint(np.asarray(o, dtype=float))[:2] for o in opened  # groups x, y (the third: the empty NULL group)
    )
    assert list(var_hidden) == [1, 0] and list(var_null) == [0, 0]  # group x: 1 sbp; a NULL flag would say n < 2
    assert list(avg_hidden) == [0, 0] and list(avg_null) == [1, 0]  # 0 chol values: a released zero, so NULL
    assert var[0] == 0 and var_exponent[0] == 0 and avg[0] == 0 and avg_exponent[0] == 0 and list(empty) == [0, 0]
