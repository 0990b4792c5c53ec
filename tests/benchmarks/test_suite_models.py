"""The `models` suite and the WAN logistic row: counters from a quick run, tables and targets from rows.

The network test runs the suite in `--quick` mode over real processes (one 3-party
consortium, RTT 0) and checks the counters of each model's row (rounds and EXPLAIN's prediction,
bytes, dealer traffic, iterations), never its seconds. The report tests write
hand-made rows into a temporary doc: the models table, the COX target against LOGISTIC,
and the regression suite's fit at 50 ms RTT against its 35 s target.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import report_plots, suite_models, suite_regression
from benchmarks.framework import BenchOptions, Row
from benchmarks.report_docs import merge, rows_of, write_docs
from benchmarks.suite_models import MODELS, cohort_with_follow_up


def _options(tmp_path: Path, wan: tuple[float, ...] = (0.0,)) -> BenchOptions:
    return BenchOptions(suites=("models",), parties=(3,), wan_rtt_ms=wan, repeat=1, quick=True, out=tmp_path,
                        doc=None)


def test_a_model_is_one_row_and_each_gets_a_task_per_rtt(tmp_path: Path) -> None:
    assert [m.name for m in MODELS] == ["POISSON", "LOGISTIC", "COX"]
    tasks = suite_models.tasks(_options(tmp_path, (0.0, 50.0)), models=MODELS)
    labels = [t.label for t in tasks]
    assert labels == [f"models {m} 3p rtt {rtt}" for rtt in ("0", "50") for m in ("POISSON", "LOGISTIC", "COX")]
    table = cohort_with_follow_up(50, 1)
    assert {"age", "sex", "smoking", "bmi", "months", "died"} <= set(table.columns) and len(table) == 50


@pytest.mark.network
def test_models_quick_counts_rounds_bytes_and_dealer_material(tmp_path: Path) -> None:
    rows = [row for task in suite_models.tasks(_options(tmp_path)) for row in task.run()]
    assert [r.case for r in rows] == ["POISSON", "LOGISTIC", "COX"]
    for r in rows:
        assert (r.suite, r.system, r.parties, r.size, r.rtt_ms, r.runs) == ("models", "pooled", 3, 300, 0.0, 1)
        assert r.rounds is not None and r.bytes_per_party is not None and r.dealer_bytes is not None
        assert r.rounds > 100 and r.bytes_per_party > 0 and r.dealer_bytes > 0
        assert r.messages_per_party == 2 * r.rounds  # one message to each of the 2 peers per round
        assert r.extra["iterations"] and r.extra["dealer_requests"] > 0
        assert r.extra["converged"]  # QUICK_MAXITER is enough on 300 rows (a fit stopped short is refused)
        if r.case in suite_models.QUICK_MAXITER:
            assert r.extra["query"].endswith(f"MAXITER {suite_models.QUICK_MAXITER[r.case]}")
        assert r.extra["dealer_asked_on_demand"] is not None
        assert r.extra["predicted"]["rounds"] > 100  # EXPLAIN's, beside the measured ones in the table


def _rows() -> list[Row]:
    def model(case: str, rtt: float, seconds: float) -> Row:
        return Row("models", case, "pooled", 3, size=10_000, rtt_ms=rtt, seconds=seconds, spread=0.0, runs=1,
                   bytes_per_party=5_000_000, messages_per_party=1_800, rounds=900, dealer_bytes=9_000_000,
                   extra={"end_to_end_seconds": seconds + 1, "iterations": 6, "predicted": {"rounds": 900},
                          "dealer_requests": 1_000, "dealer_asked_on_demand": 3})

    wan = Row("regression", "breast_cancer LOGISTIC", "pooled", 3, size=10, rtt_ms=50.0, seconds=20.0, spread=0.0,
              runs=1, rounds=464, extra={"features": 10, "iterations": 9, "end_to_end_seconds": 36.5})
    near = Row("regression", "breast_cancer LOGISTIC", "pooled", 3, size=10, seconds=2.0, spread=0.1, runs=3,
               rounds=464, extra={"features": 10, "iterations": 9, "end_to_end_seconds": 2.2})
    return [model("POISSON", 0, 40.0), model("LOGISTIC", 0, 10.0), model("COX", 0, 25.0), model("LOGISTIC", 50, 20.0),
            model("COX", 50, 70.0), near, wan]


def test_models_table_and_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_plots, "available", lambda: False)
    doc = tmp_path / "benchmarks.md"
    report = {"command": "python -m benchmarks --suite models --suite regression --wan 0,50", "rows": _rows(),
              "options": {"parties": [3], "wan_rtt_ms": [0.0, 50.0], "repeat": 1}}
    write_docs(report, doc, tmp_path / "out")
    text = doc.read_text()
    assert "### Models: 3 × 10,000 rows, 6 parameters" in text
    poisson = next(ln for ln in text.splitlines() if ln.startswith("| POISSON |"))
    assert "| 900 (900) |" in poisson and "| 1,000 (3) |" in poisson and "| 41.0 |" in poisson
    cox = [ln for ln in text.splitlines() if ln.startswith("  - COX, 3 parties")]
    assert "RTT 0 ms: 2.50× LOGISTIC's 10.0 s: met" in cox[0]
    assert "RTT 50 ms: 3.50× LOGISTIC's 20.0 s: missed by 10 s" in cox[1]
    assert "- COX within 3× the LOGISTIC fit of the same size (3 × 10,000 rows, 6 parameters): **missed**" in text
    far = next(ln for ln in text.splitlines() if ln.startswith("| breast_cancer LOGISTIC | 3 | 10 | 50 |"))
    assert "| 36.5 |" in far
    assert "RTT 50 ms: missed by 1.5 s" in text  # end to end, against the 35 s budget
    regression = [ln for ln in text.splitlines() if ln.startswith("| breast_cancer LOGISTIC | 3 | 10 | 2.000")]
    assert len(regression) == 1  # the RTT-0 table keeps the RTT-0 fit only


def test_a_run_at_another_rtt_adds_its_rows_and_keeps_the_others() -> None:
    rows = _rows()
    near = [r for r in rows if r.suite == "regression" and not r.rtt_ms]
    far = [r for r in rows if r.suite == "regression" and r.rtt_ms]
    peer = Row("regression", "breast_cancer LOGISTIC", "crypten", 3, size=10, seconds=5.0, extra={"api": "tensor"})
    merged = merge({"rows": [*near, peer]}, [{"rows": far, "command": "python -m benchmarks --suite regression"}])
    assert rows_of(merged) == [*near, peer, *far]
    again = merge(merged, [{"rows": [near[0]]}])  # the same suite and RTT: replaced
    assert rows_of(again) == [*far, near[0]]


def test_the_regression_suite_at_rtts_above_0_only_runs_the_wan_fit(tmp_path: Path) -> None:
    options = BenchOptions(suites=("regression",), parties=(3,), wan_rtt_ms=(50.0,), out=tmp_path, doc=None)
    assert [t.label for t in suite_regression.tasks(options)] == ["regression 3p 10f pooled rtt 50"]
