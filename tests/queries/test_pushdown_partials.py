"""Per-group partials computed by the site's engine (queries.pushdown_partials) against numpy on the
same rows: counts and exact sums equal, float sums equal to a sequential float64 sum, centred sums
within a few units in the last place; the same from a table in memory, a CSV and a Parquet file;
and no row handed to Python for a plan that needs none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlglot

from queries import ir
from queries.engine import local_domains, plan_query, run_in_process
from queries.local import prepare
from queries.parser import parse
from queries.plan import Plan
from queries.pushdown import read_of
from queries.pushdown_partials import partials_sql, stats_of
from queries.sources import FrameSource, SqlSource, open_source
from queries.table import normalize_frame, schema_of

QUERY = ("SELECT g, COUNT(*), COUNT(x), SUM(k), SUM(x), VAR(x), CORR(x, y), MIN(k), MAX(k), MIN(x), MAX(x) "
         "FROM t WHERE k > -15 GROUP BY g")


def mixed_frame(seed: int, n: int) -> pd.DataFrame:
    """Groups with a NULL level, small integers, floats over seven orders of magnitude with NULLs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 20, n) * 10.0 ** rng.integers(-3, 4, n)
    x[rng.random(n) < 0.1] = np.nan
    return normalize_frame(pd.DataFrame({
        "g": rng.choice(np.array(["a", "b", "c", None], dtype=object), n),
        "k": rng.integers(-20, 20, n),
        "x": x,
        "y": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n)),
    }))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mixed_frame(17, 3000)


def _plan(text: str, frame: pd.DataFrame) -> Plan:
    stmt = parse(text)
    assert isinstance(stmt, ir.Select)
    return plan_query(stmt, schema_of(frame), local_domains([frame], list(stmt.group_by)), 1)


