"""CROSSTAB ... STRATA over MPC against statsmodels' StratifiedTable on the pooled plaintext: the Mantel-Haenszel
OR and RR with their CIs, the Mantel-Haenszel test, Breslow-Day with and without Tarone's correction; the release
rule (per-stratum tables, refusals), undefined estimates, the parser and EXPLAIN's predicted rounds."""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from queries.engine import plan_query, predict_cost, run_in_process
from queries.errors import QueryError, SmallStratum
from queries.parser import parse
from queries.plan import Plan
from queries.result import Result
from queries.table import check_schemas, schema_of

# Tests that share one run land on one pytest-xdist worker, so the run is made once.
SHARED_POOLED_RUN = pytest.mark.xdist_group("test_strata:pooled-run")
SHARED_ZERO_CELL = pytest.mark.xdist_group("test_strata:zero-cell")

smt = pytest.importorskip("statsmodels.stats.contingency_tables")

TOL = 1e-6
QUERY = "CROSSTAB smoke BY dead STRATA centre"


def site(rows: int, seed: int, centres: tuple[str, ...], effect: float = 0.25) -> pd.DataFrame:
    """Binary exposure and outcome, the outcome's risk rising with exposure and differing by centre."""
    rng = np.random.default_rng(seed)
    centre = rng.choice(centres, rows)
    smoke = rng.integers(0, 2, rows)
    shift = np.array([0.08 * (ord(c[-1]) % 5) for c in centre])
    dead = (rng.uniform(size=rows) < 0.15 + effect * smoke + shift).astype(np.int64)
    age = rng.integers(20, 90, rows)
    return pd.DataFrame({"smoke": pd.array(smoke, dtype="Int64"), "dead": pd.array(dead, dtype="Int64"),
                         "centre": pd.array(centre, dtype="string"), "age": pd.array(age, dtype="Int64")})


