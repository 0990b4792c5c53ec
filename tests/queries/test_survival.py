"""SURVIVAL over MPC against lifelines on the pooled plaintext: the Kaplan-Meier curve (at risk, events,
S, its log(-log) Greenwood CI) at every released step, and the log-rank test; the release rule,
refusals and EXPLAIN's predicted rounds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from queries.engine import plan_query, predict_cost, run_in_process
from queries.errors import BadSurvivalData, OutOfRange, QueryError, TooFewCases, TooFewEvents
from queries.parser import parse
from queries.survival import grid_points
from queries.table import check_schemas, schema_of

lifelines = pytest.importorskip("lifelines")
statistics = pytest.importorskip("lifelines.statistics")

TOL = 1e-6


def site(rows: int, seed: int, arms: tuple[str, ...] = ("a", "b"), top: int = 14, hazard: float = 0.0) -> pd.DataFrame:
    """Integer follow-up times with many ties, about a third censored; arm 'b' (if any) a little worse."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(arms, rows)
    scale = np.where(arm == "b", top / 2.2, top / 1.6) * (1 - hazard)
    time = np.minimum(np.floor(rng.exponential(scale, rows)), top - 1).astype(np.int64)
    event = (rng.uniform(size=rows) < 0.68).astype(np.int64)
    return pd.DataFrame({"t": pd.array(time, dtype="Int64"), "e": pd.array(event, dtype="Int64"),
                         "arm": pd.array(arm, dtype="string"), "age": pd.array(rng.integers(30, 80, rows),
                                                                                dtype="Int64")})


def km_reference(frame: pd.DataFrame, every: float = 1.0) -> lifelines.KaplanMeierFitter:
    times = grid_points(frame.t.astype(float).to_numpy(), every) * every
    return lifelines.KaplanMeierFitter().fit(times, frame.e.astype(float).to_numpy())


def assert_curve(result_rows: pd.DataFrame, frame: pd.DataFrame, k: int, every: float = 1.0) -> None:
    """Every released step equals lifelines at that time, and the released steps are exactly the times
    with at least k events."""
    kmf = km_reference(frame, every)
    table = kmf.event_table
    expected_times = [t for t, row in table.iterrows() if row.observed >= k]
    assert list(result_rows.time.astype(float)) == pytest.approx(expected_times)
    for _, row in result_rows.iterrows():
        t = float(row.time)
        assert row.at_risk == table.loc[t, "at_risk"] and row.events == table.loc[t, "observed"]
        assert row.survival == pytest.approx(kmf.survival_function_.loc[t].iloc[0], abs=TOL)
        lower, upper = kmf.confidence_interval_.loc[t]
        assert row.ci_lower == pytest.approx(lower, abs=TOL) and row.ci_upper == pytest.approx(upper, abs=TOL)


def assert_logrank(extra: dict, frame: pd.DataFrame) -> None:
    ref = statistics.multivariate_logrank_test(frame.t.astype(float), frame.arm, frame.e.astype(float))
    assert extra["logrank_chi2"] == pytest.approx(ref.test_statistic, rel=TOL, abs=TOL)
    assert extra["logrank_p"] == pytest.approx(ref.p_value, rel=TOL, abs=TOL)
    assert extra["logrank_df"] == ref.degrees_of_freedom


@pytest.mark.parametrize(("sizes", "k"), [((60, 90), 1), ((30, 12, 55, 20, 41), 3)],
                         ids=["2-parties-k1", "5-parties-k3"])
def test_curves_and_logrank_match_lifelines(sizes: tuple[int, ...], k: int) -> None:
    """On two sites and on five (three sites: the curves and log-rank test of
    `test_events_at_time_zero_heavy_ties_and_a_group_without_events`)."""
    arms = ("a", "b") if len(sizes) < 3 else ("a", "b", "c")
    sites = [site(n, seed, arms) for seed, n in enumerate(sizes)]
    pooled = pd.concat(sites, ignore_index=True)
    result, plan = run_in_process(sites, "SURVIVAL t, e BY arm", min_cell=k)
    frame = result.to_pandas()
    for arm in arms:
        assert_curve(frame[frame.arm == arm], pooled[pooled.arm == arm], k)
    assert_logrank(result.extra, pooled)
    counts = {g["group"]: (g["patients"], g["events"]) for g in result.extra["groups"]}
    assert counts == {a: (int((pooled.arm == a).sum()), int(pooled.e[pooled.arm == a].sum())) for a in arms}


def test_without_by_and_two_group_logrank_test() -> None:
    sites = [site(80, 5), site(45, 6)]
    pooled = pd.concat(sites, ignore_index=True)
    result, _ = run_in_process(sites, "SURVIVAL t, e", min_cell=2)
    assert "arm" not in result.columns and "logrank_chi2" not in result.extra
    assert_curve(result.to_pandas(), pooled, 2)
    by, _ = run_in_process(sites, "SURVIVAL t, e BY arm", min_cell=2)
    a, b = pooled[pooled.arm == "a"], pooled[pooled.arm == "b"]
    ref = statistics.logrank_test(a.t.astype(float), b.t.astype(float), a.e.astype(float), b.e.astype(float))
    assert by.extra["logrank_chi2"] == pytest.approx(ref.test_statistic, rel=TOL)


