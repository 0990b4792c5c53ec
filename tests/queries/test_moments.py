"""Means, variances and correlations: accuracy at scale, and rounds that do not grow with the
number of aggregates of a kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from queries.engine import run_in_process
from queries.table import normalize_frame


def _sites(sd: float, sizes: tuple[int, ...], seed: int = 1) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        x = rng.normal(0, sd, n)
        out.append(normalize_frame(pd.DataFrame({"x": x, "y": 0.5 * x + rng.normal(0, sd, n)})))
    return out


def test_corr_and_variance_at_large_scale_match_pandas() -> None:
    # centred sums of squares ~3e13, beyond 2^44: CORR is formed from variances, which stay in range
    sites = _sites(1e5, (1500, 1500))
    result, _ = run_in_process(sites, "SELECT CORR(x, y), VAR(x), STDDEV(y), AVG(x)")
    pooled = pd.concat(sites).astype(float)
    want = [pooled.x.corr(pooled.y), pooled.x.var(), pooled.y.std(), pooled.x.mean()]
    for got, w in zip(result.rows[0], want):
        assert got == pytest.approx(w, rel=1e-6)


def test_rounds_do_not_grow_with_aggregates_of_a_kind() -> None:
    sites = _sites(3.0, (12, 9))
    rounds = {}
    for query in (
        "SELECT VAR(x), AVG(x)",
        "SELECT VAR(x), VAR(y), AVG(x), AVG(y)",
        "SELECT STDDEV(x), CORR(x, y)",
        "SELECT STDDEV(x), STDDEV(y), CORR(x, y), CORR(y, x) AS c2",
    ):
        _, plan = run_in_process(sites, query)
        rounds[query] = plan.cost["rounds"]
    values = list(rounds.values())
    assert values[0] == values[1] and values[2] == values[3], rounds


def test_large_mean_small_spread_and_constant_columns_match_pandas() -> None:
    # sum x^2 - (sum x)^2 / n loses ~mean^2/var x 4e-12 relative; the parallel-axis rule does not
    rng = np.random.default_rng(3)
    sites = []
    for n in (9, 14, 6):
        x = 1e4 + rng.normal(0, 0.05, n)
        sites.append(normalize_frame(pd.DataFrame({"x": x, "y": x * 2 + rng.normal(0, 0.05, n), "c": [7.25] * n})))
    result, _ = run_in_process(sites, "SELECT VAR(x), STDDEV(y), CORR(x, y), VAR(c), STDDEV(c), CORR(c, x)")
    pooled = pd.concat(sites).astype(float)
    var_x, sd_y, corr, var_c, sd_c, corr_c = result.rows[0]
    assert var_x == pytest.approx(pooled.x.var(), rel=1e-6)
    assert sd_y == pytest.approx(pooled.y.std(), rel=1e-6)
    assert corr == pytest.approx(pooled.x.corr(pooled.y), rel=1e-6)
    assert var_c == 0.0 and sd_c == 0.0 and corr_c is None  # pandas: 0, 0, NaN
