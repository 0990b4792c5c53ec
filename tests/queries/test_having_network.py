"""HAVING through real nodes (gRPC over mTLS on 127.0.0.1): the dropped groups are absent from the
analyst's result, which matches DuckDB on the pooled rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from parties.local import LocalConsortium
from tests.queries.test_having import _site
from tests.queries.test_sql_pooled import assert_matches, reference

pytestmark = pytest.mark.network


def test_having_through_real_nodes(tmp_path: Path) -> None:
    files = {}
    for name, seed in (("a", 21), ("b", 22)):
        (tmp_path / name).mkdir()
        files[name] = tmp_path / name / "cohort.csv"
        _site(120, seed).to_csv(files[name], index=False)
    pooled = pd.concat([pd.read_csv(f) for f in files.values()], ignore_index=True)
    query = ("SELECT g, COUNT(*) AS n, AVG(bmi) AS m FROM cohort GROUP BY g "
             "HAVING COUNT(*) >= 25 AND AVG(bmi) > 26 ORDER BY n DESC")
    want = reference(pooled, query)
    assert 0 < len(want) < pooled["g"].nunique()  # some group is dropped
    with LocalConsortium(["a", "b"], data=files) as consortium:
        result = consortium.query(query)
    assert_matches(result.to_pandas(), want, ordered=True)