def test_every_coarsens_times_to_the_grid() -> None:
    """Float times; EVERY 2.5: a time counts at ceil(t / 2.5) x 2.5, as lifelines on those times."""
    sites = [site(70, 7), site(50, 8)]
    for s in sites:
        s["t"] = (s.t.astype(float) + np.random.default_rng(1).uniform(0, 1, len(s))).astype("Float64")
    pooled = pd.concat(sites, ignore_index=True)
    result, _ = run_in_process(sites, "SURVIVAL t, e EVERY 2.5", min_cell=3)
    assert_curve(result.to_pandas(), pooled, 3, every=2.5)
    assert set(result.to_pandas().time) <= {2.5 * j for j in range(16)}


def test_steps_below_k_are_not_shown_but_count_in_s() -> None:
    sites = [site(50, 9), site(35, 10)]
    pooled = pd.concat(sites, ignore_index=True)
    result, _ = run_in_process(sites, "SURVIVAL t, e", min_cell=6)
    frame = result.to_pandas()
    observed = km_reference(pooled).event_table.observed
    hidden = [t for t, d in observed.items() if 0 < d < 6]
    assert hidden and not set(hidden) & set(frame.time)  # some steps are hidden ...
    assert_curve(frame, pooled, 6)  # ... and S at the next shown step is the full Kaplan-Meier


def test_a_small_group_suppresses_its_counts_and_withholds_the_logrank_test() -> None:
    sites = [site(60, 11), site(40, 12)]
    sites[1].loc[0, "arm"] = "rare"  # one patient in a third group
    result, _ = run_in_process(sites, "SURVIVAL t, e BY arm", min_cell=3)
    rare = next(g for g in result.extra["groups"] if g["group"] == "rare")
    assert rare["patients"] is None and "withheld" in result.extra["logrank"]
    assert "rare" not in set(result.to_pandas().arm)


def test_an_empty_group_is_left_out_of_the_logrank_test() -> None:
    """Levels the WHERE removes have no patients: the test is lifelines' on the other levels, wherever
    an empty level sits: first, in the middle and last (the level lifelines' form drops), in one run."""
    arms = ("a", "b", "c", "d", "e", "f")
    sites = [site(110, 13, arms), site(90, 14, arms)]
    pooled = pd.concat(sites, ignore_index=True)
    gone = ["a", "c", "f"]
    result, _ = run_in_process(sites, "SURVIVAL t, e BY arm WHERE arm <> 'a' AND arm <> 'c' AND arm <> 'f'",
                               min_cell=2)
    assert_logrank(result.extra, pooled[~pooled.arm.isin(gone)])
    assert result.extra["logrank_df"] == 2  # b, d and e
    for level in gone:
        assert next(g for g in result.extra["groups"] if g["group"] == level)["patients"] == 0


def test_events_at_time_zero_heavy_ties_and_a_group_without_events() -> None:
    rng = np.random.default_rng(5)

    def tied(rows: int) -> pd.DataFrame:
        arm = rng.choice(["a", "b", "c"], rows)
        event = np.where(arm == "c", 0, rng.integers(0, 2, rows))  # group c: every patient censored
        return pd.DataFrame({"t": pd.array(rng.choice([0, 0, 1, 3, 3, 3, 7, 15], rows), dtype="Int64"),
                             "e": pd.array(event, dtype="Int64"), "arm": pd.array(arm, dtype="string")})

    sites = [tied(20), tied(7), tied(13)]
    pooled = pd.concat(sites, ignore_index=True)
    result, _ = run_in_process(sites, "SURVIVAL t, e BY arm", min_cell=1)
    frame = result.to_pandas()
    for arm in ("a", "b", "c"):
        assert_curve(frame[frame.arm == arm], pooled[pooled.arm == arm], 1)
    assert_logrank(result.extra, pooled)


def test_a_curve_that_reaches_zero_as_lifelines() -> None:
    """Every patient still at risk at the last time has the event: S = 0 and the CI (0, 0) there."""
    a = pd.DataFrame({"t": pd.array([1, 2, 2, 3, 3, 3, 4, 4], dtype="Int64"),
                      "e": pd.array([1, 1, 0, 1, 0, 1, 1, 1], dtype="Int64")})
    b = pd.DataFrame({"t": pd.array([1, 2, 3, 4], dtype="Int64"), "e": pd.array([0, 1, 1, 1], dtype="Int64")})
    result, _ = run_in_process([a, b], "SURVIVAL t, e", min_cell=1)
    frame = result.to_pandas()
    assert_curve(frame, pd.concat([a, b]), 1)
    assert frame.survival.iloc[-1] == 0 and frame.ci_lower.iloc[-1] == 0 and frame.ci_upper.iloc[-1] == 0


def test_site_policy_sees_survival_as_a_statistic() -> None:
    from parties.policy import query_kind, role_needed

    stmt = parse("SURVIVAL t, e BY arm WHERE age > 40")
    assert query_kind(stmt) == "aggregate" and role_needed(stmt) == "statistics"


