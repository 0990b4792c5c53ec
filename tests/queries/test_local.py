"""The local (plaintext) half of a plan against pandas: filters, groups, partial sums, extremes,
and SQL's three-valued logic for NULLs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from queries import ir
from queries.conditions import keep_rows
from queries.engine import local_domains
from queries.local import extremes, local_partials, prepare
from queries.parser import parse
from queries.plan import Plan, compile_statement
from queries.table import normalize_frame, schema_of


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 120
    x = rng.normal(5, 3, n)
    x[rng.random(n) < 0.15] = np.nan
    return normalize_frame(
        pd.DataFrame(
            {
                "g": rng.choice(["a", "b", "c"], n),
                "k": rng.integers(0, 2, n),
                "i": rng.integers(-20, 20, n),
                "x": x,
                "y": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n)),
            }
        )
    )


def _plan(text: str, frame: pd.DataFrame, domain_frames: list[pd.DataFrame] | None = None) -> Plan:
    stmt = parse(text)
    cols = stmt.group_by if isinstance(stmt, ir.Select) else (stmt.row, stmt.col)  # type: ignore[union-attr]
    domains = local_domains(domain_frames or [frame], cols)
    return compile_statement(stmt, schema_of(frame), domains, 5)


def _by_group(plan: Plan, frame: pd.DataFrame, series: pd.Series) -> np.ndarray:
    """A pandas per-group series laid out in the plan's group order, 0 for absent groups."""
    if not plan.group_columns:
        return np.array([float(series.iloc[0]) if len(series) else 0.0])
    lookup = {k if isinstance(k, tuple) else (k,): float(v) for k, v in series.items()}
    return np.array([lookup.get(key, 0.0) for key in plan.group_keys])


QUERY = "SELECT COUNT(*), COUNT(x), SUM(i), VAR(x), CORR(x, y) {where} {group}"


@pytest.mark.parametrize("where", ["", "WHERE i > 0 AND g != 'c'", "WHERE x IS NULL OR y < 0"])
@pytest.mark.parametrize("group", ["", "GROUP BY g", "GROUP BY g, k"])
def test_partials_match_pandas(frame: pd.DataFrame, where: str, group: str) -> None:
    plan = _plan(QUERY.format(where=where, group=group), frame)
    got = local_partials(plan, frame)
    assert got.shape == (len(plan.measures), plan.groups)
    sub = frame[keep_rows(frame, getattr(plan.statement, "where", None))]
    keys = list(plan.group_columns)
    grouped = sub.assign(_one=1).groupby(keys or (lambda _: 0))
    both = sub[sub.x.notna() & sub.y.notna()]
    pair = both.assign(_one=1).groupby(keys or (lambda _: 0))
    key = keys or (lambda _: 0)

    def centred(frame: pd.DataFrame, a: str, b: str) -> pd.Series:
        grouped_frame = frame.groupby(key)
        da = frame[a].astype(float) - grouped_frame[a].transform("mean").astype(float)
        db = frame[b].astype(float) - grouped_frame[b].transform("mean").astype(float)
        return (da * db).groupby([frame[k] for k in keys] if keys else (lambda _: 0)).sum()

    present = sub[sub.x.notna()]
    want = {
        ("rows",): grouped["_one"].sum(),
        ("n", "x"): grouped["x"].count(),
        ("n", "i"): grouped["i"].count(),
        ("s", "i"): grouped["i"].sum(),
        ("s", "x"): grouped["x"].sum(),
        ("mean", "x"): present.groupby(key)["x"].mean(),
        ("m2", "x"): centred(present, "x", "x"),
        ("pn", "x", "y"): pair["_one"].sum(),
        ("px", "x", "y"): pair["x"].sum(),
        ("py", "x", "y"): pair["y"].sum(),
        ("pmx", "x", "y"): pair["x"].mean(),
        ("pmy", "x", "y"): pair["y"].mean(),
        ("pm2x", "x", "y"): centred(both, "x", "x"),
        ("pm2y", "x", "y"): centred(both, "y", "y"),
        ("pcxy", "x", "y"): centred(both, "x", "y"),
    }
    assert set(plan.measures) == set(want)
    for row, m in zip(got, plan.measures):
        np.testing.assert_allclose(row, _by_group(plan, sub, want[m]), rtol=1e-12, atol=1e-9, err_msg=str(m))


