"""Queries under differential privacy, in process: noise present, unbiased and of the declared scale;
values clamped to the pooled bounds; no single party's contribution fixes the noise; refusals;
EXPLAIN's epsilon; every released number with its noise sd and 95% interval."""

from __future__ import annotations

import hashlib
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from mpc.context import PartyContext
from protocols.noise import seeded_words
from queries import dp, dp_release
from queries.dp import DP_FRAC, plan_privacy
from queries.dp_finish import laplace_halfwidth, laplace_sd
from queries.engine import plan_query, rebuild_plan, run_in_process
from queries.errors import QueryError
from queries.parser import parse
from queries.table import Schema

GROUPS = 300


def _frames(parties: int = 3, per_group: int = 4, seed: int = 0) -> list[pd.DataFrame]:
    """Every party holds `per_group` rows in each of GROUPS groups; x runs beyond the bounds [0, 100]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(parties):
        g = np.repeat([f"g{i:03d}" for i in range(GROUPS)], per_group)
        out.append(pd.DataFrame({"g": g, "x": rng.uniform(-40.0, 160.0, g.size).round(2)}))
    return out


BOUNDS = [{"x": (0.0, 100.0)}] * 3


def _clamped_sums(frames: list[pd.DataFrame]) -> pd.Series:
    """The exact per-group sum of clamp(x) at the grid the parties sum on."""
    both = pd.concat(frames)
    units = np.rint(np.clip(both["x"].to_numpy(), 0.0, 100.0) * 2**DP_FRAC)
    return pd.Series(units, index=both["g"].to_numpy()).groupby(level=0).sum() / 2**DP_FRAC


def _released(result, column: str) -> pd.Series:  # noqa: ANN001
    frame = result.to_pandas()
    frame = frame[frame["g"].notna()]
    return pd.Series(frame[column].to_numpy(dtype=float), index=frame["g"].to_numpy())


def _dispersion_ok(noise: np.ndarray, sd: float) -> None:
    """Mean within 4 standard errors of 0, variance within [0.55, 1.7] of the theoretical one (300 draws:
    the ratio's own sd is about 0.13; an exact sampler falls outside about once in 20,000 runs, a scale
    1.5 times too large in 98 runs of 100)."""
    assert abs(noise.mean()) < 4 * sd / math.sqrt(noise.size), noise.mean()
    assert 0.55 < noise.var() / sd**2 < 1.7, (noise.var(), sd**2)


def test_a_count_is_noisy_unbiased_and_of_the_declared_scale() -> None:
    frames = _frames()
    result, plan = run_in_process(frames, "SELECT g, COUNT(*) GROUP BY g", epsilon=0.5, bounds=BOUNDS)
    noise = _released(result, "count").to_numpy() - 12  # every group holds 3 x 4 rows
    assert np.count_nonzero(noise) > GROUPS / 2  # noise is present
    t = plan.privacy.noised[0].scale
    assert t == 2.0  # sensitivity 1, epsilon 0.5, the whole epsilon on the one statistic
    _dispersion_ok(noise, laplace_sd(t))
    assert np.all(noise == np.rint(noise))  # integer noise on an integer count


def test_a_sum_is_clamped_then_noised_at_sensitivity_max_bound() -> None:
    frames = _frames(seed=1)
    result, plan = run_in_process(frames, "SELECT g, SUM(x) GROUP BY g", epsilon=1.0, bounds=BOUNDS)
    (noised,) = plan.privacy.noised
    assert noised.sensitivity == 100.0 and noised.value_scale == pytest.approx(100.0)
    truth = _clamped_sums(frames)
    noise = (_released(result, "sum(x)") - truth).dropna().to_numpy()
    assert noise.size == GROUPS
    _dispersion_ok(noise, laplace_sd(noised.scale) / 2**DP_FRAC)  # unclamped sums would be biased by ~+190


def test_values_beyond_the_bounds_are_clamped_before_aggregation() -> None:
    frames = [pd.DataFrame({"x": [500.0, -300.0, 50.0]}), pd.DataFrame({"x": [1000.0, 20.0]})]
    result, _ = run_in_process(frames, "SELECT SUM(x), AVG(x)", epsilon=1e6, bounds=[{"x": (0, 100)}] * 2)
    total, mean = result.rows[0]
    assert total == pytest.approx(100 + 0 + 50 + 100 + 20, abs=0.01)  # not 1270
    assert mean == pytest.approx(270 / 5, abs=0.01)


def test_the_widest_bounds_of_the_sites_apply() -> None:
    assert dp.pooled_bounds([{"x": [0, 50], "y": [1, 2]}, {"x": [-10, 40]}]) == {"x": (-10.0, 50.0)}


def test_avg_and_stddev_come_from_noisy_moments_with_intervals() -> None:
    frames = _frames(per_group=30, seed=2)
    result, plan = run_in_process(frames, "SELECT AVG(x), STDDEV(x)", epsilon=1.0, bounds=BOUNDS)
    assert [n.stat for n in plan.privacy.noised] == [("c", "x"), ("n", "x"), ("c2", "x")]
    assert [n.sensitivity for n in plan.privacy.noised] == [50.0, 1.0, 2500.0]  # centred on 50: half the range
    assert all(n.epsilon == pytest.approx(1 / 3) for n in plan.privacy.noised)  # basic composition, split equally
    clipped = np.clip(pd.concat(frames)["x"], 0, 100)
    avg, sd = result.rows[0]
    assert avg == pytest.approx(clipped.mean(), abs=0.1)  # 27,000 rows: the noise on the mean is ~0.01
    assert sd == pytest.approx(clipped.std(), abs=1.0)
    for facts, value in zip(result.noise[0], result.rows[0]):
        assert facts["ci_low"] <= value <= facts["ci_high"] and facts["noise_sd"] > 0


def test_a_crosstab_releases_noisy_cells_and_margins_that_add_up() -> None:
    rng = np.random.default_rng(3)
    frames = [pd.DataFrame({"a": rng.choice(["no", "yes"], 400), "b": rng.choice(["0", "1"], 400)})
              for _ in range(2)]
    result, plan = run_in_process(frames, "CROSSTAB a BY b", epsilon=1.0, bounds=[{}, {}])
    cells = np.array([row[1:3] for row in result.rows[:2]])
    both = pd.concat(frames, ignore_index=True)
    truth = pd.crosstab(both["a"], both["b"]).to_numpy()
    assert np.abs(cells - truth).max() <= 20  # scale 1: |noise| > 20 has probability ~1e-9 per cell
    assert [row[3] for row in result.rows[:2]] == list(cells.sum(axis=1))
    assert result.noise[0][1]["noise_sd"] == pytest.approx(laplace_sd(1.0))
    assert result.noise[0][3]["noise_sd"] == pytest.approx(laplace_sd(1.0) * math.sqrt(2))
    assert "OR (a=yes vs no, b=1)" in result.to_table()


def test_each_number_carries_its_noise_in_the_table_json_and_csv() -> None:
    frames = _frames(parties=2, per_group=2)
    result, plan = run_in_process(frames[:2], "SELECT COUNT(*) AS n, SUM(x)", epsilon=2.0, bounds=BOUNDS[:2])
    n = result.rows[0][0]
    half = laplace_halfwidth(plan.privacy.noised[0].scale)
    assert result.noise[0][0]["ci_low"] == n - half and result.noise[0][0]["ci_high"] == n + half
    csv = result.to_csv().splitlines()
    assert csv[0] == ("n,n_noise_sd,n_ci95_low,n_ci95_high,sum(x),sum(x)_noise_sd,sum(x)_ci95_low,"
                      "sum(x)_ci95_high,suppressed")
    assert any(line.startswith("# laplace scale of SUM(x),") for line in csv)
    body = json.loads(result.to_json())
    assert body["noise"][0][0]["ci_high"] == n + half and body["privacy"]["epsilon"] == 2.0
    table = result.to_table()
    assert "n_ci95_low" in table and "differential privacy: epsilon 2.000" in table


def test_the_95_percent_halfwidth_is_the_discrete_laplace_quantile() -> None:
    for t in (0.3, 1.0, 4.0, 250.0):
        q = math.exp(-1 / t)
        k = laplace_halfwidth(t)
        assert 2 * q ** (k + 1) / (1 + q) <= 0.05 < (2 * q**k / (1 + q) if k else 1.0)


def _source_by_rank(seeds: dict[int, bytes]):  # noqa: ANN202
    return lambda ctx: seeded_words(seeds[ctx.rank] + ctx.session.encode())


def test_no_single_partys_randomness_determines_the_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every party's words fixed the release repeats exactly; changing any one other party's words
    changes it, so what one party holds (its rows, its words, its view) does not fix the noise."""
    frames = _frames(parties=3, per_group=1)[:3]
    query = "SELECT g, COUNT(*) GROUP BY g"

    def run(seeds: dict[int, bytes]) -> np.ndarray:
        def words(ctx: PartyContext):  # noqa: ANN202
            return seeded_words(hashlib.sha256(seeds[ctx.rank]).digest())

        monkeypatch.setattr(dp_release, "word_source", words)
        result, _ = run_in_process(frames, query, epsilon=1.0, bounds=BOUNDS)
        return _released(result, "count").to_numpy()

    base = {0: b"a", 1: b"b", 2: b"c"}
    first = run(base)
    assert np.array_equal(first, run(base))  # the words alone decide the noise (not the dealer's material)
    for other in range(3):
        changed = run({**base, other: b"changed"})
        assert np.count_nonzero(changed != first) > GROUPS / 2, other