def test_nulls_are_dropped_as_incomplete_cases() -> None:
    sites = [site(60, 15), site(40, 16)]
    holes = [s.copy() for s in sites]
    holes[0].loc[[1, 5], "t"] = pd.NA
    holes[1].loc[[2], "e"] = pd.NA
    holes[1].loc[[3], "arm"] = pd.NA
    complete = [holes[0].drop(index=[1, 5]), holes[1].drop(index=[2, 3])]
    got, _ = run_in_process(holes, "SURVIVAL t, e BY arm", min_cell=2)
    want, _ = run_in_process(complete, "SURVIVAL t, e BY arm", min_cell=2)
    pd.testing.assert_frame_equal(got.to_pandas(), want.to_pandas())
    # Two runs round differently in fixed point (about 1e-9 apart, more now and then); one row kept or
    # dropped wrongly moves the statistic by 3% or more here, so the file's TOL tells them apart.
    assert got.extra["logrank_chi2"] == pytest.approx(want.extra["logrank_chi2"], rel=TOL)


@pytest.mark.parametrize(("change", "error", "words"), [
    (lambda s: s.assign(t=s.t.where(s.index != 3, -1)), BadSurvivalData, "times of 0 or more"),
    (lambda s: s.assign(e=s.e.where(s.index != 3, 2)), BadSurvivalData, r"0 \(censored\) or 1 \(event\)"),
    (lambda s: s.assign(t=s.t.where(s.index != 3, 5000)), OutOfRange, "EVERY"),
    (lambda s: s.assign(e=s.e * 0), TooFewEvents, "fewer than 5 events"),
    (lambda s: s.head(2), TooFewCases, "fewer than 5 complete cases"),
], ids=["negative-time", "event-not-0-1", "beyond-grid", "too-few-events", "too-few-cases"])
def test_bad_data_is_refused_and_nothing_is_released(change, error, words) -> None:  # noqa: ANN001
    sites = [change(site(30, 17)), change(site(20, 18))]
    with pytest.raises(error, match=words):
        run_in_process(sites, "SURVIVAL t, e BY arm", min_cell=5)


@pytest.mark.parametrize(("query", "words"), [
    ("SURVIVAL t", "expected ','"),
    ("SURVIVAL t, t", "two different columns"),
    ("SURVIVAL t, e BY e", "other than the time and the event"),
    ("SURVIVAL t, e EVERY 0", "positive grid width"),
    ("SURVIVAL t, e EVERY 2 EVERY 3", "EVERY appears twice"),
    ("SURVIVAL t, e BY arm BY age", "BY appears twice"),
])
def test_parser_errors(query: str, words: str) -> None:
    with pytest.raises(QueryError, match=words):
        parse(query)


def test_categorical_time_or_event_is_an_error() -> None:
    schema = schema_of(site(10, 1))
    with pytest.raises(QueryError, match="time column of SURVIVAL must be numeric"):
        plan_query("SURVIVAL arm, e", schema, {})
    with pytest.raises(QueryError, match="event column of SURVIVAL must be numeric"):
        plan_query("SURVIVAL t, arm", schema, {})


def test_where_and_from_and_every_in_any_order() -> None:
    a = parse("SURVIVAL t, e WHERE age > 40 BY arm EVERY 7")
    b = parse("SURVIVAL t, e EVERY 7 BY arm WHERE age > 40")
    assert a == b and a.group == "arm" and a.every == 7.0


@pytest.mark.parametrize(("query", "sizes"), [("SURVIVAL t, e BY arm WHERE age > 40", (50, 30)),
                                              ("SURVIVAL t, e", (40, 30, 20))])
def test_explain_predicts_the_rounds_exactly(query: str, sizes: tuple[int, ...]) -> None:
    sites = [site(n, 20 + i) for i, n in enumerate(sizes)]
    result, plan = run_in_process(sites, query, min_cell=2)
    predicted = predict_cost(plan, check_schemas([schema_of(s) for s in sites]), len(sites))
    assert predicted["rounds"] == plan.cost["rounds"] and predicted["grid_points"] == 16
    text = replace(plan, cost=predicted).text()
    assert f"{plan.cost['rounds']} rounds" in text and "rounds exact" in text


@pytest.mark.network
def test_survival_through_real_nodes(tmp_path) -> None:  # noqa: ANN001
    from parties.local import LocalConsortium

    sites = [site(150, 31), site(100, 32)]
    files = {}
    for name, frame in zip(("a", "b"), sites):
        files[name] = tmp_path / f"{name}.csv"
        frame.to_csv(files[name], index=False)
    pooled = pd.concat(sites, ignore_index=True)
    with LocalConsortium(["a", "b"], data=files) as consortium:
        result = consortium.query("SURVIVAL t, e BY arm", min_cell=5)
    frame = result.to_pandas()
    for arm in ("a", "b"):
        assert_curve(frame[frame.arm == arm], pooled[pooled.arm == arm], 5)
    assert_logrank(result.extra, pooled)
