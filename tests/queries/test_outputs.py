"""Every output format (table, CSV, JSON, pandas) of a SELECT with a withheld value, a CROSSTAB
(released and suppressed) and a model, and EXPLAIN's text: nothing withheld is shown as a
number, integers stay integers, and the statistics are in each format."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from queries.engine import plan_query, predict_cost, run_in_process
from queries.result import Result, explain_result
from queries.synth import cohort, split
from queries.table import check_schemas, normalize_frame, schema_of


def _two(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [normalize_frame(frame.iloc[p::2].reset_index(drop=True)) for p in (0, 1)]


@pytest.fixture(scope="module")
def select() -> Result:
    """Group b has 13 rows but only 3 values of x: AVG(x) there is withheld; its counts are not."""
    frame = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 13, "x": [1.5] * 10 + [2.0] * 3 + [None] * 10,
                          "k": [3] * 10 + [4] * 3 + [5] * 10})
    return run_in_process(_two(frame), "SELECT COUNT(*), SUM(k), AVG(x) GROUP BY g", min_cell=5)[0]


@pytest.fixture(scope="module")
def crosstab() -> Result:
    frame = pd.DataFrame({"smoking": ["no"] * 80 + ["yes"] * 40, "outcome": [0] * 60 + [1] * 20 + [0] * 10 + [1] * 30})
    return run_in_process(_two(frame), "CROSSTAB smoking BY outcome")[0]


@pytest.fixture(scope="module")
def hidden_crosstab() -> Result:
    """One interior cell of 2: every cell suppressed; the margins (62, 40 | 70, 32) are released."""
    frame = pd.DataFrame({"smoking": ["no"] * 62 + ["yes"] * 40, "outcome": [0] * 60 + [1] * 2 + [0] * 10 + [1] * 30})
    return run_in_process(_two(frame), "CROSSTAB smoking BY outcome")[0]


@pytest.fixture(scope="module")
def model() -> Result:
    return run_in_process(split(cohort(400, seed=5), 2, seed=5), "LINEAR sbp ~ age + bmi")[0]


def _csv(result: Result) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table (comment lines skipped) and the statistics (the comment lines as CSV)."""
    text = result.to_csv()
    table = pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False, na_values=[""])
    comments = "\n".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    return table, pd.read_csv(io.StringIO(comments), keep_default_na=False) if comments else pd.DataFrame()


def test_select_with_a_withheld_value_in_every_format(select: Result) -> None:
    assert select.rows[0][:3] == ["a", 10, 30] and select.rows[0][3] == pytest.approx(1.5)
    assert select.rows[1] == ["b", 13, 62, None]
    assert select.cell_suppressed == [[False] * 4, [False, False, False, True]]
    text = select.to_table()
    assert text.splitlines()[2].split() == ["b", "13", "62", "suppressed"]
    assert "(1 value(s) suppressed" in text
    lines = select.to_csv().splitlines()
    assert lines[0] == "g,count,sum(k),avg(x),suppressed" and lines[2] == "b,13,62,,avg(x)"
    assert lines[1].startswith("a,10,30,") and float(lines[1].split(",")[3]) == select.rows[0][3]  # full precision
    body = json.loads(select.to_json())
    assert body["rows"][1] == ["b", 13, 62, None] and body["suppressed_cells"][1] == [False, False, False, True]
    frame = select.to_pandas()
    assert str(frame["count"].dtype) == "Int64" and frame["count"].tolist() == [10, 13]
    assert frame.attrs["suppressed"] == [False, True] and frame.attrs["suppressed_cells"] == select.cell_suppressed
    mask = select.suppressed_mask()
    assert list(mask.columns) == list(frame.columns) and mask.to_numpy().sum() == 1 and bool(mask.loc[1, "avg(x)"])


def test_crosstab_in_every_format(crosstab: Result) -> None:
    text = crosstab.to_table()
    assert "Pearson chi-square, no continuity correction: chi2 = 27.43, df = 1, p = 1.630e-07" in text
    assert "Fisher's exact test (two-sided): p = 2.002e-07" in text
    assert "OR (smoking=yes vs no, outcome=1): 9.000 (95% CI 3.746 to 21.62, Woolf)" in text
    assert "RD (smoking=yes vs no, outcome=1): 0.5000 (95% CI 0.3357 to 0.6643, Wald)" in text
    assert "{" not in text and "27.428571" not in text
    table, statistics = _csv(crosstab)
    assert table.iloc[:, :4].to_numpy().tolist() == [["no", 60, 20, 80], ["yes", 10, 30, 40], ["total", 70, 50, 120]]
    assert table["suppressed"].isna().all()
    assert list(statistics.columns) == ["statistic", "value", "ci_low", "ci_high"]
    found = statistics.set_index("statistic")
    assert float(found.loc["chi2", "value"]) == pytest.approx(crosstab.extra["chi2"], rel=1e-15)
    assert found.loc["chi2_test", "value"] == "Pearson chi-square, no continuity correction"
    assert float(found.loc["RR (smoking=yes vs no, outcome=1)", "ci_low"]) == pytest.approx(1.9719227228450853)
    body = json.loads(crosstab.to_json())
    assert body["rows"][0] == ["no", 60, 20, 80] and body["measures"][1]["label"].startswith("RR (smoking=yes")
    frame = crosstab.to_pandas()
    assert frame.attrs["chi2"] == crosstab.extra["chi2"] and frame.attrs["suppressed"] == [False] * 3


