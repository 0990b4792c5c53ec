"""SELECT aggregates over wide magnitudes: right (to the stated precision) or refused, never wrong.

Columns of AVG, VAR, STDDEV and CORR are scaled by a public power of two (queries/scaling.py);
SUMs are exact (integer columns: exact integers)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mpc.fixedpoint import PRECISE
from queries.engine import run_in_process
from queries.errors import QueryError
from queries.table import normalize_frame

# Tests that share one run land on one pytest-xdist worker, so the run is made once.
SHARED_SPREADS = pytest.mark.xdist_group("test_ranges:spreads")
SHARED_MEANS = pytest.mark.xdist_group("test_ranges:means")


def _aggregates(col: str) -> str:
    """The six aggregates of one column the magnitudes test checks, after a COUNT(*)."""
    return f", COUNT({col}), SUM({col}), AVG({col}), VAR({col}), STDDEV({col}), CORR({col}, y)"


def _frames(parts: list[dict[str, list]]) -> list[pd.DataFrame]:
    return [normalize_frame(pd.DataFrame(p)) for p in parts]


def _exponent(largest: float) -> int:
    """The scale exponent queries.scaling opens: the least e >= -60 with largest <= 2^e."""
    e = -60
    while largest > 2.0**e:
        e += 1
    return e


def _reference(frames: list[pd.DataFrame], column: str = "x") -> tuple[list, bool]:
    """numpy/pandas' values of `column` (with y for CORR), and whether CORR may be withheld: a
    variance of its rows below 2^-8 4^(e - 18), four times the documented threshold, 2^e the power
    of two above the largest |x| of those rows in the group (docs/protocols.md)."""
    pooled = pd.concat(frames, ignore_index=True)
    x = pd.Series(pooled[column].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    y = pd.Series(pooled.y.astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    both = x.notna() & y.notna()
    corr = None
    flat = False
    if both.sum() >= 2 and x[both].std() > 0 and y[both].std() > 0:
        corr = x[both].corr(y[both])
        flat = any(
            c[both].var() < 4.0 ** (_exponent(float(c[both].abs().max())) - 18) * 2**-8 for c in (x, y)
        )
    return [len(pooled), int(x.notna().sum()), x.sum(), x.mean(), x.var(), x.std(), corr], flat


def _check(got: list, want: list, flat: bool, largest: float) -> None:
    count_all, count_x, total, mean, var, sd, corr = got
    assert count_all == want[0] and count_x == want[1]
    assert total == pytest.approx(want[2], rel=1e-12, abs=count_x * 2**-40 + 1e-300)
    if want[6] is None:
        assert corr is None
    elif corr is not None or not flat:
        assert corr == pytest.approx(want[6], rel=1e-7, abs=1e-8)
    if want[1] == 0:
        assert mean is None and var is None and sd is None
        return
    # means: 1e-11 relative or a few units of 2^-40, and of 2^-58 max |x| for scaled columns
    # (max |x| below 2^18 or beyond 2^38: docs/protocols.md)
    assert mean == pytest.approx(want[3], rel=1e-11, abs=4 * 2**-40 + 2**-56 * largest)
    if want[1] < 2:
        assert var is None and sd is None
        return
    _check_spread(var, sd, want[4], want[5], want[3], largest)


def _check_spread(var: float, sd: float, want_var: float, want_sd: float, mean: float, largest: float) -> None:
    """VAR and STDDEV within 1e-9 relative when the variance is at least 1e-6 mean^2 and 1e-12
    max x^2 (docs/protocols.md); below that within the absolute floor ~2^-68 max x^2."""
    if want_var >= 1e-6 * mean**2 and want_var >= 1e-12 * largest**2:
        assert var == pytest.approx(want_var, rel=1e-9)
        assert sd == pytest.approx(want_sd, rel=1e-9)
    else:
        floor = 2**-68 * largest**2
        assert var == pytest.approx(want_var, rel=1e-9, abs=floor)
        assert sd == pytest.approx(want_sd, rel=1e-9, abs=np.sqrt(floor))


def test_variance_of_hospital_costs_in_the_tens_of_millions() -> None:
    # x = 1e7 .. 1e8 over two sites: the variance (9.2e14) is beyond the roots' unscaled range
    frames = _frames(
        [
            {"x": [1e7 * k for k in range(1, 6)], "y": list(range(5))},
            {"x": [1e7 * k for k in range(6, 11)], "y": list(range(5))},
        ]
    )
    result, _ = run_in_process(frames, "SELECT VAR(x), STDDEV(x), CORR(x, y), AVG(x)", min_cell=1)
    pooled = pd.concat(frames).astype(float)
    var, sd, corr, mean = result.rows[0]
    assert var == pytest.approx(pooled.x.var(), rel=1e-12)
    assert sd == pytest.approx(pooled.x.std(), rel=1e-11)
    assert corr == pytest.approx(pooled.x.corr(pooled.y), rel=1e-10)
    assert mean == pytest.approx(pooled.x.mean(), rel=1e-12)


def test_integer_sums_beyond_float64_are_exact() -> None:
    big = [2**60 + 1, 2**59 + 3, -(2**58) + 5]
    frames = _frames([{"x": big[:2], "y": [1, 2]}, {"x": big[2:], "y": [3]}])
    result, _ = run_in_process(frames, "SELECT SUM(x), MIN(x), MAX(x)", min_cell=1)
    assert result.rows[0] == [sum(big), min(big), max(big)]
    assert isinstance(result.rows[0][0], int)


def test_integer_sums_with_nulls_by_group_are_exact() -> None:
    first = pd.DataFrame({"x": pd.array([2**60 + 1, None, 5], dtype="Int64"), "g": ["a", "b", "a"]})
    second = pd.DataFrame({"x": pd.array([2**59 + 3, 7], dtype="Int64"), "g": ["b", "b"]})
    frames = [normalize_frame(first), normalize_frame(second)]
    result, _ = run_in_process(frames, "SELECT SUM(x), MIN(x), MAX(x), COUNT(x) GROUP BY g", min_cell=1)
    assert result.rows == [["a", 2**60 + 6, 5, 2**60 + 1, 2], ["b", 2**59 + 10, 7, 2**59 + 3, 2]]


def test_variances_of_values_beyond_float_fixed_point_are_right() -> None:
    # released as mantissa and exponent: a variance of 1e26 or 1e36 needs no fixed-point room
    sizes = {"x13": 1e13, "x18": 1e18}  # each its own column and scale, in one query
    frames = _frames([{**{c: [size, 2 * size] for c, size in sizes.items()}, "y": [1.0, 2.0]},
                      {**{c: [3 * size] for c, size in sizes.items()}, "y": [3.0]}])
    query = "SELECT " + ", ".join(f"VAR({c}), STDDEV({c}), AVG({c}), CORR({c}, y)" for c in sizes)
    result, _ = run_in_process(frames, query, min_cell=1)
    for i, size in enumerate(sizes.values()):
        var, sd, mean, corr = result.rows[0][4 * i : 4 * i + 4]
        assert var == pytest.approx(size**2, rel=1e-12) and sd == pytest.approx(size, rel=1e-11)
        assert mean == pytest.approx(2 * size, rel=3e-13)  # ~1e-13 from the division; 1.3e-13 seen
        assert corr == pytest.approx(1.0, abs=1e-9)


def test_variance_beyond_every_scale_is_refused_naming_the_column() -> None:
    frames = _frames([{"x": [1e19, 2e19], "y": [1.0, 2.0]}, {"x": [3.0], "y": [3.0]}])
    with pytest.raises(QueryError, match=r"column x: values beyond 2\^62"):
        run_in_process(frames, "SELECT VAR(x)", min_cell=1)


def test_extremes_beyond_their_sentinel_are_refused() -> None:
    frames = _frames([{"x": [2.0**81], "y": [1.0]}, {"x": [1.0], "y": [2.0]}])
    with pytest.raises(QueryError, match=r"MAX\(x\).*2\^80"):
        run_in_process(frames, "SELECT MAX(x)", min_cell=1)


def test_sites_beyond_the_counts_bound_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import queries.scaling

    monkeypatch.setattr(queries.scaling, "MAX_ROWS", 3)  # stands for 2^40 rows
    frames = _frames([{"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}, {"x": [1.0], "y": [2.0]}])
    with pytest.raises(QueryError, match=r"rows; at most 2\^40"):
        run_in_process(frames, "SELECT AVG(x)", min_cell=1)


def test_float_sums_are_exact_sums_of_the_fixed_point_values() -> None:
    values = [[1e20, 0.5, -3e19], [2.0**-40, 1e20]]
    frames = _frames([{"x": v, "y": [1.0] * len(v)} for v in values])
    result, _ = run_in_process(frames, "SELECT SUM(x)", min_cell=1)
    exact = sum(int(x * 2**40) for v in values for x in v) / 2**40  # each value is a multiple of 2^-40
    assert result.rows[0][0] == exact


def test_values_beyond_every_scale_are_refused() -> None:
    frames = _frames([{"x": [1e19], "y": [1.0]}, {"x": [1.0], "y": [2.0]}])
    with pytest.raises(QueryError, match=r"column x"):
        run_in_process(frames, "SELECT AVG(x)", min_cell=1)


def test_a_group_of_small_values_beside_large_ones_stays_in_range() -> None:
    # the scale follows the column's largest |x|; the small group's variance keeps ~2^-70 max^2
    frames = _frames(
        [
            {"g": ["a", "a", "b", "b"], "x": [1e9, 3e9, 1.0, 2.0], "y": [1.0, 2.0, 3.0, 5.0]},
            {"g": ["a", "b"], "x": [2e9, 4.0], "y": [0.5, 1.0]},
        ]
    )
    result, _ = run_in_process(frames, "SELECT VAR(x), AVG(x) GROUP BY g", min_cell=1)
    rows = {r[0]: r[1:] for r in result.rows}
    assert rows["a"][0] == pytest.approx(1e18, rel=1e-12)
    assert rows["b"][0] == pytest.approx(np.var([1.0, 2.0, 4.0], ddof=1), abs=2**-68 * 4e9**2)
    assert rows["b"][1] == pytest.approx(7 / 3, rel=1e-12)


def _column(draw: st.DrawFn, n: int, scale: float) -> list:
    values = draw(
        st.lists(
            st.one_of(st.none(), st.integers(-4, 4).map(float), st.floats(-1.0, 1.0, allow_nan=False)),
            min_size=n,
            max_size=n,
        )
    )
    return [None if v is None else v * scale for v in values]


MAGNITUDES = ("x", "x2", "x3")  # one query checks three columns, each at a magnitude of its own


@st.composite
def _consortium(draw: st.DrawFn) -> list[pd.DataFrame]:
    """Two or three sites of 1 .. 7 rows in groups a and b; columns x, x2 and x3 each at their
    own scale 1e-6 .. 1e12 (integers and fractions, NULLs), y at 1; every column has a value."""
    scales = {col: 10.0 ** draw(st.integers(-6, 12)) for col in MAGNITUDES}
    sizes = draw(st.lists(st.integers(1, 7), min_size=2, max_size=3))
    frames = []
    for n in sizes:
        part = {"g": draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n))}
        part.update({col: _column(draw, n, scale) for col, scale in scales.items()})
        part["y"] = _column(draw, n, 1.0)
        frames.append(normalize_frame(pd.DataFrame(part).astype({col: float for col in (*MAGNITUDES, "y")})))
    for col in (*MAGNITUDES, "y"):
        assume(any(f[col].notna().any() for f in frames))
    return frames


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_consortium())
def test_select_aggregates_match_numpy_over_magnitudes(frames: list[pd.DataFrame]) -> None:
    # every column has its own scale: one run checks three magnitudes as three runs of one column would
    query = "SELECT COUNT(*)" + "".join(_aggregates(col) for col in MAGNITUDES) + " GROUP BY g"
    result, _ = run_in_process(frames, query, min_cell=1)
    got = {row[0]: row[1:] for row in result.rows}
    pooled = pd.concat(frames, ignore_index=True)
    assert set(got) == set(pooled.g)
    for i, col in enumerate(MAGNITUDES):
        largest = max(
            float(np.nanmax(np.abs(f[col].astype("Float64").to_numpy(dtype=float, na_value=np.nan)), initial=0.0))
            for f in frames
        )
        for key, rows in pooled.groupby("g"):
            want, flat = _reference([rows], col)
            _check([got[key][0], *got[key][1 + 6 * i : 7 + 6 * i]], want, flat, largest)


SPREADS: dict[tuple[str, ...], dict[str, Callable[[np.random.Generator, str], float]]] = {
    ("a",): {
        "around_a_millionth": lambda rng, g: 1e-6 * (3 + rng.standard_normal()),
        "a_millionth_of_the_mean_squared": lambda rng, g: 1 + 1e-3 * rng.standard_normal(),
        "around_a_trillion": lambda rng, g: 1e12 * (1 + 1e-3 * rng.standard_normal()),
    },
    ("a", "b", "c"): {
        name: lambda rng, g, sizes=sizes: sizes[g] * (3 + rng.standard_normal())
        for name, sizes in (("tiny", {"a": 3e-5, "b": 1e-6, "c": 1e-8}), ("large", {"a": 1e11, "b": 1e9, "c": 1e7}))
    },
}
"""Per grouping, the columns make(rng, group) draws: each its own column with its own scale, so that one
query asks VAR and STDDEV of all of them as one query per column would."""


@functools.cache
def _spread_run(groups: tuple[str, ...]) -> tuple[pd.DataFrame, dict[tuple[str, str], list[float]]]:
    """Two sites of 150 and 60 rows in `groups`, each column of SPREADS[groups] drawn row by row from
    its own generator (seed 7); the pooled rows and {(column, group): [VAR, STDDEV]} from one query."""
    makes = SPREADS[groups]
    rngs = {name: np.random.default_rng(7) for name in makes}
    frames = []
    for n in (150, 60):
        g = np.array(groups * n)[:n]
        columns = {name: np.array([make(rngs[name], k) for k in g]) for name, make in makes.items()}
        frames.append(normalize_frame(pd.DataFrame({"g": g, **columns})))
    query = "SELECT " + ", ".join(f"VAR({name}), STDDEV({name})" for name in makes) + " GROUP BY g"
    result, _ = run_in_process(frames, query, min_cell=1)
    got = {(name, row[0]): row[1 + 2 * i : 3 + 2 * i] for row in result.rows for i, name in enumerate(makes)}
    return pd.concat(frames, ignore_index=True), got


def _spread_case(name: str, groups: tuple[str, ...] = ("a",)) -> None:
    """Column `name` of _spread_run(groups): VAR and STDDEV per group within 1e-9 of numpy's float64."""
    pooled, got = _spread_run(groups)
    assert {key for column, key in got if column == name} == set(groups)
    for key in groups:
        var, sd = got[(name, key)]
        x = pooled[name][pooled.g == key].to_numpy()
        assert var == pytest.approx(np.var(x, ddof=1), rel=1e-9)
        assert sd == pytest.approx(np.std(x, ddof=1), rel=1e-9)