def tables(pooled: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The strata with rows and statsmodels' 2 x 2 x K tables [[a, b], [c, d]]: a = exposed cases."""
    levels = sorted(pooled.centre.dropna().unique())
    out = []
    for level in levels:
        g = pooled[pooled.centre == level]
        count = [[int(((g.smoke == e) & (g.dead == o)).sum()) for o in (1, 0)] for e in (1, 0)]
        out.append(count)
    return levels, np.array(out, dtype=float).transpose(1, 2, 0)


def greenland_robins(t: np.ndarray) -> float:
    """Var(log RR_MH), Greenland and Robins (1985), on the plaintext tables."""
    a, b, c, d = t[0, 0], t[0, 1], t[1, 0], t[1, 1]
    n1, n0, m1, n = a + b, c + d, a + c, t.sum(axis=(0, 1))
    return float(np.sum((n1 * n0 * m1 - a * c * n) / n**2) / (np.sum(a * n0 / n) * np.sum(c * n1 / n)))


def row(result, name: str) -> list:  # noqa: ANN001
    return next(r for r in result.rows if r[0] == name)


def p_tolerance(statistic: float, df: int, pvalue: float) -> float:
    """The relative tolerance on a chi-square p-value that follows from TOL on its statistic: the p-value's
    relative error is the statistic's times x f(x) / P(X > x), about x / 2 in the tail."""
    if not (statistic > 0 and pvalue > 0):
        return TOL
    return TOL * max(1.0, statistic * stats.chi2.pdf(statistic, df) / pvalue)


def assert_pooled(result, pooled: pd.DataFrame, breslow_day: bool = True) -> None:  # noqa: ANN001
    _, t = tables(pooled)
    ref = smt.StratifiedTable(t)
    odds = row(result, "OR (Mantel-Haenszel)")
    assert odds[1] == pytest.approx(ref.oddsratio_pooled, rel=TOL)
    assert odds[2:4] == pytest.approx(list(ref.oddsratio_pooled_confint()), rel=TOL)
    assert result.extra["log_or_se"] == pytest.approx(ref.logodds_pooled_se, rel=TOL)
    risk = row(result, "RR (Mantel-Haenszel)")
    assert risk[1] == pytest.approx(ref.riskratio_pooled, rel=TOL)
    se = math.sqrt(greenland_robins(t))
    assert result.extra["log_rr_se"] == pytest.approx(se, rel=TOL)
    assert risk[2:4] == pytest.approx([ref.riskratio_pooled * math.exp(s * 1.959963984540054 * se) for s in (-1, 1)],
                                      rel=TOL)
    mh = row(result, "Mantel-Haenszel chi2")
    null = ref.test_null_odds()
    assert mh[1] == pytest.approx(null.statistic, rel=TOL) and mh[4] == 1
    assert mh[5] == pytest.approx(null.pvalue, rel=p_tolerance(null.statistic, 1, null.pvalue))
    if breslow_day:
        for name, adjust in (("Breslow-Day chi2", False), ("Breslow-Day chi2 (Tarone)", True)):
            got, want = row(result, name), ref.test_equal_odds(adjust=adjust)
            assert got[1] == pytest.approx(want.statistic, rel=TOL, abs=1e-9), name
            assert got[4] == t.shape[2] - 1
            assert got[5] == pytest.approx(want.pvalue, rel=p_tolerance(want.statistic, got[4], want.pvalue)), name


SITES = [((400, 120), ("A", "B")), ((200, 60, 140, 90, 110), ("A", "B", "C", "D", "E"))]
"""Two parties and five, every other site without the last centre."""


@functools.cache
def pooled_run(sizes: tuple[int, ...], centres: tuple[str, ...]) -> tuple[list[pd.DataFrame], Result, Plan]:
    """Sites of these sizes (every other one without the last centre) and the run of QUERY on them: for the two
    parties of `SITES`, checked against statsmodels by `test_pooled_statistics_match_statsmodels` and against
    EXPLAIN by `test_explain_predicts_the_rounds_exactly` (the same run, made once)."""
    sites = [site(n, 10 + i, centres[: max(2, len(centres) - i % 2)]) for i, n in enumerate(sizes)]
    result, plan = run_in_process(sites, QUERY, min_cell=3)
    return sites, result, plan


@SHARED_POOLED_RUN
@pytest.mark.parametrize(("sizes", "centres"), SITES)
def test_pooled_statistics_match_statsmodels(sizes: tuple[int, ...], centres: tuple[str, ...]) -> None:
    sites, result, _ = pooled_run(sizes, centres)
    pooled = pd.concat(sites, ignore_index=True)
    assert_pooled(result, pooled)
    assert result.extra["strata_with_rows"] == len(centres)
    assert (result.extra["exposed"], result.extra["reference"], result.extra["outcome_level"]) == (1, 0, 1)


def test_per_stratum_tables_are_released_when_every_cell_passes() -> None:
    sites = [site(300, 1, ("A", "B", "C")), site(200, 2, ("A", "B"))]
    result, _ = run_in_process(sites, QUERY + " WHERE age >= 30", min_cell=5)
    pooled = pd.concat(sites, ignore_index=True)
    pooled = pooled[pooled.age >= 30]
    assert_pooled(result, pooled)
    for entry in result.extra["tables"]:
        g = pooled[pooled.centre == entry["stratum"]]
        assert entry["cells"] == pd.crosstab(g.smoke, g.dead).to_numpy().tolist()


def test_a_small_cell_in_a_stratum_withholds_the_tables_not_the_pooled_statistics() -> None:
    sites = [site(300, 3, ("A", "B")), site(150, 4, ("A", "B"))]
    rare = pd.DataFrame({"smoke": pd.array([1, 1, 0, 0, 0, 1, 0], dtype="Int64"),
                         "dead": pd.array([1, 0, 0, 0, 0, 0, 1], dtype="Int64"),
                         "centre": pd.array(["C"] * 7, dtype="string"), "age": pd.array([50] * 7, dtype="Int64")})
    sites[1] = pd.concat([sites[1], rare], ignore_index=True)  # stratum C: 7 rows, cells 1, 1, 1, 4
    result, _ = run_in_process(sites, QUERY, min_cell=5)
    assert isinstance(result.extra["tables"], str) and result.extra["tables"].startswith("withheld")
    assert_pooled(result, pd.concat(sites, ignore_index=True))


def test_a_stratum_below_k_refuses_and_releases_nothing() -> None:
    sites = [site(300, 5, ("A", "B")), site(100, 6, ("A", "B"))]
    few = pd.DataFrame({"smoke": pd.array([1, 0, 1], dtype="Int64"), "dead": pd.array([1, 0, 0], dtype="Int64"),
                        "centre": pd.array(["Z"] * 3, dtype="string"), "age": pd.array([40] * 3, dtype="Int64")})
    sites[0] = pd.concat([sites[0], few], ignore_index=True)
    with pytest.raises(SmallStratum, match=r"a stratum of 'centre' has 1\.\.4 rows"):
        run_in_process(sites, QUERY, min_cell=5)
    result, _ = run_in_process(sites, QUERY + " WHERE centre <> 'Z'", min_cell=5)  # an empty stratum is left out
    assert result.extra["strata_with_rows"] == 2
    pooled = pd.concat(sites, ignore_index=True)
    assert_pooled(result, pooled[pooled.centre != "Z"])
    with pytest.raises(SmallStratum, match="0..4 rows"):  # zeros withheld: an empty stratum is small too
        run_in_process(sites, QUERY + " WHERE centre <> 'Z'", min_cell=5, release_zero=False)


def test_a_small_cell_of_the_summed_table_refuses() -> None:
    sites = [site(200, 7, ("A", "B"), effect=0.0), site(100, 8, ("A", "B"), effect=0.0)]
    sites = [s[(s.smoke == 0) | (s.dead == 0)] for s in sites]  # no exposed cases ...
    two = pd.DataFrame({"smoke": pd.array([1, 1], dtype="Int64"), "dead": pd.array([1, 1], dtype="Int64"),
                        "centre": pd.array(["A", "B"], dtype="string"), "age": pd.array([40, 50], dtype="Int64")})
    sites[1] = pd.concat([sites[1], two], ignore_index=True)  # ... but two, in two strata of 50 rows or more
    with pytest.raises(SmallStratum, match="summed over the strata"):
        run_in_process(sites, QUERY, min_cell=5)


def test_a_stratum_without_exposed_withholds_breslow_day_only() -> None:
    sites = [site(300, 9, ("A", "B")), site(120, 10, ("A", "B", "C"))]
    sites[1] = sites[1][(sites[1].centre != "C") | (sites[1].smoke == 0)]  # stratum C: nobody exposed
    result, _ = run_in_process(sites, QUERY, min_cell=3)
    pooled = pd.concat(sites, ignore_index=True)
    assert_pooled(result, pooled, breslow_day=False)  # statsmodels' Breslow-Day is nan here
    assert row(result, "Breslow-Day chi2")[1] is None
    assert any("zero margin" in note for note in result.extra["notes"])


@functools.cache
def zero_cell_run() -> tuple[list[pd.DataFrame], Result]:
    """Two sites whose stratum C has no exposed survivors (b = 0; every other cell 3 or more), and the run of
    QUERY with k = 3 on them: read by `test_zero_cells_in_some_strata_keep_the_estimates` and
    `test_zeros_withheld_make_a_zero_cell_small_and_withhold_the_tables` (the same run, made once)."""
    sites = [site(300, 11, ("A", "B", "C")), site(150, 12, ("A", "B", "C"))]
    sites = [s[~((s.centre == "C") & (s.smoke == 1) & (s.dead == 0))] for s in sites]  # stratum C: b = 0
    result, _ = run_in_process(sites, QUERY, min_cell=3)
    return sites, result


@SHARED_ZERO_CELL
def test_zero_cells_in_some_strata_keep_the_estimates() -> None:
    sites, result = zero_cell_run()
    assert_pooled(result, pd.concat(sites, ignore_index=True))


def test_an_undefined_odds_ratio_is_withheld_with_a_note() -> None:
    sites = [site(200, 13, ("A", "B")), site(100, 14, ("A", "B"))]
    sites = [s[(s.smoke == 0) | (s.dead == 1)] for s in sites]  # b = 0 everywhere: sum bc/n = 0
    result, _ = run_in_process(sites, QUERY, min_cell=3)
    assert row(result, "OR (Mantel-Haenszel)")[1:4] == [None, None, None]
    assert row(result, "Breslow-Day chi2")[1] is None
    assert any(note.startswith("OR (Mantel-Haenszel): not estimable") for note in result.extra["notes"])
    _, t = tables(pd.concat(sites, ignore_index=True))
    ref = smt.StratifiedTable(t)
    assert row(result, "RR (Mantel-Haenszel)")[1] == pytest.approx(ref.riskratio_pooled, rel=TOL)
    assert row(result, "Mantel-Haenszel chi2")[1] == pytest.approx(ref.test_null_odds().statistic, rel=TOL)


def test_exposure_and_outcome_must_be_binary() -> None:
    sites = [site(100, 15, ("A", "B")), site(80, 16, ("A", "B"))]
    sites[0] = sites[0].assign(grade=pd.array(np.arange(100) % 3, dtype="Int64"))
    sites[1] = sites[1].assign(grade=pd.array(np.arange(80) % 3, dtype="Int64"))
    with pytest.raises(QueryError, match=r"binary exposure: 'grade' has 3 level\(s\)") as err:
        run_in_process(sites, "CROSSTAB grade BY dead STRATA centre", min_cell=3)
    assert err.value.position == 10
    with pytest.raises(QueryError, match="binary outcome"):
        run_in_process(sites, "CROSSTAB smoke BY grade STRATA centre", min_cell=3)


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("CROSSTAB a BY b STRATA a", "STRATA needs a column other than the two of the table", 24),
        ("CROSSTAB a BY b STRATA c STRATA d", "STRATA appears twice", 26),
        ("CROSSTAB a BY b STRATA", "expected the strata column, found the end of the query", 23),
        ("CROSSTAB a BY b STRATA 3", "expected the strata column, found a number", 24),
    ],
)
def test_parser_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(QueryError, match=message) as err:
        parse(text)
    assert err.value.position == position


