"""Wide magnitudes through real nodes: an exact integer SUM beyond float64 and a variance of
hospital costs in cents reach the analyst right (queries/scaling.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from parties.local import LocalConsortium


@pytest.mark.network
def test_exact_integer_sum_and_large_variance_over_real_nodes(tmp_path: Path) -> None:
    big = [[2**60 + 1, 2**59 + 3, 7], [-(2**58) + 5, 11, 13]]
    costs = [[1e7, 2e7, 3e7], [4e7, 5e7, 6e7]]
    files = []
    for i, (b, c) in enumerate(zip(big, costs)):
        path = tmp_path / f"s{i}.csv"
        pd.DataFrame({"big": b, "cost": c, "y": [1.0, 3.0, 2.0]}).to_csv(path, index=False)
        files.append(path)
    names = ["s0", "s1"]
    with LocalConsortium(names, data=dict(zip(names, files))) as consortium:
        result = consortium.query("SELECT SUM(big), VAR(cost), STDDEV(cost), CORR(cost, y)", min_cell=1)
    total, var, sd, corr = result.rows[0]
    pooled = pd.DataFrame({"cost": costs[0] + costs[1], "y": [1.0, 3.0, 2.0] * 2})
    assert total == sum(big[0] + big[1]) and isinstance(total, int)
    assert var == pytest.approx(pooled.cost.var(), rel=1e-12)
    assert sd == pytest.approx(pooled.cost.std(), rel=1e-11)
    assert corr == pytest.approx(pooled.cost.corr(pooled.y), rel=1e-9)