@SHARED_SPREADS
def test_variance_of_values_around_a_millionth() -> None:
    _spread_case("around_a_millionth")


@SHARED_SPREADS
def test_variance_of_a_millionth_of_the_mean_squared() -> None:
    # values ~1 with variance 1e-6: the released variance keeps its relative precision
    _spread_case("a_millionth_of_the_mean_squared")


@SHARED_SPREADS
def test_variance_of_values_around_a_trillion() -> None:
    _spread_case("around_a_trillion")


@SHARED_SPREADS
@pytest.mark.parametrize("sizes", ["tiny", "large"])  # a, b, c at 3e-5, 1e-6, 1e-8; at 1e11, 1e9, 1e7
def test_variances_of_groups_of_different_magnitudes(sizes: str) -> None:
    # one column scale for all groups: each variance keeps 1e-9 of its own size while it is
    # above 1e-12 of the column's largest x^2
    _spread_case(sizes, ("a", "b", "c"))


def _record_outputs(monkeypatch: pytest.MonkeyPatch) -> list:
    """The reconstructed outputs the analyst's `finish_result` receives, one list per query."""
    import queries.engine

    seen: list = []
    real = queries.engine.finish_result

    def spy(plan: object, outputs: list, *rest: object) -> object:
        seen.append(outputs)
        return real(plan, outputs, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(queries.engine, "finish_result", spy)
    return seen


def test_suppressed_and_null_variances_release_zero_mantissa_and_exponent(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_outputs(monkeypatch)
    frames = _frames([{"g": ["a"] * 6 + ["b", "c", "c"], "x": [1e-7 * k for k in range(6)] + [3.0, 5.0, None]}])
    frames.append(_frames([{"g": ["a", "b"], "x": [2e-7, 4.0]}])[0])
    result, _ = run_in_process(frames, "SELECT VAR(x), STDDEV(x) GROUP BY g", min_cell=3)
    rows = {r[0]: r[1:] for r in result.rows}
    assert rows["a"][0] == pytest.approx(np.var([1e-7 * k for k in range(6)] + [2e-7], ddof=1), rel=1e-9)
    assert rows["b"] == [None, None] and rows["c"] == [None, None]  # k = 3: b has 2 values, c 1
    outputs = seen[0]
    assert len(outputs) == 1 + 3 * 2 + 2  # empty, values, nulls, hidden, then the two exponents
    for index in (1, 2, 7, 8):  # mantissas, exponents
        values = [int(v) for v in np.asarray(outputs[index][0])]
        assert values[0] != 0 and values[1] == 0 and values[2] == 0


def test_a_tiny_column_is_scaled_up_not_rounded_away() -> None:
    frames = _frames([{"x": [1e-9, 3e-9, 2e-9], "y": [1.0, 2.0, 3.0]}, {"x": [5e-9, 4e-9], "y": [1.0, 2.0]}])
    result, _ = run_in_process(frames, "SELECT VAR(x), STDDEV(x)", min_cell=1)
    assert result.rows[0][0] == pytest.approx(2.5e-18, rel=1e-9)
    assert result.rows[0][1] == pytest.approx(np.sqrt(2.5e-18), rel=1e-9)


def test_a_variance_asked_alone_is_normalised_by_itself() -> None:
    # without a STDDEV there is no square root to share its normalisation (queries.floats.normalise)
    rng = np.random.default_rng(3)
    parts = [1e-6 * (1 + 1e-3 * rng.standard_normal(n)) for n in (40, 25)]
    frames = [normalize_frame(pd.DataFrame({"x": p, "g": (["a", "b"] * len(p))[: len(p)]})) for p in parts]
    result, _ = run_in_process(frames, "SELECT VAR(x) GROUP BY g", min_cell=1)
    pooled = pd.concat(frames, ignore_index=True)
    for key, var in result.rows:
        assert var == pytest.approx(pooled.x[pooled.g == key].var(), rel=1e-9)


MEAN_SIZES = (1e-6, -1e-6, 3e-12, 1e12, -4e15)


@functools.cache
def _means() -> tuple[list[np.ndarray], list[float]]:
    """Per size of MEAN_SIZES, two sites of 150 and 60 values size (3 + N(0, 1)) (seed 5 for each), one
    column per size; the values and the AVG of every column, from one query."""
    rng = np.random.default_rng(5)
    base = [3 + rng.standard_normal(n) for n in (150, 60)]
    frames = [normalize_frame(pd.DataFrame({f"x{i}": size * b for i, size in enumerate(MEAN_SIZES)})) for b in base]
    result, _ = run_in_process(frames, "SELECT " + ", ".join(f"AVG(x{i})" for i in range(len(MEAN_SIZES))), min_cell=1)
    return [size * np.concatenate(base) for size in MEAN_SIZES], result.rows[0]


@SHARED_MEANS
@pytest.mark.parametrize("size", MEAN_SIZES)
def test_means_keep_their_digits_at_every_magnitude(size: float) -> None:
    values, means = _means()
    i = MEAN_SIZES.index(size)
    assert means[i] == pytest.approx(values[i].mean(), rel=1e-11)


def test_a_mean_near_zero_of_a_tiny_column_is_within_its_scale() -> None:
    frames = _frames([{"x": [1e-7, -1e-7 + 1e-15], "y": [1.0, 2.0]}, {"x": [3e-15], "y": [3.0]}])
    result, _ = run_in_process(frames, "SELECT AVG(x)", min_cell=1)
    assert result.rows[0][0] == pytest.approx(4e-15 / 3, rel=1e-6)  # within 2^-58 max |x|


@pytest.mark.parametrize("query", ["SELECT VAR(x), AVG(z)", "SELECT VAR(x), STDDEV(x), AVG(z)"])
def test_a_zero_value_releases_exponent_zero_not_the_column_scale(monkeypatch: pytest.MonkeyPatch, query: str) -> None:
    # a constant column's variance and a mean of exactly 0: the column scales (2^-20 here) must not show
    seen = _record_outputs(monkeypatch)
    frames = _frames([{"x": [1e-6, 1e-6], "z": [1e-6, -1e-6]}, {"x": [1e-6], "z": [0.0]}])
    result, _ = run_in_process(frames, query, min_cell=1)
    assert result.rows[0][0] == 0 and result.rows[0][-1] == 0
    m = len(result.rows[0])
    exponents = seen[0][1 + 3 * m :]
    assert len(exponents) == m and all(int(np.asarray(e[0])[0]) == 0 for e in exponents)


APART = ("", "2", "3")  # the far-apart tests check three columns (x, x2, x3), each drawn on its own, in one query


def _magnitudes_apart(draw: st.DrawFn) -> dict[str, float]:
    """Groups "big" and "small" 1e6 .. 1e12 apart in magnitude, values up to 1e12, of either sign."""
    apart = draw(st.integers(6, 12))
    small = 10.0 ** draw(st.integers(-6, 12 - apart)) * draw(st.sampled_from([1.0, -1.0, 0.37]))
    return {"big": small * 10.0**apart * draw(st.sampled_from([1.0, -3.0])), "small": small}


@st.composite
def _groups_apart(draw: st.DrawFn) -> list[pd.DataFrame]:
    """Two or three sites; in each of the columns x, x2 and x3 groups "big" and "small" 1e6 .. 1e12
    apart in magnitude (values up to 1e12), each with a spread of ~1e-3 of its mean (variance ~1e-6 mean^2)."""
    sizes = {"x" + c: _magnitudes_apart(draw) for c in APART}
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = []
    for n in draw(st.lists(st.integers(3, 30), min_size=2, max_size=3)):
        g = rng.choice(["big", "small"], n)
        part = {col: np.array([s[k] for k in g]) * (1 + 2e-3 * rng.standard_normal(n)) for col, s in sizes.items()}
        frames.append(normalize_frame(pd.DataFrame({"g": g, **part})))
    pooled = pd.concat(frames)
    assume(all((pooled.g == k).sum() >= 3 for k in ("big", "small")))
    for col in sizes:  # the regime the precision is promised for: a few rows can draw a smaller spread
        for k in ("big", "small"):
            x = pooled[col][pooled.g == k].to_numpy()
            assume(np.var(x, ddof=1) >= 1e-6 * np.mean(x) ** 2 / 4)
    return frames


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_groups_apart())
def test_groups_far_apart_in_one_column_keep_their_own_precision(frames: list[pd.DataFrame]) -> None:
    # each group has its own secret scale (queries/group_scales.py): the other group's magnitude does not matter
    columns = ["x" + c for c in APART]
    query = "SELECT " + ", ".join(f"AVG({c}), VAR({c}), STDDEV({c})" for c in columns) + " GROUP BY g"
    result, _ = run_in_process(frames, query, min_cell=1)
    pooled = pd.concat(frames, ignore_index=True)
    for key, *values in result.rows:
        for i, col in enumerate(columns):
            mean, var, sd = values[3 * i : 3 * i + 3]
            x = pooled[col][pooled.g == key].to_numpy()
            assert mean == pytest.approx(np.mean(x), rel=1e-9)
            assert var == pytest.approx(np.var(x, ddof=1), rel=1e-9)
            assert sd == pytest.approx(np.std(x, ddof=1), rel=1e-9)


@st.composite
def _pairs_apart(draw: st.DrawFn) -> list[pd.DataFrame]:
    """Two or three sites; pairs (x, y), (x2, y2) and (x3, y3), each drawn on its own: groups "big"
    and "small" whose x are 1e6 .. 1e12 apart in magnitude and whose y have magnitudes of their own
    (1e-6 .. 1e12), each with a spread of ~2e-3 of its mean and a correlation of either sign between them."""
    pairs = []
    for _ in APART:
        xs = _magnitudes_apart(draw)
        ys = {k: 10.0 ** draw(st.integers(-6, 12)) * draw(st.sampled_from([1.0, -2.0])) for k in xs}
        rho = {k: draw(st.sampled_from([-0.9, -0.5, 0.3, 0.8, 0.99])) for k in xs}
        pairs.append((xs, ys, rho))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = []
    for n in draw(st.lists(st.integers(3, 30), min_size=2, max_size=3)):
        g = rng.choice(["big", "small"], n)
        part: dict[str, np.ndarray] = {"g": g}
        for c, (xs, ys, rho) in zip(APART, pairs):
            a, b = rng.standard_normal(n), rng.standard_normal(n)
            r = np.array([rho[k] for k in g])
            part["x" + c] = np.array([xs[k] for k in g]) * (1 + 2e-3 * a)
            part["y" + c] = np.array([ys[k] for k in g]) * (1 + 2e-3 * (r * a + np.sqrt(1 - r**2) * b))
        frames.append(normalize_frame(pd.DataFrame(part)))
    pooled = pd.concat(frames)
    assume(all((pooled.g == k).sum() >= 3 for k in ("big", "small")))
    return frames


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pairs_apart())
def test_correlations_of_groups_far_apart_keep_their_own_precision(frames: list[pd.DataFrame]) -> None:
    # CORR's columns get a secret scale per group too, over the rows where both are present
    query = "SELECT " + ", ".join(f"CORR(x{c}, y{c}), CORR(y{c}, x{c}) AS yx{c}" for c in APART) + " GROUP BY g"
    result, _ = run_in_process(frames, query, min_cell=1)
    pooled = pd.concat(frames, ignore_index=True)
    for key, *values in result.rows:
        rows = pooled[pooled.g == key]
        for i, c in enumerate(APART):
            corr, swapped = values[2 * i : 2 * i + 2]
            want = rows["x" + c].corr(rows["y" + c])
            assert corr == pytest.approx(want, rel=1e-9, abs=1e-12)
            assert swapped == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_corr_is_null_only_for_a_constant_group_whatever_the_others() -> None:
    # a group of values ~1 with sd 1e-4 beside one of ~1e9, y only where both are present at the
    # group's own scale; a constant group is NULL as in pandas; a NULL y leaves x's row out
    rng = np.random.default_rng(4)
    n = 12
    small = 1 + 1e-4 * rng.standard_normal(n)
    frames = _frames(
        [
            {"g": ["big"] * n + ["small"] * n + ["flat"] * 4,
             "x": list(1e9 * (1 + rng.random(n))) + list(small) + [2.5] * 4,
             "y": list(rng.standard_normal(n)) + list(3 * small + 1e-4 * rng.standard_normal(n)) + [1.0, 2, 3, 4]},
            {"g": ["small", "small", "flat"], "x": [1e12, 1.0001, 2.5], "y": [None, 3.0, 5.0]},
        ]
    )
    result, _ = run_in_process(frames, "SELECT CORR(x, y) GROUP BY g", min_cell=1)
    pooled = pd.concat(frames, ignore_index=True).astype({"x": float, "y": float})
    got = dict(result.rows)
    assert got["flat"] is None
    for key in ("big", "small"):
        rows = pooled[pooled.g == key]
        assert got[key] == pytest.approx(rows.x.corr(rows.y), rel=1e-9)