@pytest.mark.parametrize(("query", "words"), [
    ("SELECT AVG(y)", "needs bounds declared for 'y' at every site"),
    ("SELECT MEDIAN(y)", "QUANTILE(y) under disclosure = dp needs bounds declared for 'y'"),
    ("SELECT CORR(x, y)", "CORR is not available under disclosure = dp"),
    ("SELECT MAX(x)", "MAX is not available under disclosure = dp"),
    ("LINEAR x ~ y", "LINEAR is not available under disclosure = dp"),
    ("SURVIVAL x, y", "SURVIVAL is not available under disclosure = dp"),
    ("CROSSTAB x BY y STRATA s", "CROSSTAB ... STRATA is not available under disclosure = dp"),
])
def test_what_dp_cannot_release_is_refused_naming_the_column_or_mode(query: str, words: str) -> None:
    frames = [pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0], "s": ["a", "b"]})] * 2
    with pytest.raises(QueryError, match=re.escape(words)):
        run_in_process(frames, query, epsilon=1.0, bounds=[{"x": (0, 10)}, {"x": (0, 10), "y": (0, 9)}])


@pytest.mark.parametrize("epsilon", [0, -1.0, float("nan"), float("inf")])
def test_a_non_positive_epsilon_is_refused(epsilon: float) -> None:
    with pytest.raises(QueryError, match="epsilon must be a positive number"):
        plan_privacy(parse("SELECT COUNT(*)"), epsilon, {})


