"""Standard SQL through real nodes (gRPC over mTLS on 127.0.0.1): a derived grouping column's
domain is formed by the private union at the nodes, and the analyst orders the released rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from parties.local import LocalConsortium
from tests.queries.test_sql_pooled import _site, assert_matches, reference

pytestmark = pytest.mark.network


def test_a_derived_grouping_column_through_real_nodes(tmp_path: Path) -> None:
    frames = [_site(120, 11), _site(100, 12)]
    files = {}
    for name, frame in zip(("a", "b"), frames):
        (tmp_path / name).mkdir()
        files[name] = tmp_path / name / "cohort.csv"  # the dataset "cohort" at each site: FROM cohort
        frame.to_csv(files[name], index=False)
    pooled = pd.concat([pd.read_csv(f) for f in files.values()], ignore_index=True)
    query = ("SELECT CASE WHEN age >= 55 THEN 'older' ELSE 'younger' END AS band, COUNT(*) AS n, "
             "AVG(weight / (height * height)) AS bmi2 FROM cohort WHERE name IS NOT NULL AND name NOT LIKE 'c%' "
             "GROUP BY band ORDER BY n DESC")
    with LocalConsortium(["a", "b"], data=files) as consortium:
        result = consortium.query(query)
    assert_matches(result.to_pandas(), reference(pooled, query), ordered=True)
