"""The benchmark command's queries and scale suites and its cost model, on quick sizes.

These check that every path runs and that the numbers hang together (EXPLAIN's exact
predictions equal the counters, MPC cost is flat in rows, bytes grow with parties); they
measure nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.costmodel import Calibration, CostMismatch, check_prediction, predict_seconds
from benchmarks.framework import BenchOptions, Recorder


def test_check_prediction_names_every_differing_counter() -> None:
    same = {"rounds": 10, "bytes_sent": 800, "messages_sent": 20}
    assert check_prediction("q", same, dict(same), exact=True) == {k: [v, v] for k, v in same.items()}
    with pytest.raises(CostMismatch, match="rounds predicted 10 measured 11.*bytes_sent predicted 800 measured 808"):
        check_prediction("q", same, {**same, "rounds": 11, "bytes_sent": 808}, exact=True)
    assert check_prediction("q", same, {**same, "rounds": 11}, exact=False)["rounds"] == [10, 11]


def test_predicted_seconds_add_bytes_rounds_and_dealer_round_trips() -> None:
    calib = Calibration(bandwidth_bytes_per_s=1e6, round_seconds=0.01, rtt_s=0.08)
    cost = {"bytes_sent": 2_000_000, "rounds": 10, "dealer_requests": 5}
    assert predict_seconds(cost, calib) == pytest.approx(2.0 + 0.1 + 0.4)


def _run(suite: str, tmp_path: Path, **kw: object) -> list:
    import importlib

    options = BenchOptions(suites=(suite,), quick=True, out=tmp_path, doc=None, **kw)  # type: ignore[arg-type]
    recorder = Recorder(options, write=lambda line: None)
    for task in importlib.import_module(f"benchmarks.suite_{suite}").tasks(options):
        recorder.add(task.run())
    assert recorder.json_path.exists() and recorder.csv_path.exists()
    return recorder.rows


@pytest.mark.network
def test_queries_suite_checks_explain_and_models_seconds(tmp_path: Path) -> None:
    rows = _run("queries", tmp_path)
    pooled = {r.case: r for r in rows if r.system == "pooled"}
    assert set(pooled) == {"cohort count", "grouped stats", "logistic"}
    for case in ("cohort count", "grouped stats"):
        row = pooled[case]
        assert row.extra["prediction_check"] == "exact"
        assert all(p == m for p, m in row.extra["check"].values())
        assert row.rounds == row.extra["predicted"]["rounds"] and row.extra["predicted_seconds"] > 0
    for row in pooled.values():  # every round sends one message to each of the 2 peers
        assert row.messages_per_party == 2 * row.rounds
    assert pooled["logistic"].extra["iterations"] >= 3
    assert {r.system for r in rows} >= {"pandas"}


@pytest.mark.network
def test_scale_suite_mpc_cost_is_flat_in_rows_and_bytes_grow_with_parties(tmp_path: Path) -> None:
    rows = _run("scale", tmp_path)
    by_rows = sorted((r for r in rows if r.extra["axis"] == "rows"), key=lambda r: r.size)
    assert len(by_rows) == 2 and by_rows[0].rounds == by_rows[1].rounds
    assert by_rows[0].bytes_per_party == by_rows[1].bytes_per_party
    mul = sorted((r for r in rows if r.extra["axis"] == "parties" and r.case.startswith("multiply")),
                 key=lambda r: r.parties)
    assert [r.parties for r in mul] == [2, 3] and mul[1].bytes_per_party == 2 * mul[0].bytes_per_party
    assert [(r.rounds, r.messages_per_party) for r in mul] == [(2, 2), (2, 4)]  # one message per peer and round
    grouped = sorted((r for r in rows if r.extra["axis"] == "parties" and r.case == "grouped stats"),
                     key=lambda r: r.parties)
    assert [r.parties for r in grouped] == [2, 3] and grouped[0].rounds == grouped[1].rounds  # flat in parties
    assert [r.messages_per_party for r in grouped] == [grouped[0].rounds, 2 * grouped[0].rounds]
    (logistic,) = [r for r in rows if r.extra["axis"] == "features"]
    assert logistic.error is not None and logistic.error < 1e-3


@pytest.mark.network
def test_pushdown_suite_parquet_sites_against_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.suite_pushdown import PG_ENV

    for name in PG_ENV:
        monkeypatch.delenv(name, raising=False)
    rows = _run("pushdown", tmp_path)
    (pooled,) = [r for r in rows if r.case == "parquet grouped stats" and r.system == "pooled"]
    (duck,) = [r for r in rows if r.case == "parquet grouped stats" and r.system == "duckdb"]
    assert pooled.size == duck.size == 10_000 and pooled.parties == 3
    assert pooled.rounds and pooled.messages_per_party == 2 * pooled.rounds
    assert pooled.error is not None and pooled.error < 1e-9  # against DuckDB on the pooled files
    (pg,) = [r for r in rows if r.case.startswith("postgresql")]
    assert pg.extra["failed"] and "POOLED_TEST_PG" in pg.extra["not_measured"]