def test_explain_shows_epsilon_and_every_noise_scale_and_the_analyst_rebuilds_it() -> None:
    schema = Schema((("x", "float"), ("g", "category")))
    plan = dp.apply(plan_query("EXPLAIN SELECT g, AVG(x) GROUP BY g", schema, {"g": ("a", "b")}), 0.8,
                    {"x": (0.0, 50.0)})
    text = plan.text()
    assert "epsilon 0.8 for this query" in text and "split equally over 2 noised statistic(s)" in text
    assert "SUM(x - centre): sensitivity 25, epsilon 0.4, discrete Laplace noise of scale 62.5" in text
    assert "clamp x to [0, 50]" in text and "suppressed" not in text
    public = {"query": "EXPLAIN SELECT g, AVG(x) GROUP BY g", "schema": schema.to_json(), "domains": {"g": ["a", "b"]},
              "min_cell": 5, "privacy": plan.privacy.to_json()}
    assert rebuild_plan(public).text() == text


def test_having_is_refused_under_dp() -> None:
    import dataclasses

    from queries.expr import Literal

    stmt = dataclasses.replace(parse("SELECT g, COUNT(*) GROUP BY g"), having=Literal(True))
    with pytest.raises(QueryError, match="HAVING is not available under disclosure = dp"):
        plan_privacy(stmt, 1.0, {})


