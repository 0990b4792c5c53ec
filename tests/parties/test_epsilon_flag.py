"""`--epsilon` is never silently ignored: `pooled local` refuses it without `--disclosure dp`
before any process starts, and an answer that spent no epsilon (no site on dp) says so on stderr."""

from __future__ import annotations

import pandas as pd
import pytest

import parties.local
from parties.analyst import answer_to_stdout
from parties.cli import main
from queries.engine import run_in_process


def _frames() -> list[pd.DataFrame]:
    return [pd.DataFrame({"sex": ["F", "M"] * 10, "bmi": [20.0 + i for i in range(20)]}) for _ in range(2)]


def test_pooled_local_refuses_epsilon_without_dp_before_starting_anything(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_consortium(*args: object, **kwargs: object) -> None:
        raise AssertionError("a consortium was started")

    monkeypatch.setattr(parties.local, "LocalConsortium", no_consortium)
    files = []
    for i, frame in enumerate(_frames()):
        files.append(str(tmp_path / f"s{i}.csv"))  # type: ignore[operator]
        frame.to_csv(files[-1], index=False)
    assert main(["local", "--data", *files, "--epsilon", "0.5", "SELECT COUNT(*)"]) == 2
    err = capsys.readouterr().err
    assert "--epsilon" in err and "--disclosure dp" in err and err.count("\n") == 1


@pytest.mark.parametrize("query", ["SELECT COUNT(*), AVG(bmi)", "EXPLAIN SELECT COUNT(*)"])
def test_an_answer_without_dp_says_the_epsilon_was_not_spent(query: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_in_process(_frames(), query, min_cell=1)[0]
    assert answer_to_stdout("pooled query", lambda: result, "table", 0.5) == 0
    err = capsys.readouterr().err
    assert "pooled query: --epsilon 0.5 was not spent: no site is on differential privacy" in err


@pytest.mark.parametrize("query", ["SELECT COUNT(*), AVG(bmi)", "EXPLAIN SELECT COUNT(*)"])
def test_a_dp_answer_spends_its_epsilon_silently(query: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_in_process(_frames(), query, min_cell=1, epsilon=0.5, bounds=[{"bmi": (0.0, 60.0)}] * 2)[0]
    assert answer_to_stdout("pooled query", lambda: result, "table", 0.5) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "epsilon 0.5" in captured.out
