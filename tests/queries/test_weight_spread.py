"""A weighted VAR withheld for precision says why and how to have it: centring the column in the
query gives DescrStatsW's variance at any magnitude."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.weightstats import DescrStatsW

from queries.engine import run_in_process


def _sites(centre: float) -> list[pd.DataFrame]:
    rng = np.random.default_rng(7)
    return [pd.DataFrame({"cost": np.round(centre + rng.normal(0, 3, rows), 2), "w": rng.integers(1, 5, rows)})
            for rows in (400, 300)]


def test_a_withheld_weighted_variance_says_why_and_centring_gives_it() -> None:
    sites = _sites(1e7)
    pooled = pd.concat(sites)
    ref = DescrStatsW(pooled.cost - 1e7, weights=pooled.w.astype(float), ddof=1)
    result, _ = run_in_process(sites, "SELECT VAR(cost), STDDEV(cost - 10000000) AS sd, VAR(cost - 10000000) AS v "
                                      "FROM cohort WEIGHT w")
    assert result.rows[0][0] is None
    assert result.rows[0][1] == pytest.approx(ref.std, rel=1e-9)
    assert result.rows[0][2] == pytest.approx(ref.var, rel=1e-9)
    notes = result.extra["notes"]
    assert len(notes) == 1 and notes[0].startswith("var(cost) is NULL where the values' spread is too small")
    assert "c near its mean (here 1e+07)" in notes[0]
    assert "note: var(cost) is NULL" in result.to_table()


def test_a_released_weighted_variance_carries_no_note() -> None:
    result, _ = run_in_process(_sites(100.0), "SELECT VAR(cost), AVG_CI(cost) FROM cohort WEIGHT w")
    assert result.rows[0][0] is not None and "notes" not in result.extra