def test_parser_reads_strata_from_and_where_in_any_order() -> None:
    first = parse("CROSSTAB smoke BY dead STRATA centre FROM t WHERE age > 30")
    second = parse("crosstab smoke by dead where (age > 30) strata centre from t")
    assert first == second and first.strata == "centre" and first.source == "t"  # type: ignore[union-attr]
    assert parse("CROSSTAB smoke BY dead").strata is None  # type: ignore[union-attr]


@SHARED_POOLED_RUN
@pytest.mark.parametrize(("sizes", "centres"), [SITES[0], ((90, 60, 70), ("A", "B", "C", "D"))])
def test_explain_predicts_the_rounds_exactly(sizes: tuple[int, ...], centres: tuple[str, ...]) -> None:
    """Two parties (the run `test_pooled_statistics_match_statsmodels` checks) and three with more centres."""
    sites, _, plan = pooled_run(sizes, centres)
    predicted = predict_cost(plan, check_schemas([schema_of(s) for s in sites]), len(sites))
    assert predicted["rounds"] == plan.cost["rounds"]
    assert predicted["bytes_sent"] == plan.cost["bytes_sent"]
    text = replace(plan, cost=predicted).text()
    assert f"{plan.cost['rounds']} rounds" in text and "Breslow-Day" in text
    assert "the pooled statistics are refused if a stratum has 1..2 rows" in text