def _record_openings(monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """Party 0's opening labels, in order, and the values of the one opening not masked (the column scales)."""
    import queries.scaling
    from mpc.context import PartyContext

    labels: list = []
    scales: list = []
    real_all, real_open = PartyContext.all_to_all, queries.scaling.open_xor

    def all_to_all(self: PartyContext, payload: bytes, label: str) -> list[bytes]:
        if self.rank == 0:
            labels.append((label, len(payload)))
        return real_all(self, payload, label)

    def open_scales(ctx: PartyContext, shares: list, label: str) -> list:
        out = real_open(ctx, shares, label)
        if ctx.rank == 0:
            scales.append([int(v) for v in np.asarray(out[0]).ravel()])
        return out

    monkeypatch.setattr(PartyContext, "all_to_all", all_to_all)
    monkeypatch.setattr(queries.scaling, "open_xor", open_scales)
    return labels, scales


def _longest_zero_run(value: int, below: int) -> int:
    """The longest run of 0 bits in |value| below its top `below` bits."""
    bits = bin(abs(value))[2 + below :]
    return max((len(run) for run in bits.split("1")), default=0)


def test_group_scales_open_nothing_and_the_exponent_tells_only_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # group b at 2^-10 and at 2^-34 of group a's magnitude: the parties see the same openings (sizes
    # and labels; only the column scales are opened unmasked, and they are the same), and the analyst
    # gets exponents that follow from the values alone and mantissas whose bits below the value's own
    # are uniform, also where the value has few bits at its group's scale: a variance of 2^-60 of
    # the group's max^2 (near-constant values) and a mean of ~2^-40 of its max |x|
    labels, scales = _record_openings(monkeypatch)
    seen = _record_outputs(monkeypatch)
    rng = np.random.default_rng(11)
    near = 1 + 2.0**-30 * rng.standard_normal(12)
    signs = np.where(np.arange(12) % 4 < 2, 1.0, -1.0)
    around = signs * (1 + 2.0**-38 * (np.arange(12) < 2))  # per group sum 2^-38: mean ~2^-40.6 of max |z|
    spread = 1 + 0.1 * rng.standard_normal(12)
    query = "SELECT AVG(z), VAR(x), STDDEV(x), AVG(x), VAR(y), CORR(w, z) GROUP BY g"
    for shift in (10, 34):
        a = np.arange(12) % 2 == 0
        g = np.where(a, "a", "b")
        x = np.where(a, 1e6 * near, np.ldexp(1e6 * near, -shift))
        z = np.where(a, 1e6 * around, np.ldexp(1e6 * around, -shift))
        w = np.where(a, 1e6 * spread, np.ldexp(1e6 * spread, -shift))
        parts = [{"g": g[k], "x": x[k], "z": z[k], "w": w[k], "y": [5.0] * len(g[k])} for k in (np.s_[:7], np.s_[7:])]
        result, _ = run_in_process(_frames(parts), query, min_cell=1)
        for key, mean_z, var, sd, mean_x, flat, corr in result.rows:
            xs, zs, ws = x[g == key], z[g == key], w[g == key]
            top = float(np.abs(xs).max())
            assert mean_z == pytest.approx(np.mean(zs), rel=1e-3, abs=4 * 2**-58 * float(np.abs(zs).max()))
            assert var == pytest.approx(np.var(xs, ddof=1), rel=1e-3, abs=4 * 2**-74 * top**2) and flat == 0
            assert sd == pytest.approx(np.std(xs, ddof=1), rel=1e-3, abs=2**-36 * top)
            assert mean_x == pytest.approx(np.mean(xs), rel=1e-12)
            assert corr == pytest.approx(pd.Series(ws).corr(pd.Series(zs)), rel=1e-9, abs=1e-12)
    assert labels[: len(labels) // 2] == labels[len(labels) // 2 :]
    assert scales[0] == scales[1]
    assert all(int(v) != 0 for outputs in seen for v in np.asarray(outputs[1][0]).ravel()[:2])  # AVG(z): the corner
    floated = [0, 1, 2, 3, 4]  # AVG, VAR, STDDEV, AVG, VAR: their exponents follow, in order
    for outputs in seen:
        m = 6
        for pos, i in enumerate(floated):
            mantissas = np.asarray(outputs[1 + i][0]).ravel()
            exps = np.asarray(outputs[1 + 3 * m + pos][0]).ravel()
            frac = outputs[1 + i][1]
            for raw, e in zip(mantissas, exps):
                signed = int(PRECISE.ring.to_signed(np.array([raw], dtype=object))[0])
                exp = int(PRECISE.ring.to_signed(np.array([e], dtype=object))[0])
                if i == 4 or signed == 0:  # VAR(y) of a constant column, or an empty group: zero, exponent 0
                    assert signed == 0 and exp == 0
                    continue
                assert 0.5 - 2**-20 <= abs(signed) / 2.0**frac < (2 if i in (1, 2) else 1 + 2**-20)  # VAR beside a root
                if i != 2:  # a root's mantissa is computed, not the fixed-point value's bits shifted
                    # no run of zeros below the value's bits: without the blur, 30 or more
                    assert _longest_zero_run(signed, 8) < 24, (i, bin(signed))
