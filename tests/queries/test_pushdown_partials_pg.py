"""A PostgreSQL site's per-group partials (one GROUP BY run by the server) against the same rows in
memory and in a CSV file read by DuckDB; and a division by zero, NULL in every one of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from queries.engine import run_in_process
from queries.sources import FrameSource, open_source
from queries.table import normalize_frame
from tests.pg import PgDatabase
from tests.queries.test_pushdown_partials import QUERY, _plan, mixed_frame

pytestmark = pytest.mark.xdist_group("postgres")  # one worker, so one PostgreSQL cluster (`tests.pg`)


@pytest.fixture
def frame() -> pd.DataFrame:
    return mixed_frame(23, 400)


def test_postgres_computes_the_stats_of_the_rows_in_memory(pg_db: PgDatabase, frame: pd.DataFrame) -> None:
    plan = _plan(QUERY, frame)
    want = FrameSource(frame).local(plan)
    got = open_source(pg_db.load(frame, "t")).local(plan)
    assert got.kept == want.kept and set(got.stats) == set(want.stats)
    for stat, values in want.stats.items():
        if stat[0] in ("rows", "n", "pn", "exact", "min", "max", "amax"):
            assert list(got.stats[stat]) == list(values), stat  # counts, exact sums, extremes: equal
        else:
            np.testing.assert_allclose(got.stats[stat], values, rtol=1e-13, err_msg=str(stat))


DIVIDING = ("SELECT CASE WHEN x / (k - k) IS NULL THEN 'null' ELSE 'value' END AS band, COUNT(*) AS n, "
            "AVG(x / 0) AS a, COUNT(k // (k - k)) AS c, SUM(k % 0) AS s FROM t WHERE x / 0 IS NULL GROUP BY band")
"""Every operator divides by zero in one query: in WHERE, in a derived grouping column, inside aggregates."""


def test_a_division_by_zero_is_null_in_memory_duckdb_and_postgres(pg_db: PgDatabase, frame: pd.DataFrame,
                                                                  tmp_path: Path) -> None:
    frame.to_csv(tmp_path / "t.csv", index=False)
    sources = [frame, open_source(tmp_path / "t.csv"), open_source(pg_db.load(frame, "t"))]
    results = [run_in_process([s, s], DIVIDING, min_cell=1)[0].to_pandas() for s in sources]
    for got in results[1:]:
        pd.testing.assert_frame_equal(got, results[0])
    first = results[0]
    assert first["band"].tolist() == ["null"] and first["n"].tolist() == [2 * len(frame)]  # x / 0 IS NULL: all
    assert first["a"].isna().all() and (first["c"] == 0).all()


def test_rows_stream_back_with_quotes_commas_newlines_and_empty_text_apart_from_null(
        pg_db: PgDatabase) -> None:
    from queries.parser import parse

    texts = ['say "hi"', "a,b", "two\nlines", "", None, "plain"]
    frame = pd.DataFrame({"s": pd.array(texts, dtype="string"), "x": [1.5, 2.0, 3.25, 4.0, 5.0, None]})
    source = open_source(pg_db.load(frame, "t"))
    stmt = parse("SELECT s, COUNT(*) FROM t GROUP BY s")
    got = source.values(stmt, {"s": "category", "x": "float"}, ["s"])
    assert got == {"s": tuple(sorted(t for t in texts if t is not None))}
    plan = _plan("SELECT MEDIAN(x) FROM t", normalize_frame(frame))
    rows = source.rows(plan).frame
    assert sorted(rows["x"].dropna().tolist()) == [1.5, 2.0, 3.25, 4.0, 5.0]
