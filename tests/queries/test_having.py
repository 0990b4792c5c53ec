"""HAVING decided inside MPC: results against DuckDB on the pooled plaintext, the disclosure rule's
interplay, magnitudes, refusals, EXPLAIN's exact rounds, and that a dropped group opens nothing.

The conditions run on two parties (the rows of three sites, two of them at one party): a condition
is decided on the pooled shares whatever the number of parties; three parties decide one in
`test_explain_predicts_the_rounds_exactly` (checked against DuckDB there too)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mpc.inprocess import make_contexts, run_parties
from mpc.share import reconstruct
from protocols.material import KINDS
from queries.cost import quantile_scales
from queries.engine import local_domains, plan_query, predict_cost, run_in_process, run_party
from queries.errors import QueryError
from queries.table import check_schemas, normalize_frame, schema_of
from tests.queries.test_sql_pooled import assert_matches, reference
from tests.support import opened_again, transcripts

LEVELS = ["a", "b", "c", "d", "e"]


def _site(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(LEVELS, rows, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    g[:5] = LEVELS
    return normalize_frame(pd.DataFrame({
        "g": g,
        "age": rng.integers(20, 90, rows),
        "bmi": np.where(rng.random(rows) < 0.15, np.nan, rng.normal(27, 4, rows)),
        "x": np.where(g == "e", np.nan, rng.normal(0, 2, rows)),  # group e: x all NULL
    }))


def _three_sites() -> list[pd.DataFrame]:
    return [_site(70, 1), _site(90, 2), _site(60, 3)]


@pytest.fixture(scope="module")
def sites() -> list[pd.DataFrame]:
    """The three sites' rows at two parties (the last two sites' at one)."""
    first, *rest = _three_sites()
    return [first, normalize_frame(pd.concat(rest, ignore_index=True))]


CASES = [
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING COUNT(*) >= 51",  # c has 51 rows
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING COUNT(*) > 51",
    "SELECT g, AVG(bmi) AS m FROM cohort GROUP BY g HAVING AVG(bmi) > 26.9",
    "SELECT g, SUM(age) AS s FROM cohort GROUP BY g HAVING SUM(age) > 55 * COUNT(*) + 10 OR NOT MIN(age) < 21",
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING VAR_SAMP(bmi) BETWEEN 12 AND 20 AND STDDEV(bmi) < 4.3",
    "SELECT g, MAX(age) AS hi FROM cohort GROUP BY g HAVING MAX(age) IN (88, 89) OR MEDIAN(age) <= 52.5",  # e: 52.5
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING AVG(x) IS NULL",
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING NOT AVG(x) > 0",  # NULL: unknown, dropped
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING AVG(x) IS NOT NULL AND COUNT(*) <> 22",
    "SELECT g, AVG(bmi - 30) AS d FROM cohort GROUP BY g HAVING -AVG(bmi - 30) > 3.1 OR AVG(bmi - 30) < -3.5",
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING CORR(age, bmi) > 0.15 OR SUM(age) / 4 >= 1000",
    "SELECT g, MIN(age) AS lo FROM cohort GROUP BY g HAVING 100 - MIN(age) > 79",  # a negative coefficient
    "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING SUM(age) - 50 * COUNT(*) BETWEEN 200 AND 700",
    "SELECT COUNT(*) AS n FROM cohort HAVING COUNT(*) > 100000",
    "SELECT COUNT(*) AS n, AVG(age) AS m FROM cohort HAVING AVG(age) < 1000",
    "SELECT g, AVG(bmi) AS m FROM cohort WHERE age > 200 GROUP BY g HAVING COUNT(*) >= 0",
]


@pytest.mark.parametrize("query", CASES)
def test_having_matches_duckdb(sites: list[pd.DataFrame], pooled: pd.DataFrame, query: str) -> None:
    result, _ = run_in_process(sites, query, min_cell=1)
    want = reference(pooled, query)
    assert_matches(result.to_pandas(), want, ordered=False)
    assert 0 < len(want) < 5 or "100000" in query or "200" in query or "GROUP" not in query  # the test can fail


def test_an_alias_in_having_and_order_by(sites: list[pd.DataFrame], pooled: pd.DataFrame) -> None:
    query = "SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING n < 60 ORDER BY n DESC"
    result, _ = run_in_process(sites, query, min_cell=1)
    assert_matches(result.to_pandas(), reference(pooled, query), ordered=True)


def _threshold_sites() -> list[pd.DataFrame]:
    """Pooled: group a has exactly 5 rows, b 4, c 20 (3 non-null v), d 12."""
    rows = [("a", 1.5)] * 5 + [("b", 2.5)] * 4 + [("c", 3.5)] * 3 + [("c", None)] * 17 + [("d", 4.5)] * 12
    frame = pd.DataFrame(rows, columns=["g", "v"])
    return [normalize_frame(frame.iloc[0::2].reset_index(drop=True)),
            normalize_frame(frame.iloc[1::2].reset_index(drop=True))]


def test_the_threshold_group_and_withheld_values() -> None:
    """k = 5: a group of exactly k rows passes COUNT(*) >= 5 and fails COUNT(*) > 5 (absent); a group
    whose count is withheld is shown with every value withheld, whatever the condition (deciding it
    would tell about too few rows); a condition true without a withheld value keeps its group."""
    sites = _threshold_sites()

    def table(query: str) -> dict:
        result, _ = run_in_process(sites, query, min_cell=5)
        rounded = [[round(v, 9) if isinstance(v, float) else v for v in row] for row in result.rows]
        return {row[0]: (row[1:], flags[1:]) for row, flags in zip(rounded, result.cell_flags())}

    got = table("SELECT g, COUNT(*) AS n, AVG(v) AS m FROM t GROUP BY g HAVING COUNT(*) >= 5")
    assert got == {"a": ([5, 1.5], [False, False]), "b": ([None, None], [True, True]),
                   "c": ([20, None], [False, True]), "d": ([12, 4.5], [False, False])}
    got = table("SELECT g, COUNT(*) AS n, AVG(v) AS m FROM t GROUP BY g HAVING COUNT(*) > 5")
    assert set(got) == {"b", "c", "d"}
    got = table("SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING AVG(v) > 3")
    assert got == {"b": ([None], [True]), "c": ([None], [True]), "d": ([12], [False])}  # a: 1.5, dropped
    got = table("SELECT g, COUNT(*) AS n, AVG(v) AS m FROM t GROUP BY g HAVING COUNT(*) > 10 OR AVG(v) > 100")
    assert got == {"b": ([None, None], [True, True]), "c": ([20, None], [False, True]),
                   "d": ([12, 4.5], [False, False])}
    got = table("SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING COUNT(*) > 100 AND AVG(v) > 0")
    assert got == {"b": ([None], [True])}  # c: false whatever its withheld AVG


def _magnitude_sites(seed: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for rows in (40, 30):
        g = rng.choice(["tiny", "mid", "huge", "neg"], rows)
        scale = pd.Series(g).map({"tiny": 1e-12, "mid": 1.0, "huge": 1e3, "neg": -1e-6}).to_numpy()
        out.append(normalize_frame(pd.DataFrame({
            "g": g, "x": rng.normal(5, 1, rows) * scale,  # a column's groups span at most 2^63 (`group_scales`)
            "h": rng.normal(5, 1, rows) * 1e17, "i": rng.integers(1, 10, rows) * 3_000_000_000_000_001,
        })))
    return out


def test_huge_and_tiny_magnitudes() -> None:
    sites = _magnitude_sites(4)
    pooled = pd.concat(sites, ignore_index=True)
    truth = reference(pooled, "SELECT g, AVG(x) AS m, VAR_SAMP(x) AS v, STDDEV(h) AS r FROM cohort GROUP BY g")
    truth = truth.set_index("g")
    for g in ["tiny", "huge", "neg"]:
        for rel in (1 - 1e-6, 1 + 1e-6):
            c = float(truth.loc[g, "m"]) * rel
            result, _ = run_in_process(sites, f"SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING AVG(x) > {c!r}", 1)
            assert [r[0] for r in result.rows] == sorted(truth.index[truth["m"] > c]), (g, c)
        v, root = float(truth.loc[g, "v"]) * 1.00001, float(truth.loc[g, "r"]) * 0.99999
        query = f"SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING VAR_SAMP(x) < {v!r} OR STDDEV(h) < {root!r}"
        result, _ = run_in_process(sites, query, 1)
        want = sorted(truth.index[(truth["v"] < v) | (truth["r"] < root)])
        assert [row[0] for row in result.rows] == want, (g, v, root)
    s = int(pooled.loc[pooled["g"] == "huge", "i"].sum())
    assert s > 2**53  # beyond float64's integers: the comparison is of the exact integer
    # huge is kept only if each of the four comparisons with its own sum is decided right (>= and =
    # true, > and < false); one condition, so one run
    exact = f"SUM(i) >= {s} AND SUM(i) = {s} AND NOT SUM(i) > {s} AND NOT SUM(i) < {s}"
    result, _ = run_in_process(sites, f"SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING {exact}", 1)
    assert "huge" in [r[0] for r in result.rows]


REFUSED = [
    ("HAVING AVG(age) = 50", "= and <> are not supported on avg(age)"),
    ("HAVING g = 'a'", "a condition on grouping columns belongs in WHERE"),
    ("HAVING SUM(age) * COUNT(*) > 5", "a product of two aggregates is not supported"),
    ("HAVING SUM(age) / COUNT(*) > 5", "divides by constants only"),
    ("HAVING AVG(age) > SUM(age)", "compared with constants only"),
    ("HAVING 1 < 2", "compares no aggregate"),
    ("HAVING SUM(bmi) * 123456789.123456789 > COUNT(*)", "exact only for aggregates below 2^60"),
    ("HAVING AVG(age) > 'x'", "compares aggregates with numbers"),
    ("HAVING AVG(age) * 1e-300 > 1e300", "beyond float64's range"),
]


@pytest.mark.parametrize("clause, message", REFUSED)
def test_refusals_say_why(sites: list[pd.DataFrame], clause: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)) as info:
        run_in_process(sites, f"SELECT g, COUNT(*) FROM cohort GROUP BY g {clause}")
    assert info.value.position is not None


@pytest.mark.parametrize("query, parties", [
    ("SELECT g, COUNT(*) AS n FROM cohort GROUP BY g HAVING COUNT(*) >= 40", 2),
    ("SELECT g, COUNT(*) AS n, AVG(bmi) FROM cohort GROUP BY g HAVING AVG(bmi) > 26.95 OR SUM(age) < 2 * COUNT(*)", 3),
    ("EXPLAIN SELECT g, MEDIAN(age) FROM cohort GROUP BY g HAVING STDDEV(bmi) < 4 AND MAX(age) >= 80", 2),
])
def test_explain_predicts_the_rounds_exactly(sites: list[pd.DataFrame], query: str, parties: int) -> None:
    """On two parties and on three (whose result is DuckDB's too)."""
    if parties == 3:
        sites = _three_sites()
    result, plan = run_in_process(sites, query.removeprefix("EXPLAIN "), min_cell=1 if parties == 3 else 5)
    if parties == 3:
        want = reference(pd.concat(sites, ignore_index=True), query)
        assert_matches(result.to_pandas(), want, ordered=False)
        assert 0 < len(want) < 5  # the test can fail
    schema = check_schemas([schema_of(s) for s in sites])
    sizes = [len(s) for s in sites]
    predicted = predict_cost(plan, schema, len(sites), rows=sizes, scales=quantile_scales(plan, sites))
    keys = ("rounds", "bytes_sent", "messages_sent", "dealer_requests", "dealer_bytes")
    assert {k: predicted[k] for k in keys} == {k: plan.cost[k] for k in keys}
    assert any(step.startswith("HAVING: per group") for step in plan.mpc_steps)
    _, without = run_in_process(sites, query.removeprefix("EXPLAIN ").split(" HAVING ")[0])
    assert plan.cost["rounds"] > without.cost["rounds"]


def _outputs(frames: list[pd.DataFrame], query: str) -> list[np.ndarray]:
    """Every released output, reconstructed as ring elements (what the analyst opens)."""
    schema = check_schemas([schema_of(f) for f in frames])
    plan = plan_query(query, schema, local_domains(frames, ["g"]), min_cell=3)
    shares = run_parties(len(frames), lambda ctx, f: run_party(ctx, plan, f), args=frames,
                         contexts=make_contexts(len(frames), kinds=KINDS))
    return [reconstruct(list(out)) for out in zip(*shares)]


def test_a_dropped_group_opens_nothing_that_depends_on_its_values() -> None:
    """Group d is dropped by HAVING in both runs, with different values, NULLs and row counts: every
    output the analyst opens is the same for it, label for label; and it equals an empty group's."""
    base = _threshold_sites()
    other = [f.copy() for f in base]
    other[0].loc[other[0]["g"] == "d", "v"] = [9e9, None, -3.5, 1e-12, 7.0, 2.0]
    other[1] = normalize_frame(pd.concat([other[1], pd.DataFrame({"g": ["d"] * 3, "v": [1.0, 2.0, None]})],
                                         ignore_index=True))
    empty_d = [normalize_frame(f[f["g"] != "d"].reset_index(drop=True)) for f in base]
    query = "SELECT g, COUNT(*) AS n, AVG(v) AS m, SUM(v), VAR(v), MAX(v) FROM t GROUP BY g HAVING AVG(v) < 4"
    d = ["a", "b", "c", "d"].index("d")  # the groups' order: the domain, a NULL level last
    runs = [_outputs(frames, query) for frames in (base, other)]
    assert [len(r) for r in runs[0]] == [len(r) for r in runs[1]]
    for one, two in zip(*runs):
        assert one[d] == two[d]
    absent = [int(out[d]) for out in runs[0]]
    assert absent[0] == 1 and not any(absent[1:])  # absent; every value, NULL and suppression flag zero
    domains_with_d = local_domains(base, ["g"])
    schema = check_schemas([schema_of(f) for f in base])
    plan = plan_query(query, schema, domains_with_d, min_cell=3)
    shares = run_parties(2, lambda ctx, f: run_party(ctx, plan, f), args=empty_d,
                         contexts=make_contexts(2, kinds=KINDS))
    empty_run = [reconstruct(list(out)) for out in zip(*shares)]
    assert [int(out[d]) for out in empty_run] == absent  # a dropped group is released exactly as an empty one


def test_the_parties_messages_do_not_depend_on_the_dropped_group() -> None:
    """The same messages, of the same sizes, in the same order, whatever the dropped group holds; and
    every value opened between the parties is masked afresh in every run (nothing repeats)."""
    base = _threshold_sites()
    other = [f.copy() for f in base]
    other[1].loc[other[1]["g"] == "d", "v"] = [-7.25, None, 1e6, 3.5, 0.0, 8.0]
    query = "SELECT g, COUNT(*) AS n, AVG(v) AS m, STDDEV(v) FROM t GROUP BY g HAVING AVG(v) < 4 AND COUNT(*) > 4"
    schema = check_schemas([schema_of(f) for f in base])
    plan = plan_query(query, schema, local_domains(base, ["g"]), min_cell=3)

    def program(ctx, frame):  # type: ignore[no-untyped-def]
        return run_party(ctx, plan, frame)

    a1, a2, b1 = transcripts(base, program), transcripts(base, program), transcripts(other, program)
    assert [[(t, d, len(p)) for t, d, p in log] for log in a1] == [[(t, d, len(p)) for t, d, p in log] for log in b1]
    assert opened_again(a1, a2, public=("scales",)) == []  # the columns' public scales (`queries.scaling`)


@pytest.mark.parametrize("release_zero", [True, False])
def test_a_condition_true_wherever_known_changes_nothing(release_zero: bool) -> None:
    """COUNT(*) >= 0 is true wherever the count is released: the same rows, values and flags as without
    HAVING, whether zeros are released (an empty group absent) or not (shown as suppressed)."""
    sites = _threshold_sites()
    query = "SELECT g, COUNT(*) AS n, AVG(v) AS m, MAX(v) AS hi FROM t GROUP BY g"
    plain, _ = run_in_process(sites, query, min_cell=5, release_zero=release_zero)
    having, _ = run_in_process(sites, query + " HAVING COUNT(*) >= 0", min_cell=5, release_zero=release_zero)
    assert having.cell_flags() == plain.cell_flags()
    assert [[round(v, 9) if isinstance(v, float) else v for v in row] for row in having.rows] == \
        [[round(v, 9) if isinstance(v, float) else v for v in row] for row in plain.rows]
    assert len(plain.rows) == (4 if release_zero else 5)  # a, b, c, d; without zeros, the empty NULL group too


def test_rounds_of_having(sites: list[pd.DataFrame]) -> None:
    """The rounds docs/queries.md quotes: COUNT/SUM comparisons ride with the suppression flags and
    the flags in the release's last round (2 rounds of products); AVG adds a comparison (6 rounds) and its products."""
    def rounds(query: str) -> int:
        return run_in_process(sites, query)[1].cost["rounds"]

    assert rounds("SELECT g, COUNT(*) AS n FROM t GROUP BY g") == 7
    assert rounds("SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING COUNT(*) >= 20") == 9
    assert rounds("SELECT g, COUNT(*) AS n, AVG(x) FROM t GROUP BY g") == 33
    assert rounds("SELECT g, COUNT(*) AS n, AVG(x) FROM t GROUP BY g HAVING AVG(x) > 5") == 42
