"""COX's refusals (each a one-line message, nothing released) and its statement's parse errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from queries.engine import run_in_process
from queries.errors import (
    BadSurvivalData,
    ModelRefused,
    OutOfRange,
    QueryError,
    TooFewEvents,
)
from queries.parser import parse
from queries.synth import cohort, follow_up

QUERY = "COX months, died ~ age + C(smoking)"


def sites(sizes: tuple[int, ...] = (80, 60), seed: int = 0) -> list[pd.DataFrame]:
    return [follow_up(cohort(n, seed=seed + i), seed=seed + i) for i, n in enumerate(sizes)]


def with_value(frame: pd.DataFrame, column: str, row: int, value: float) -> pd.DataFrame:
    out = frame.copy()
    out.loc[row, column] = value
    return out


def test_a_negative_time_refuses() -> None:
    frames = sites()
    frames[1] = with_value(frames[1], "months", 3, -2)
    with pytest.raises(BadSurvivalData, match="COX needs times of 0 or more; some 'months' is negative"):
        run_in_process(frames, QUERY)


def test_an_event_not_0_or_1_refuses() -> None:
    frames = sites()
    frames[0] = with_value(frames[0], "died", 5, 2)
    with pytest.raises(BadSurvivalData, match="event column of 0 .censored. or 1 .event.; some 'died' is neither"):
        run_in_process(frames, QUERY)


def test_too_few_events_refuses() -> None:
    frames = [f.assign(died=pd.array(np.zeros(len(f), dtype=np.int64), dtype="Int64")) for f in sites()]
    frames[0] = with_value(frames[0], "died", 0, 1)
    frames[1] = with_value(frames[1], "died", 0, 1)
    with pytest.raises(TooFewEvents, match="fewer than 5 events in all; nothing is released"):
        run_in_process(frames, QUERY)


def test_separation_refuses() -> None:
    """Every death has marker = 1 and every survivor 0: the partial likelihood grows without bound, and
    the hazard ratio leaves the fit's range, which the refusal names with its likely cause."""
    frames = [f.assign(marker=f["died"].astype("Int64")) for f in sites((90, 70))]
    with pytest.raises(OutOfRange, match="separates events from survivors") as caught:
        run_in_process(frames, "COX months, died ~ age + marker")
    assert "nothing is released" in str(caught.value)


def test_times_beyond_the_grid_refuse_naming_every() -> None:
    with pytest.raises(OutOfRange, match="coarsen it with EVERY w"):
        run_in_process(sites(), QUERY + " EVERY 0.001")


def test_rows_times_grid_points_are_capped_naming_every() -> None:
    frames = sites((2100, 2100))
    with pytest.raises(OutOfRange, match=r"\(8192 x 4096\).*coarsen the times with EVERY w \(now 0.015\)"):
        run_in_process(frames, QUERY + " EVERY 0.015")


def test_refused_under_differential_privacy() -> None:
    with pytest.raises(QueryError, match="COX is not available under disclosure = dp"):
        run_in_process(sites(), QUERY, epsilon=1.0)


def test_a_categorical_time_is_refused_at_planning() -> None:
    frames = [f.assign(months=f["months"].astype(str).astype("string")) for f in sites()]
    with pytest.raises(QueryError, match="the time column of COX must be numeric"):
        run_in_process(frames, QUERY)


def test_the_statement_reads_its_clauses_in_any_order() -> None:
    a = parse("COX months, died ~ age + C(smoking) EVERY 3 WHERE age > 40 MAXITER 12")
    b = parse("COX months, died ~ age + C(smoking) MAXITER 12 WHERE age > 40 EVERY 3")
    assert a == b and a.kind == "COX" and a.time == "months" and a.outcome == "died" and a.every == 3.0
    assert a.maxiter == 12 and a.formula == "age + C(smoking)"
    assert parse("COX months, died ~ age").maxiter == 6


@pytest.mark.parametrize(("query", "message"), [
    ("COX months died ~ age", "expected ',' and the event column"),
    ("COX months, months ~ age", "the time and the event must be two different columns"),
    ("COX months, died ~ age + months", "the time 'months' also appears on the right of '~'"),
    ("COX months, died ~ age EVERY 2 EVERY 3", "EVERY appears twice"),
    ("COX months, died ~ age EVERY 0", "EVERY needs a positive grid width"),
    ("LOGISTIC died ~ age EVERY 2", "unexpected"),
])
def test_parse_errors(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse(query)


def test_a_refusal_is_a_model_refusal() -> None:
    assert issubclass(BadSurvivalData, ModelRefused)
