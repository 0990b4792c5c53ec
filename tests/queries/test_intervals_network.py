"""AVG_CI, PROPORTION and RATE through real nodes (gRPC over mTLS on 127.0.0.1): the analyst's intervals match
scipy and statsmodels on the pooled rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from parties.local import LocalConsortium
from tests.queries.test_intervals import QUERY, _expected, _site

pytestmark = pytest.mark.network


def test_intervals_through_real_nodes(tmp_path: Path) -> None:
    files = {}
    for name, seed, rows in (("a", 31, 90), ("b", 32, 140)):
        (tmp_path / name).mkdir()
        files[name] = tmp_path / name / "cohort.csv"
        _site(rows, seed).to_csv(files[name], index=False)
    want = _expected(pd.concat([pd.read_csv(f) for f in files.values()], ignore_index=True))
    with LocalConsortium(["a", "b"], data=files) as consortium:
        result = consortium.query(QUERY)
    assert result.columns[:4] == ["g", "m", "m_ci95_low", "m_ci95_high"] and len(result.rows) == 3
    for row in result.rows:
        assert row[1:] == pytest.approx(want[row[0]], rel=1e-6), row[0]