def test_a_median_and_a_quantile_come_from_one_noisy_histogram() -> None:
    rng = np.random.default_rng(7)
    frames = [pd.DataFrame({"x": rng.normal(27.0, 5.0, 3000)}) for _ in range(3)]
    result, plan = run_in_process(frames, "SELECT MEDIAN(x), QUANTILE(x, 0.9)", epsilon=1.0,
                                  bounds=[{"x": (10.0, 60.0)}] * 3)
    (hist,) = plan.privacy.noised  # one histogram serves both, at the whole epsilon
    assert hist.stat == ("h", "x") and hist.bins == 128 and hist.epsilon == 1.0
    both = pd.concat(frames)["x"]
    width = 50 / 128
    for value, facts, q in zip(result.rows[0], result.noise[0], (0.5, 0.9)):
        assert value == pytest.approx(both.quantile(q), abs=width + 0.3)  # the noise moves it ~0.05 (sd)
        assert facts["ci_low"] < value < facts["ci_high"] and facts["ci_high"] - facts["ci_low"] > 2 * width


def test_a_histogram_quantile_reads_the_cumulative_counts() -> None:
    from queries.dp_finish import histogram_quantile

    hist = np.array([0.0, 10.0, 10.0, 0.0])  # bins of width 1 over [0, 4]
    assert histogram_quantile(hist, 0.5, 0.0, 4.0) == pytest.approx(2.0)
    assert histogram_quantile(hist, 0.25, 0.0, 4.0) == pytest.approx(1.5)
    assert histogram_quantile(np.array([3.0, -1.0, 2.0]), 0.5, 0.0, 3.0) == pytest.approx(2 / 3)  # noise as it is
    assert np.isnan(histogram_quantile(np.array([3.0, -4.0, 1.0]), 0.5, 0.0, 3.0))  # no rows left: NULL


def test_the_differencing_pair_no_longer_reveals_the_patient() -> None:
    """COUNT(*) over everyone with a bmi minus COUNT(*) WHERE bmi < 44 is 1, and the complement SUMs'
    difference is that patient's sbp, under the threshold rule; under dp each difference carries two
    independent noises of the declared scale (one patient with bmi 45 in each of the GROUPS groups: 300
    attempts in one run)."""
    rng = np.random.default_rng(7)
    frames = []
    for party in range(3):
        g = np.repeat([f"g{i:03d}" for i in range(GROUPS)], 4)
        bmi = rng.uniform(18.0, 40.0, g.size).round(1)
        if party == 0:
            bmi[::4] = 45.0  # the patient to single out, one per group
        frames.append(pd.DataFrame({"g": g, "bmi": bmi, "sbp": rng.integers(100, 180, g.size).astype(float)}))
    patient = frames[0].iloc[::4].set_index("g")["sbp"]
    bounds = [{"bmi": (10.0, 60.0), "sbp": (80.0, 250.0)}] * 3

    def released(query: str, column: str) -> tuple[pd.Series, float]:
        result, plan = run_in_process(frames, query, epsilon=1.0, bounds=bounds)
        (noised,) = plan.privacy.noised
        return _released(result, column), laplace_sd(noised.scale) / (2**DP_FRAC if noised.stat[0] == "s" else 1)

    everyone, sd = released("SELECT g, COUNT(*) WHERE bmi IS NOT NULL GROUP BY g", "count")
    below, _ = released("SELECT g, COUNT(*) WHERE bmi < 44 GROUP BY g", "count")
    noise = (everyone - below - 1).to_numpy()
    assert np.mean(noise == 0) < 0.5  # the pair's difference is 1 only by chance
    _dispersion_ok(noise, math.sqrt(2) * sd)
    total, sd = released("SELECT g, SUM(sbp) WHERE bmi IS NOT NULL GROUP BY g", "sum(sbp)")
    rest, _ = released("SELECT g, SUM(sbp) WHERE bmi < 44 GROUP BY g", "sum(sbp)")
    noise = (total - rest - patient).to_numpy()
    assert sd >= 150 and np.mean(np.abs(noise) < 1) < 0.05  # the sbp is buried in noise of sd ~ 350
    _dispersion_ok(noise, math.sqrt(2) * sd)