def test_the_plan_names_its_groups_and_refuses_too_many_strata() -> None:
    schema = check_schemas([schema_of(site(10, 1, ("A",)))])
    levels = tuple(f"c{i:03d}" for i in range(201))
    with pytest.raises(QueryError, match="at most 200 levels"):
        plan_query(QUERY, schema, {"smoke": (0, 1), "dead": (0, 1), "centre": levels}, 5)
    plan = plan_query(QUERY, schema, {"smoke": (0, 1), "dead": (0, 1), "centre": ("A", "B")}, 5)
    assert plan.group_columns == ("smoke", "dead", "centre") and plan.groups == 8


@pytest.mark.network
def test_stratified_crosstab_through_real_nodes(tmp_path) -> None:  # noqa: ANN001
    from parties.local import LocalConsortium

    sites = [site(200, 31, ("A", "B", "C")), site(120, 32, ("A", "B", "C"))]
    files = {}
    for name, frame in zip(("a", "b"), sites):
        files[name] = tmp_path / f"{name}.csv"
        frame.to_csv(files[name], index=False)
    with LocalConsortium(["a", "b"], data=files) as consortium:
        result = consortium.query(QUERY, min_cell=5)
    assert_pooled(result, pd.concat(sites, ignore_index=True))


def test_p_values_are_chi_square_tails() -> None:
    sites = [site(150, 41, ("A", "B", "C")), site(150, 42, ("A", "B", "C"))]
    result, _ = run_in_process(sites, QUERY, min_cell=3)
    bd = row(result, "Breslow-Day chi2")
    assert bd[5] == pytest.approx(stats.chi2.sf(bd[1], 2), rel=1e-12)


