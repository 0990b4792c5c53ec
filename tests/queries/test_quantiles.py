"""Exact MEDIAN/QUANTILE/MIN/MAX by the secure search, against pandas, with its round count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from queries.engine import run_in_process
from queries.plan import SEARCH_BITS, SEARCH_STEPS
from queries.table import normalize_frame


def _sites(n: int, seed: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []

    def scales(size: int) -> np.ndarray:
        return 10.0 ** -rng.integers(0, 6, size)  # magnitudes from 1e-5 to 1e3

    for size in rng.integers(8, 25, n):
        out.append(
            normalize_frame(
                pd.DataFrame(
                    {
                        "g": rng.choice(["a", "b"], size),
                        "i": rng.integers(-3, 4, size),  # many ties
                        "x": np.where(rng.random(size) < 0.2, np.nan, rng.normal(0, 1e3, size) * scales(size)),
                    }
                )
            )
        )
    return out


@pytest.mark.parametrize("n", [2, 5])
def test_order_statistics_match_pandas(n: int) -> None:
    sites = _sites(n, seed=n)
    query = "SELECT MEDIAN(i), QUANTILE(i, 0), QUANTILE(i, 1), QUANTILE(x, 0.37), MIN(x), MAX(i), MEDIAN(x) GROUP BY g"
    result, _ = run_in_process(sites, query, min_cell=1)
    pooled = pd.concat(sites, ignore_index=True)
    for key, *got in result.rows:
        part = pooled[pooled.g == key]
        x = part.x.astype(float).dropna()
        want = [part.i.median(), part.i.min(), part.i.max(), x.quantile(0.37), x.min(), part.i.max(), x.median()]
        for g_val, w in zip(got, want):
            assert g_val == pytest.approx(float(w), rel=1e-9, abs=1e-9), (key, got, want)
        assert isinstance(got[5], int) and isinstance(got[4], float)  # as pandas: MAX of an integer column


def test_integer_sums_are_exact_integers() -> None:
    big = [2**40 + 1, 2**40 + 3, -(2**39) + 7, 5, 6]
    sites = [normalize_frame(pd.DataFrame({"v": big[:2]})), normalize_frame(pd.DataFrame({"v": big[2:]}))]
    result, _ = run_in_process(sites, "SELECT SUM(v), MIN(v), AVG(v)", min_cell=1)
    assert result.rows == [[sum(big), min(big), pytest.approx(sum(big) / 5, rel=1e-12)]]
    assert all(isinstance(v, int) for v in result.rows[0][:2])


def test_search_rounds_are_fixed_and_a_hidden_group_gets_no_value() -> None:
    a = normalize_frame(pd.DataFrame({"g": ["a"] * 6 + ["b"] * 2, "v": [5, 1, 4, 1, 5, 9, 2, 6]}))
    b = normalize_frame(pd.DataFrame({"g": ["a"] * 3 + ["b"], "v": [3, 5, 8, 9]}))
    with_median, plan = run_in_process([a, b], "SELECT COUNT(*), MEDIAN(v) GROUP BY g", min_cell=4)
    without, plan0 = run_in_process([a, b], "SELECT COUNT(*), COUNT(v) GROUP BY g", min_cell=4)
    assert with_median.rows == [["a", 9, 5.0], ["b", None, None]] and with_median.suppressed == [False, True]
    # per step: share the counts (no round: pairwise seeds), one Z_2^64 comparison (8 rounds), open the bits
    search = SEARCH_STEPS * (8 + 1)
    assert plan.cost["rounds"] - plan0.cost["rounds"] > search
    assert plan.cost["rounds"] - plan0.cost["rounds"] <= search + 16  # set-up: ranks, interpolation, null flags
    assert SEARCH_STEPS * SEARCH_BITS == 64
