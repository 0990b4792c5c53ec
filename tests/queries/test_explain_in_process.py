"""EXPLAIN in process answers as the nodes do: the plan and its predicted cost, no result computed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from queries.engine import run_in_process


def _sites() -> list[pd.DataFrame]:
    rng = np.random.default_rng(3)
    return [pd.DataFrame({"age": rng.integers(30, 80, 60), "sex": rng.choice(["F", "M"], 60),
                          "died": rng.integers(0, 2, 60)}) for _ in range(2)]


@pytest.mark.parametrize("query", ["SELECT COUNT(*), AVG(age)", "LOGISTIC died ~ age", "CROSSTAB sex BY died"])
def test_explain_returns_the_plan_with_its_predicted_cost(query: str) -> None:
    result, plan = run_in_process(_sites(), "EXPLAIN " + query)
    assert result.kind == "plan" and result.columns == ["plan"]
    text = "\n".join(row[0] for row in result.rows)
    assert f"{plan.cost['rounds']} rounds" in text
    assert "coef" not in result.columns and len(result.rows) > 3