def test_a_refused_query_opens_zeros_and_its_bits_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from queries import strata_result

    seen: list = []
    finish = strata_result.finish
    monkeypatch.setattr(strata_result, "finish", lambda plan, opened: seen.append(opened) or finish(plan, opened))
    sites = [site(300, 5, ("A", "B")), site(100, 6, ("A", "B"))]
    sites[0].loc[0, "centre"] = "Z"  # a stratum of one row
    with pytest.raises(SmallStratum):
        run_in_process(sites, QUERY, min_cell=5)
    cells, values, count, bits = seen[0]
    assert not np.any(cells) and not np.any(values) and not np.any(count)
    assert np.rint(bits).tolist() == [1, 0, 1, 0, 0, 0, 0, 0]


def test_more_rows_than_the_range_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from queries import strata
    from queries.errors import OutOfRange

    monkeypatch.setattr(strata, "MAX_ROWS", 300)
    sites = [site(200, 51, ("A", "B")), site(150, 52, ("A", "B"))]
    with pytest.raises(OutOfRange, match="more than 300 rows"):
        run_in_process(sites, QUERY, min_cell=3)


def test_one_stratum_gives_the_tables_own_ratios_and_no_breslow_day() -> None:
    sites = [site(200, 61, ("A",)), site(90, 62, ("A",))]
    result, _ = run_in_process(sites, QUERY, min_cell=3)
    assert_pooled(result, pd.concat(sites, ignore_index=True), breslow_day=False)
    assert row(result, "Breslow-Day chi2")[1] is None and result.extra["strata_with_rows"] == 1
    assert any("at least two strata" in note for note in result.extra["notes"])


@SHARED_ZERO_CELL
def test_zeros_withheld_make_a_zero_cell_small_and_withhold_the_tables() -> None:
    sites, shown = zero_cell_run()  # stratum C: b = 0
    assert isinstance(shown.extra["tables"], list)
    hidden, _ = run_in_process(sites, QUERY, min_cell=3, release_zero=False)
    assert isinstance(hidden.extra["tables"], str)
    assert_pooled(hidden, pd.concat(sites, ignore_index=True))


def counted(cells: dict[str, list[list[int]]]) -> pd.DataFrame:
    """A site's rows from its 2 x 2 tables per centre, [[a, b], [c, d]] with a = exposed cases."""
    parts = []
    for centre, ((a, b), (c, d)) in cells.items():
        for e, o, m in ((1, 1, a), (1, 0, b), (0, 1, c), (0, 0, d)):
            parts.append(pd.DataFrame({"smoke": [e] * m, "dead": [o] * m, "centre": [centre] * m, "age": [50] * m}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.astype({"smoke": "Int64", "dead": "Int64", "centre": "string", "age": "Int64"})


def test_a_huge_odds_ratio_keeps_breslow_day_in_range() -> None:
    sites = [counted({"A": [[2000, 1], [1, 2000]], "B": [[1500, 2], [1, 900]]}),
             counted({"A": [[100, 0], [0, 80]], "C": [[700, 1], [3, 600]]})]
    result, _ = run_in_process(sites, QUERY, min_cell=1)
    assert row(result, "OR (Mantel-Haenszel)")[1] > 5e5
    assert_pooled(result, pd.concat(sites, ignore_index=True))


def test_a_tiny_odds_ratio_keeps_breslow_day_precise() -> None:
    sites = [counted({"A": [[1, 2000], [2000, 1]], "B": [[10, 40], [60, 5]]}),
             counted({"A": [[0, 100], [80, 0]], "C": [[1, 700], [600, 3]], "B": [[3, 30], [50, 2]]})]
    result, _ = run_in_process(sites, QUERY, min_cell=1)
    assert row(result, "OR (Mantel-Haenszel)")[1] < 1e-3
    assert_pooled(result, pd.concat(sites, ignore_index=True))
