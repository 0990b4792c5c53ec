"""MEDIAN/QUANTILE by the secret search: pandas' answers, the round count, and a transcript
that does not depend on the data."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mpc.context import PartyContext
from protocols.opening import open_arith
from protocols.sharing import share_inputs
from queries import executor
from queries.engine import local_domains, plan_query, run_in_process, run_party
from queries.errors import QueryError
from queries.plan import SEARCH_BITS
from queries.table import check_schemas, normalize_frame, schema_of
from tests.support import opened_again, openings, transcripts

# Tests that share one run land on one pytest-xdist worker, so the run is made once.
SHARED_EDGES = pytest.mark.xdist_group("test_quantiles:edges")


def _sites(n: int, seed: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for size in rng.integers(8, 25, n):
        magnitude = 10.0 ** rng.integers(-5, 12, size)  # from 1e-5 to 1e11
        x = rng.normal(0, 1, size) * magnitude
        out.append(
            normalize_frame(
                pd.DataFrame(
                    {
                        "g": rng.choice(["a", "b", "c"], size, p=[0.5, 0.45, 0.05]),  # c: 0, 1 or a few rows
                        "i": rng.integers(-3, 4, size),  # many ties, negative values
                        "x": np.where(rng.random(size) < 0.2, np.nan, x),  # NULLs
                    }
                )
            )
        )
    return out


@pytest.mark.parametrize("n", [2, 5])  # two parties and a many-party case; both draw a group c of two rows
def test_order_statistics_match_pandas(n: int) -> None:
    sites = _sites(n, seed=n)
    query = ("SELECT MEDIAN(i), QUANTILE(i, 0), QUANTILE(i, 1), QUANTILE(i, 0.1), QUANTILE(x, 0.37), MEDIAN(x), "
             "QUANTILE(x, 1), MIN(x), MAX(i) GROUP BY g")
    result, _ = run_in_process(sites, query, min_cell=1)
    pooled = pd.concat(sites, ignore_index=True)
    for key, *got in result.rows:
        part = pooled[pooled.g == key]
        i, x = part.i.astype(float), part.x.astype(float).dropna()
        want = [i.median(), i.min(), i.max(), i.quantile(0.1), x.quantile(0.37), x.median(), x.max(), x.min(), i.max()]
        # with k = 1 a quantile needs one value at or below it and one at or above: q n >= 1, (1 - q) n >= 1
        qs = [0.5, 0, 1, 0.1, 0.37, 0.5, 1, 0, 1]
        counts = [len(i)] * 4 + [len(x)] * 4 + [len(i)]
        for j, (q, m) in enumerate(zip(qs, counts)):
            if (min(q, 1 - q) * m < 1) if 0 < q < 1 else m < 1:
                want[j] = np.nan
        for g_val, w in zip(got, want):
            if np.isnan(w):
                assert g_val is None, (key, got, want)
            else:
                assert g_val == pytest.approx(float(w), rel=1e-10, abs=2e-12), (key, got, want)


def _bound(values: pd.Series, q: float) -> float:
    """The accuracy promised: 2^-40 of the gap between the two order statistics, plus a few units."""
    x = np.sort(values.to_numpy(dtype=float))
    lo = int(np.floor((len(x) - 1) * q))
    return 2.0**-40 * (abs(x[min(lo + 1, len(x) - 1)] - x[lo]) + 4)


def test_extreme_magnitudes_ties_and_negative_zero() -> None:
    big = 2.0**45 - 1
    a = normalize_frame(pd.DataFrame({"x": [big, -big, 1e-14, -0.0, 3e13, 3e13], "i": [2**45 - 1, -(2**45) + 1] * 3}))
    b = normalize_frame(pd.DataFrame({"x": [-3e13, 0.0, 2.5e-13, big, np.nan], "i": [0, 0, 7, -7, 1]}))
    qs = (0, 0.2, 0.5, 0.77, 1)
    result, _ = run_in_process([a, b], "SELECT " + ", ".join(f"QUANTILE(x, {q}), QUANTILE(i, {q})" for q in qs),
                               min_cell=1)
    both = pd.concat([a, b])
    x, i = both.x.astype(float).dropna(), both.i.astype(float)
    want = [(col.quantile(q), _bound(col, q)) for q in qs for col in (x, i)]
    for got, (w, bound) in zip(result.rows[0], want):
        assert abs(got - w) <= bound, (result.rows[0], want)


EDGES = {  # by the kind of key each column gets: one query per kind decodes as one query per column would
    "integer": [[0, 0, 0, 0], [256, -256, 0, 3], [1, -1, 0, 1], [-1, -1, -1, -1]],
    "fixed": [[0.5, -0.25, 1e-13, -3e-13], [2.0**18, -(2.0**18), 0.1, -0.1], [-1e-20, 0.0, 1e-20, 0.0]],
    "float": [[2.0**18 + 1, -7.5, 3.25, 3.25]],
}
EDGE_QS = (0, 0.3, 0.5, 1)


@functools.cache
def _edge_quantiles(kind: str) -> list[list[float]]:
    """EDGE_QS of every column of EDGES[kind], the first two values at one party and the rest at the
    other, from one query: per column, its quantiles."""
    columns = EDGES[kind]
    a, b = (normalize_frame(pd.DataFrame({f"i{k}": v[part] for k, v in enumerate(columns)}))
            for part in (slice(None, 2), slice(2, None)))
    query = "SELECT " + ", ".join(f"QUANTILE(i{k}, {q})" for k in range(len(columns)) for q in EDGE_QS)
    result, _ = run_in_process([a, b], query, min_cell=1)
    row, n = result.rows[0], len(EDGE_QS)
    return [row[k * n : (k + 1) * n] for k in range(len(columns))]


@SHARED_EDGES
@pytest.mark.parametrize(("kind", "index"), [(kind, k) for kind, cases in EDGES.items() for k in range(len(cases))])
def test_keys_at_the_edges_of_their_opened_scale(kind: str, index: int) -> None:
    """Integer keys x + 2^e of e + 2 bits and fixed-point keys floor(x 2^40) + 2^(e + 40) of e + 42
    bits (e <= 18, else float keys): |x| = 2^e itself, only zeros, all negative, tiny values."""
    values = EDGES[kind][index]
    pooled = pd.Series(values, dtype=float)
    for got, q in zip(_edge_quantiles(kind)[index], EDGE_QS):
        assert abs(got - pooled.quantile(q)) <= _bound(pooled, q), (values, q, got)


def test_integer_fixed_point_and_float_keys_in_one_query() -> None:
    """The three kinds of keys decoded side by side (the float lookup converts the others' bits too)."""
    rng = np.random.default_rng(5)
    frames = [normalize_frame(pd.DataFrame({"i": rng.integers(-300, 300, n), "s": rng.normal(0, 1e3, n),
                                            "x": rng.normal(0, 1e9, n)})) for n in (30, 17)]
    qs = (0.1, 0.5, 0.9)
    query = "SELECT " + ", ".join(f"QUANTILE({c}, {q})" for q in qs for c in "isx")
    result, _ = run_in_process(frames, query, min_cell=1)
    pooled = pd.concat(frames)
    want = [(pooled[c].astype(float).quantile(q), _bound(pooled[c].astype(float), q)) for q in qs for c in "isx"]
    for got, (w, bound) in zip(result.rows[0], want):
        assert abs(got - w) <= bound, (result.rows[0], want)


def test_a_value_beyond_the_supported_range_refuses_the_query() -> None:
    a = normalize_frame(pd.DataFrame({"x": [1.0, 2.0, 1.5e14]}))
    b = normalize_frame(pd.DataFrame({"x": [3.0, 4.0]}))
    with pytest.raises(QueryError, match=r"beyond the range MEDIAN and QUANTILE support") as err:
        run_in_process([a, b], "SELECT COUNT(*), MEDIAN(x)", min_cell=1)
    assert "1.5e+14" not in str(err.value) and "150000000000000" not in str(err.value)
    with pytest.raises(QueryError, match=r"beyond the range MEDIAN and QUANTILE support"):
        run_in_process([a, b], "SELECT AVG(x), MEDIAN(x)", min_cell=1)  # a column scaled for AVG too


def _quantile_rounds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record, per party, the rounds the quantile stage takes."""
    seen: list[int] = []
    inner = executor.quantiles

    def counted(ctx: PartyContext, *args: Any) -> Any:
        before = ctx.stats.rounds
        out = inner(ctx, *args)
        seen.append(ctx.stats.rounds - before)
        return out

    monkeypatch.setattr(executor, "quantiles", counted)
    return seen


def test_round_count_and_a_hidden_group_gets_no_value(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _quantile_rounds(monkeypatch)
    a = normalize_frame(pd.DataFrame({"g": ["a"] * 6 + ["b"] * 2, "v": [5, 1, 4, 1, 5, 9, 2, 6], "x": [0.5] * 8}))
    b = normalize_frame(pd.DataFrame({"g": ["a"] * 3 + ["b"], "v": [3, 5, 8, 9], "x": [1.5] * 4}))
    result, _ = run_in_process([a, b], "SELECT COUNT(*), MEDIAN(v) GROUP BY g", min_cell=4)
    assert result.rows == [["a", 9, 5.0], ["b", None, None]] and result.suppressed == [False, True]
    integer_steps = -(-(4 + 2) // SEARCH_BITS)  # |v| <= 2^4: 6-bit keys v + 2^4
    # agree on slot counts, the search (5 rounds a step, 4 for the last), integer keys to values,
    # interpolation; the ranks' bit decomposition runs beside the disclosure flags, and v's scale is
    # opened before them (`queries.scaling.exponents`): no round here
    assert seen == [1 + (5 * integer_steps - 1) + 1 + 1] * 2
    seen.clear()
    result, _ = run_in_process([a, b], "SELECT MEDIAN(x), QUANTILE(v, 0.3) GROUP BY g", min_cell=1)
    assert result.rows == [["a", 0.5, pytest.approx(3.4)], ["b", 0.5, None]]
    fixed_steps = -(-(1 + 42) // SEARCH_BITS)  # |x| <= 2^1: fixed-point keys floor(x 2^40) + 2^41
    # both searches run side by side, the longer decides; keys to values 1; interpolation and truncation
    assert seen == [1 + (5 * fixed_steps - 1) + 1 + 2] * 2
    seen.clear()
    big = [frame.assign(x=frame.x * 2.0**20) for frame in (a, b)]  # beyond 2^18: floating-point keys
    result, _ = run_in_process(big, "SELECT MEDIAN(x), QUANTILE(v, 0.3) GROUP BY g", min_cell=1)
    assert result.rows == [["a", 2.0**19, pytest.approx(3.4)], ["b", 2.0**19, None]]
    float_steps = -(-60 // SEARCH_BITS)
    # float decoding: lookup + mantissa conversion, products, truncation; then interpolation, truncation
    assert seen == [1 + (5 * float_steps - 1) + 3 + 2] * 2


def _frames(seed: int, skewed: bool) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for size in (30, 12):  # two parties, 32 and 16 slots
        g = np.where(rng.random(size) < (0.95 if skewed else 0.5), "a", "b")
        g[:2] = ["a", "b"]
        sbp = rng.integers(90, 200, size) + (50 if skewed else 0)  # the same scale: max |sbp| <= 2^8
        x = np.where(rng.random(size) < (0.6 if skewed else 0.05), np.nan, rng.normal(200, 40, size))
        out.append(normalize_frame(pd.DataFrame({"sex": g, "sbp": sbp, "x": x})))
    return out


def test_the_parties_transcript_does_not_depend_on_the_data() -> None:
    """Same table sizes and column scales (the opened powers of two above each column's largest |x|),
    different values, groups and NULLs: the same messages, of the same sizes, in the same order; and
    every opened value is masked afresh in every run, but for the public slot counts and scales."""
    query = "SELECT QUANTILE(x, 0.25), MEDIAN(sbp), MEDIAN(x) GROUP BY sex"
    data = {name: _frames(seed, skewed) for name, seed, skewed in (("A", 1, False), ("B", 2, True))}
    schema = check_schemas([schema_of(f) for f in data["A"]])
    plan = plan_query(query, schema, local_domains(data["A"], ["sex"]), min_cell=1)
    assert plan == plan_query(query, schema, local_domains(data["B"], ["sex"]), min_cell=1)

    def program(ctx: PartyContext, frame: pd.DataFrame) -> Any:
        return run_party(ctx, plan, frame)

    a1, a2, b1 = (transcripts(data[name], program) for name in ("A", "A", "B"))
    assert [[(t, d, len(p)) for t, d, p in log] for log in a1] == [[(t, d, len(p)) for t, d, p in log] for log in b1]
    assert len(openings(a1)) > 100
    assert opened_again(a1, a2, public=("quantile-slots", "scales")) == []


def test_the_transcript_check_catches_an_unmasked_opening() -> None:
    """The check above can fail: a party opening a data-dependent sum shows up as repeated bytes."""
    frames = _frames(1, False)

    def leaky(ctx: PartyContext, frame: pd.DataFrame) -> Any:
        (count,) = share_inputs(ctx, np.array([len(frame)], dtype=np.uint64), ctx.fixed.ring, 0)[:1]
        return open_arith(ctx, [count], "leak")

    assert opened_again(transcripts(frames, leaky), transcripts(frames, leaky), public=()) == ["2/leak"]