def _groups(plan: Plan, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The kept rows and each one's group index, in the plan's group order."""
    kept = frame[frame.k > -15].reset_index(drop=True)
    order = {key[0]: i for i, key in enumerate(plan.group_keys)}
    return kept, np.array([order[None if v is pd.NA or v is None else v] for v in kept.g.astype(object)])


def test_stats_match_numpy_on_the_same_rows(frame: pd.DataFrame) -> None:
    plan = _plan(QUERY, frame)
    local = prepare(plan, frame)
    kept, group = _groups(plan, frame)
    g = plan.groups
    x = kept.x.to_numpy(dtype=float, na_value=np.nan)
    y = kept.y.to_numpy(dtype=float, na_value=np.nan)
    k = kept.k.to_numpy(dtype=np.int64)
    present = ~np.isnan(x)
    st = local.stats
    np.testing.assert_array_equal(st[("rows",)], np.bincount(group, minlength=g))
    np.testing.assert_array_equal(st[("n", "x")], np.bincount(group[present], minlength=g))
    # the engine's float sum is the sequential float64 sum, to the last bit
    np.testing.assert_array_equal(st[("sum", "x")], np.bincount(group[present], x[present], minlength=g))
    mean = np.bincount(group[present], x[present], g) / np.bincount(group[present], minlength=g)
    two_pass = np.bincount(group[present], (x[present] - mean[group[present]]) ** 2, g)
    np.testing.assert_allclose(st[("m2", "x")], two_pass, rtol=1e-13)
    both = present & ~np.isnan(y)
    mx = np.bincount(group[both], x[both], g) / np.bincount(group[both], minlength=g)
    my = np.bincount(group[both], y[both], g) / np.bincount(group[both], minlength=g)
    cross = np.bincount(group[both], (x[both] - mx[group[both]]) * (y[both] - my[group[both]]), g)
    np.testing.assert_allclose(st[("pcross", "x", "y")], cross, rtol=1e-12, atol=1e-12 * np.abs(cross).max())
    np.testing.assert_array_equal(st[("pn", "x", "y")], np.bincount(group[both], minlength=g))
    exact = [sum(round(v * 2.0**40) for v in x[present & (group == i)]) for i in range(g)]  # round: half to even
    assert list(st[("exact", "x", 40)]) == exact
    assert list(st[("exact", "k", 0)]) == [int(k[group == i].sum()) for i in range(g)]
    assert list(st[("min", "k")]) == [int(k[group == i].min()) for i in range(g)]
    assert list(st[("max", "x")]) == [x[present & (group == i)].max() for i in range(g)]
    np.testing.assert_array_equal(st[("amax", "x")], [np.abs(x[present & (group == i)]).max() for i in range(g)])
    assert local.kept == len(kept) and local.frame.empty  # no row handed over: the plan needs none


def _files(frame: pd.DataFrame, root: Path) -> list[Path]:
    frame.to_csv(root / "t.csv", index=False)
    frame.to_parquet(root / "t.parquet")
    return [root / "t.csv", root / "t.parquet"]


def test_files_and_memory_give_the_same_stats(frame: pd.DataFrame, tmp_path: Path) -> None:
    plan = _plan(QUERY, frame)
    want = FrameSource(frame).local(plan).stats
    for path in _files(frame, tmp_path):
        got = open_source(path).local(plan).stats
        assert set(got) == set(want)
        for stat, values in want.items():
            np.testing.assert_array_equal(got[stat], values, err_msg=f"{path.suffix} {stat}")


def test_exact_sums_beyond_int64_and_of_mixed_magnitudes(tmp_path: Path) -> None:
    big = 2**62 - 7
    frame = normalize_frame(pd.DataFrame({
        "k": [big, big, big, -big, big],
        "x": [1e20, -0.1, 2.0**-40, -3e19, 1e-13],
    }))
    path = tmp_path / "big.parquet"
    frame.to_parquet(path)
    plan = _plan("SELECT SUM(k), SUM(x) FROM t", frame)
    for source in (FrameSource(frame), open_source(path)):
        st = source.local(plan).stats
        assert int(st[("exact", "k", 0)][0]) == 3 * big  # beyond 2^63: summed as 128-bit integers
        assert int(st[("exact", "x", 40)][0]) == sum(round(v * 2.0**40) for v in frame.x)


def test_a_nan_counts_as_null(tmp_path: Path) -> None:
    frame = pd.DataFrame({"g": ["a", "a", "b"], "x": [1.0, float("nan"), 2.0]})
    path = tmp_path / "nan.parquet"
    frame.to_parquet(path)  # Parquet keeps the NaN apart from NULL
    plan = _plan("SELECT g, COUNT(x), SUM(x), MAX(x) FROM t GROUP BY g", normalize_frame(frame))
    st = open_source(path).local(plan).stats
    assert list(st[("n", "x")][:2]) == [1, 1] and list(st[("sum", "x")][:2]) == [1.0, 2.0]


def test_values_outside_the_domain_are_dropped_and_null_forms_its_group(frame: pd.DataFrame) -> None:
    narrow = plan_query(parse("SELECT g, COUNT(*), SUM(k) FROM t GROUP BY g"), schema_of(frame), {"g": ("a",)}, 1)
    local = prepare(narrow, frame)
    assert narrow.group_keys == (("a",), (None,))
    assert list(local.stats[("rows",)]) == [int((frame.g == "a").sum()), int(frame.g.isna().sum())]
    assert local.kept == int((frame.g == "a").sum() + frame.g.isna().sum())


@pytest.mark.parametrize("dialect, rounding", [("postgres", "ROUND("), ("spark", "BROUND("), ("trino", "ROUND(")])
def test_the_statement_in_other_dialects(frame: pd.DataFrame, dialect: str, rounding: str) -> None:
    plan = _plan(QUERY, frame)
    kinds = dict(plan.kinds)
    sql, types = partials_sql(read_of(plan), plan.group_columns, stats_of(plan, 40), kinds, "cohort", dialect)
    assert "ROUND_EVEN" not in sql.upper() and rounding in sql
    assert "GROUP BY" in sql and "VAR_POP" in sql.upper() and "COVAR_POP" in sql.upper()
    sqlglot.parse_one(sql, read=dialect)  # the dialect's own parser reads it back
    assert len(types) == 1 + sum(2 if s[0] == "exact" and s[1] not in plan.integer_columns else 1
                                 for s in stats_of(plan, 40))


def test_no_row_reaches_python_for_a_plan_without_quantiles(frame: pd.DataFrame, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _files(frame, tmp_path)
    text = "SELECT g, COUNT(*), AVG(x), VAR(x), CORR(x, y), SUM(k), MAX(k) FROM t WHERE k > -15 GROUP BY g"
    want, _ = run_in_process([frame, frame], text, min_cell=1)
    monkeypatch.setattr(SqlSource, "rows", lambda *a: pytest.fail("rows were read"))
    got, _ = run_in_process([open_source(p) for p in paths], text, min_cell=1)
    pd.testing.assert_frame_equal(got.to_pandas(), want.to_pandas(), rtol=1e-9)