def test_a_suppressed_crosstab_keeps_its_flags_and_integers_in_every_format(hidden_crosstab: Result) -> None:
    result = hidden_crosstab
    assert result.rows == [["no", None, None, 62], ["yes", None, None, 40], ["total", 70, 32, 102]]
    text = result.to_table()
    assert text.splitlines()[1].split() == ["no", "suppressed", "suppressed", "62"]
    assert "suppressed: cells" in text and "statistics: withheld" in text
    csv_text = result.to_csv()
    assert ".0" not in csv_text
    assert csv_text.splitlines()[:4] == ["smoking,0,1,total,suppressed", "no,,,62,0;1", "yes,,,40,0;1",
                                         "total,70,32,102,"]
    assert "# statistics,withheld: an interior cell is below the minimum cell size,," in csv_text.splitlines()
    body = json.loads(result.to_json())
    assert body["suppressed_cells"][0] == [False, True, True, False] and body["suppressed_parts"] == ["cells"]
    frame = result.to_pandas()
    assert str(frame["total"].dtype) == "Int64" and frame["0"].isna().tolist() == [True, True, False]
    assert frame.attrs["suppressed_cells"][1] == [False, True, True, False]
    assert result.suppressed_mask()["1"].tolist() == [True, True, False]


def test_a_model_in_every_format(model: Result) -> None:
    text = model.to_table()
    head, rule = text.split("\n=", 1)[0].splitlines(), "=" * len(text.splitlines()[-1])
    assert text.splitlines()[-1] == rule and rule in text.splitlines()[: len(head) + 1]
    info = model.extra["model"]
    assert info["outcome"] == "sbp" and info["method"] == "OLS (least squares)"
    assert head[0].startswith("Dep. Variable:") and "sbp" in head[0] and "Method:" in head[0]
    assert any(line.startswith("No. Observations:") and f" {info['n']}" in line for line in head)
    assert any(f"R-squared: {info['r_squared']:#.4g}".replace(" ", "") in line.replace(" ", "") for line in head)
    assert "{" not in text and "model:" not in text
    age = next(line for line in text.splitlines() if line.split()[:1] == ["age"])
    assert age.split()[1] == f"{model.rows[1][1]:#.4g}"
    table, statistics = _csv(model)
    assert table.columns[-1] == "suppressed" and table["coef"].tolist() == pytest.approx([r[1] for r in model.rows],
                                                                                         rel=1e-15)
    assert statistics.set_index("statistic").loc["n", "value"] == str(info["n"])
    body = json.loads(model.to_json())
    assert body["model"]["n"] == info["n"] and body["columns"][0] == "term"
    assert model.to_pandas().attrs["model"]["r_squared"] == info["r_squared"]


def test_a_logistic_summary_header_renders_the_keys_present_and_tolerates_new_ones() -> None:
    model = {"outcome": "outcome", "method": "Logit (MLE, Newton-Raphson)", "n": 866, "iterations": 5,
             "converged": True, "log_likelihood": -425.30735857661284, "pseudo_r_squared": 0.0712345}
    result = Result(["term", "coef"], [["Intercept", -6.568155589301568]], [False], {"model": model}, kind="model")
    text = result.to_table()
    lines = text.splitlines()
    assert lines[0].split() == ["Dep.", "Variable:", "outcome", "Method:", "Logit", "(MLE,", "Newton-Raphson)"]
    assert lines[1].split() == ["No.", "Observations:", "866", "Iterations:", "5"]
    assert lines[2].split() == ["Converged:", "True", "Log-Likelihood:", "-425.3"]
    assert lines[3].split() == ["pseudo_r_squared:", "0.07123"]
    assert lines[4] == lines[-1] == "=" * len(lines[4]) and lines[6].split() == ["Intercept", "-6.568"]
    refused = Result(["refused"], [["fewer than 5 complete cases"]], [True], {"model": {"refused": "fewer than 5 "
                                                                                       "complete cases"}})
    assert refused.to_table() == "model refused: fewer than 5 complete cases\nnothing is released"


def test_explain_is_plain_left_aligned_text_in_every_format() -> None:
    frames = split(cohort(200, seed=2), 2, seed=2)
    schema = check_schemas([schema_of(f) for f in frames])
    plan = plan_query("EXPLAIN CROSSTAB smoking BY outcome", schema, {"smoking": ("current", "former", "never"),
                                                                      "outcome": (0, 1)})
    plan = plan.__class__(**{**plan.__dict__, "cost": predict_cost(plan, schema, 2)})
    result = explain_result(plan)
    text = result.to_table()
    assert text == plan.text()
    lines = text.splitlines()
    assert lines[0].startswith("plan for: CROSSTAB") and lines[-1].startswith("predicted cost per party")
    assert all(line == line.rstrip() and not line.startswith("   ") for line in lines)
    assert pd.read_csv(io.StringIO(result.to_csv()))["plan"].tolist() == lines
    assert json.loads(result.to_json())["rows"][0] == [lines[0]]
