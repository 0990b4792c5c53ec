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
