"""AVG_CI, PROPORTION and RATE: estimates and 95% CIs against scipy and statsmodels on the pooled plaintext
(2 and 5 parties of unequal sizes, grouped and not, with NULLs); a group below k; proportions of 0 and 1;
a rate with no events; a non-positive person-time; refusals; the output formats; EXPLAIN's exact cost."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from queries.engine import plan_query, predict_cost, run_in_process
from queries.errors import QueryError
from queries.intervals import poisson_interval, t_interval, wilson_interval
from queries.parser import parse
from queries.table import check_schemas, normalize_frame, schema_of

# Tests that share one run land on one pytest-xdist worker, so the run is made once.
SHARED_EDGES = pytest.mark.xdist_group("test_intervals:edges")

QUERY = ("SELECT g, AVG_CI(sbp) AS m, PROPORTION(sbp > 130) AS p, RATE(deaths, py) AS r, COUNT(sbp) AS n "
         "FROM cohort GROUP BY g")


def _site(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])
    g[:3] = ["a", "b", "c"]
    return normalize_frame(pd.DataFrame({
        "g": g,
        "sbp": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(128, 15, rows)),
        "deaths": pd.array(np.where(rng.random(rows) < 0.05, None, rng.poisson(0.4, rows)), dtype="Int64"),
        "py": np.where(rng.random(rows) < 0.05, np.nan, rng.uniform(0.2, 5.0, rows)),
    }))


def _expected(pooled: pd.DataFrame) -> dict[str, list[float]]:
    """Per value of g (and "all"): the estimate, low, high of each interval, by scipy and statsmodels."""
    out = {}
    for key, frame in [*pooled.groupby("g"), ("all", pooled)]:
        x = frame["sbp"].dropna().to_numpy(float)
        n, mean, sd = len(x), x.mean(), x.std(ddof=1)
        t_low, t_high = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n))
        hits = int((x > 130).sum())
        w_low, w_high = proportion_confint(hits, n, alpha=0.05, method="wilson")
        both = frame.dropna(subset=["deaths", "py"])
        d, t = float(both["deaths"].sum()), float(both["py"].sum())
        p_low = stats.chi2.ppf(0.025, 2 * d) / 2 / t if d > 0 else 0.0
        p_high = stats.chi2.ppf(0.975, 2 * d + 2) / 2 / t
        out[str(key)] = [mean, t_low, t_high, hits / n, w_low, w_high, d / t, p_low, p_high, n]
    return out


@pytest.mark.parametrize("sizes", [(120, 45), (40, 90, 25, 70, 55)], ids=["2", "5"])
def test_matches_scipy_and_statsmodels(sizes: tuple[int, ...]) -> None:
    sites = [_site(rows, seed) for seed, rows in enumerate(sizes)]
    want = _expected(pd.concat(sites, ignore_index=True))
    result, plan = run_in_process(sites, QUERY, min_cell=5)
    assert result.columns == ["g", "m", "m_ci95_low", "m_ci95_high", "p", "p_ci95_low", "p_ci95_high", "r",
                              "r_ci95_low", "r_ci95_high", "n"]
    assert [row[0] for row in result.rows] == ["a", "b", "c"]
    for row in result.rows:
        assert row[1:] == pytest.approx(want[row[0]], rel=1e-6), row[0]
    schema = check_schemas([schema_of(s) for s in sites])
    predicted = predict_cost(plan, schema, len(sites), rows=list(sizes))  # EXPLAIN: rounds and bytes exact
    keys = ("rounds", "bytes_sent", "messages_sent", "dealer_requests", "dealer_bytes")
    assert {k: predicted[k] for k in keys} == {k: plan.cost[k] for k in keys}


def test_without_group_by_matches_scipy_and_statsmodels() -> None:
    """Two parties: without GROUP BY the intervals are those of every row (five parties: the grouped test above)."""
    sites = [_site(rows, seed) for seed, rows in enumerate((120, 45))]
    want = _expected(pd.concat(sites, ignore_index=True))
    whole, _ = run_in_process(sites, "SELECT AVG_CI(sbp), PROPORTION(sbp > 130), RATE(deaths, py) FROM cohort")
    assert whole.columns[:4] == ["avg(sbp)", "avg(sbp)_ci95_low", "avg(sbp)_ci95_high", "proportion(sbp > 130)"]
    assert whole.columns[5:7] == ["proportion(sbp > 130)_ci95_high", "rate(deaths, py)"]
    assert whole.rows[0] == pytest.approx(want["all"][:9], rel=1e-6)


def test_parts_are_shared_with_the_select_list() -> None:
    stmt = parse("SELECT COUNT(sbp) AS n, AVG_CI(sbp), STDDEV(sbp) FROM cohort")
    assert [a.func for a in stmt.aggregates] == ["COUNT", "STDDEV", "AVG"]  # AVG_CI adds only its AVG
    assert stmt.intervals[0].parts == (2, 0, 1)


def _edge_sites() -> list[pd.DataFrame]:
    """Group lo: 3 rows (below k = 5); all: every sbp > 130 and no deaths; none: no sbp > 130; neg: a
    person-time that sums to -1; one: a single non-NULL sbp among 6 rows."""
    rows = ([("lo", 140.0, 1, 1.0)] * 3 + [("all", 150.0, 0, 2.0)] * 8 + [("none", 110.0, 2, 1.5)] * 7
            + [("neg", 120.0, 1, 1.0)] * 4 + [("neg", 120.0, 1, -5.0)] + [("one", 125.0, 1, 1.0)]
            + [("one", None, 1, 1.0)] * 5)
    frame = pd.DataFrame(rows, columns=["g", "sbp", "deaths", "py"])
    return [normalize_frame(frame.iloc[0::3].reset_index(drop=True)),
            normalize_frame(frame.iloc[1::3].reset_index(drop=True)),
            normalize_frame(frame.iloc[2::3].reset_index(drop=True))]


@pytest.fixture(scope="module")
def edges() -> dict[str, tuple[list, list[bool]]]:
    query = "SELECT g, AVG_CI(sbp) AS m, PROPORTION(sbp > 130) AS p, RATE(deaths, py) AS r FROM t GROUP BY g"
    result, _ = run_in_process(_edge_sites(), query, min_cell=5)
    return {row[0]: (row[1:], flags[1:]) for row, flags in zip(result.rows, result.cell_flags())}


@SHARED_EDGES
def test_a_group_below_k_withholds_every_interval_column(edges: dict) -> None:
    assert edges["lo"] == ([None] * 9, [True] * 9)


@SHARED_EDGES
def test_proportions_of_0_and_1_keep_a_wilson_interval(edges: dict) -> None:
    for group, hits, n in (("all", 8, 8), ("none", 0, 7)):
        values, flags = edges[group]
        low, high = proportion_confint(hits, n, method="wilson")
        assert values[3:6] == pytest.approx([hits / n, low, high], rel=1e-9) and not any(flags)
    assert edges["all"][0][4] > 0.6 and edges["none"][0][5] < 0.4  # a real interval, not [p, p]


@SHARED_EDGES
def test_a_rate_without_events_is_zero_to_the_exact_upper_bound(edges: dict) -> None:
    values, _ = edges["all"]
    assert values[6:] == pytest.approx([0.0, 0.0, stats.chi2.ppf(0.975, 2) / 2 / 16.0], rel=1e-9)
    assert poisson_interval(0, 16.0) == (0.0, pytest.approx(3.6888794541139363 / 16.0))


@SHARED_EDGES
def test_a_non_positive_person_time_makes_the_rate_null(edges: dict) -> None:
    values, flags = edges["neg"]
    assert values[6:] == [None, None, None] and not any(flags)  # NULL, not withheld
    assert values[0] == pytest.approx(120.0) and poisson_interval(3, 0.0) == (None, None)


def test_a_single_value_has_a_mean_but_no_t_interval() -> None:
    result, _ = run_in_process(_edge_sites(), "SELECT g, AVG_CI(sbp) AS m FROM t GROUP BY g", min_cell=1)
    row = next(r for r in result.rows if r[0] == "one")
    assert row[1] == pytest.approx(125.0) and row[2:] == [None, None]
    assert t_interval(1.0, 0.5, 1) == (None, None) and wilson_interval(0, 0) == (None, None)


@pytest.mark.parametrize(("query", "message"), [
    ("SELECT RATE(deaths) FROM t", "RATE takes two arguments: RATE(events, person_time)"),
    ("SELECT AVG_CI(sbp, py) FROM t", "AVG_CI takes one argument: AVG_CI(x)"),
    ("SELECT COUNT(*) FROM t HAVING AVG_CI(sbp) > 1", "AVG_CI may appear only in the SELECT list"),
    ("SELECT COUNT(*) FROM t WHERE PROPORTION(sbp > 1) > 0.5", "aggregates cannot be used in WHERE"),
    ("SELECT AVG(sbp), AVG_CI(sbp) FROM t", "two result columns are named 'avg(sbp)'; use AS"),
    ("SELECT AVG_CI(AVG(sbp)) FROM t", "an aggregate inside an aggregate is not supported"),
    ("SELECT PROPORTION(COUNT(*) > 2) FROM t", "an aggregate inside an aggregate is not supported"),
])
def test_bad_input_is_refused(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_in_process(_edge_sites(), query)


def test_a_proportion_needs_a_condition() -> None:
    with pytest.raises(QueryError, match=r"PROPORTION needs a condition \(true or false\), e.g.") as info:
        run_in_process(_edge_sites(), "SELECT PROPORTION(sbp + 1) FROM t")
    assert info.value.position == 19
    with pytest.raises(QueryError, match=r"needs a condition \(true or false\), found a number") as info:
        run_in_process(_edge_sites(), "SELECT PROPORTION(sbp) FROM t")  # a column: by its type
    assert info.value.position == 19


def test_refused_under_differential_privacy() -> None:
    with pytest.raises(QueryError, match="AVG_CI is not available under disclosure = dp"):
        run_in_process(_edge_sites(), "SELECT AVG_CI(sbp) FROM t", epsilon=1.0, bounds=[{"sbp": (0, 300)}] * 3)


def test_order_by_an_interval_column() -> None:
    query = "SELECT g, RATE(deaths, py) AS r FROM t WHERE g <> 'neg' GROUP BY g ORDER BY r_ci95_high DESC"
    result, _ = run_in_process(_edge_sites(), query, min_cell=5)
    highs = [row[3] for row in result.rows if row[3] is not None]
    assert highs == sorted(highs, reverse=True) and len(highs) == 3
    by_position, _ = run_in_process(_edge_sites(), query.replace("r_ci95_high DESC", "2"), min_cell=5)
    rates = [row[1] for row in by_position.rows if row[1] is not None]
    assert rates == sorted(rates) and rates[0] == 0.0  # ORDER BY 2: the item's estimate column


def test_table_json_and_csv() -> None:
    query = "SELECT g, PROPORTION(sbp > 130) AS p FROM t WHERE g IN ('lo', 'all') GROUP BY g"
    result, _ = run_in_process(_edge_sites(), query, min_cell=5)
    text = result.to_table().splitlines()
    assert text[0].split() == ["g", "p", "p_ci95_low", "p_ci95_high"]
    assert text[2].split() == ["lo", "suppressed", "suppressed", "suppressed"] and text[1].split()[:2] == ["all", "1.0"]
    assert "(3 value(s) suppressed" in result.to_table()
    body = json.loads(result.to_json())
    assert body["rows"][1] == ["lo", None, None, None] and body["suppressed_cells"][1] == [False, True, True, True]
    low, high = proportion_confint(8, 8, method="wilson")
    assert body["rows"][0] == ["all", 1.0, pytest.approx(low), pytest.approx(high)]
    csv = result.to_csv()
    assert csv.splitlines()[2] == "lo,,,,p;p_ci95_low;p_ci95_high"
    frame = pd.read_csv(io.StringIO(csv), comment="#")
    assert list(frame.columns) == ["g", "p", "p_ci95_low", "p_ci95_high", "suppressed"]
    assert frame.loc[0, "p_ci95_low"] == pytest.approx(low, rel=1e-12)
    assert frame.loc[0, "p_ci95_high"] == pytest.approx(1.0)


def test_explain_names_what_the_analyst_computes_and_from_what() -> None:
    sites = _edge_sites()
    schema = check_schemas([schema_of(s) for s in sites])
    text = plan_query("EXPLAIN SELECT g, AVG_CI(sbp) AS m FROM t GROUP BY g ORDER BY m", schema,
                      {"g": ("all", "lo")}).text()
    assert text.splitlines()[-1] == ("at the analyst, on the released rows: m and its 95% CI (Student's t) from "
                                     "avg(sbp), count(sbp), stddev(sbp); ORDER BY m")


def test_with_having_a_dropped_group_is_absent_and_a_withheld_one_suppressed() -> None:
    query = "SELECT g, AVG_CI(sbp) AS m, RATE(deaths, py) AS r FROM t GROUP BY g HAVING COUNT(*) >= 7"
    result, _ = run_in_process(_edge_sites(), query, min_cell=5)
    got = {row[0]: row[1:] for row in result.rows}
    assert set(got) == {"all", "lo", "none"} and got["lo"] == [None] * 6  # lo: 3 rows, withheld
    assert got["none"][3] == pytest.approx(14 / 10.5) and got["all"][:3] == pytest.approx([150.0] * 3)


def test_a_negative_event_sum_makes_the_rate_null() -> None:
    from queries.intervals import estimate

    assert estimate("RATE", [-2, 10.0]) == (None, None, None) and estimate("RATE", [2, -1.0]) == (None, None, None)
    assert estimate("PROPORTION", [0, 0]) == (None, None, None)