def test_groups_absent_at_this_party_are_zero_and_unknown_values_are_dropped(frame: pd.DataFrame) -> None:
    other = normalize_frame(pd.DataFrame({"g": ["z"], "k": [5], "i": [1], "x": [1.0], "y": [1.0]}))
    plan = _plan("SELECT COUNT(*), SUM(x) GROUP BY g", frame, [frame, other])
    assert plan.group_keys == (("a",), ("b",), ("c",), ("z",), (None,))  # None: the NULL group, last
    got = local_partials(plan, frame)
    assert got[plan.index(("rows",)), 3] == 0 and got[plan.index(("s", "x")), 3] == 0
    assert got[plan.index(("rows",)), 4] == 0  # no NULL g in this table
    assert got[plan.index(("rows",))].sum() == len(frame)
    # a party holding a value outside the agreed domain drops those rows (as with a declared domain)
    narrow = compile_statement(parse("SELECT COUNT(*) GROUP BY g"), schema_of(frame), {"g": ("a",)}, 5)
    assert local_partials(narrow, frame)[0, 0] == (frame.g == "a").sum()


def test_rows_with_a_null_group_value_form_the_null_group_as_pandas_dropna_false() -> None:
    f = normalize_frame(pd.DataFrame({"g": ["a", None, "a", "b"], "x": [1.0, 2.0, None, 4.0]}))
    plan = _plan("SELECT COUNT(*), SUM(x) GROUP BY g", f)
    # rows, n x, s x for the groups a, b, NULL
    np.testing.assert_array_equal(local_partials(plan, f), [[2, 1, 1], [1, 1, 1], [1, 4, 2]])
    crosstab = _plan("CROSSTAB g BY x", f)  # a crosstab drops NULLs, as pandas' crosstab does
    assert None not in {v for key in crosstab.group_keys for v in key}


def test_empty_table_gives_zeros(frame: pd.DataFrame) -> None:
    plan = _plan("SELECT COUNT(*), AVG(x) GROUP BY g", frame)
    np.testing.assert_array_equal(local_partials(plan, frame.iloc[:0]), np.zeros((3, 4)))


def test_three_valued_logic() -> None:
    f = normalize_frame(pd.DataFrame({"x": [1.0, 6.0, None], "s": ["a", None, "b"]}))

    def kept(cond: str) -> list[bool]:
        stmt = parse(f"SELECT COUNT(*) WHERE {cond}")
        assert isinstance(stmt, ir.Select)
        return keep_rows(f, stmt.where).tolist()

    assert kept("x > 5") == [False, True, False]
    assert kept("NOT x > 5") == [True, False, False]  # NULL stays unknown under NOT
    assert kept("x > 5 OR s = 'b'") == [False, True, True]  # unknown OR true is true
    assert kept("NOT (x > 5 AND s = 'a')") == [True, False, True]  # false AND unknown is false
    assert kept("x IS NULL") == [False, False, True]
    assert kept("s IS NOT NULL AND x BETWEEN 0 AND 2") == [True, False, False]
    assert kept("s NOT IN ('a')") == [False, False, True]


def test_extremes_match_pandas(frame: pd.DataFrame) -> None:
    plan = _plan("SELECT MIN(x), MAX(i), MEDIAN(x) GROUP BY g", frame)
    local = prepare(plan, frame)
    got = extremes(plan, local)
    grouped = frame.groupby("g")
    np.testing.assert_allclose(got[0][:3], grouped.x.min().to_numpy(dtype=float))  # [3]: the empty NULL group
    np.testing.assert_allclose(np.asarray(got[1][:3], dtype=float), grouped.i.max().to_numpy(dtype=float))
    assert local.table_rows == len(frame)
