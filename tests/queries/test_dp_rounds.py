"""A query under differential privacy costs the sampler's few rounds, whatever its groups and statistics:
the noise for every released number is drawn in one batched call (`queries.dp_release.release`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from queries.engine import run_in_process

MOST_ROUNDS = 10
"""The most rounds a SELECT may spend on its noise."""


def _frames(groups: int) -> list[pd.DataFrame]:
    """Two parties (the sampler's rounds do not depend on their number: `tests/protocols/test_noise.py`)."""
    rng = np.random.default_rng(groups)
    out = []
    for _ in range(2):
        g = rng.integers(0, groups, 8 * groups)
        out.append(pd.DataFrame({"g": [f"g{i:03d}" for i in g], "h": rng.choice(["a", "b"], g.size),
                                 "x": rng.uniform(0.0, 100.0, g.size).round(2)}))
    return out


@pytest.mark.parametrize("query", [
    "SELECT COUNT(*)",
    "SELECT g, COUNT(*), SUM(x), AVG(x), STDDEV(x) GROUP BY g",
    "SELECT g, h, COUNT(*), VAR(x), MEDIAN(x) GROUP BY g, h",
    "CROSSTAB g BY h",
])
def test_the_noise_costs_the_same_few_rounds_for_one_group_or_many(query: str) -> None:
    rounds = set()
    for groups in (1, 3):  # many: three groups, six with h (the noise's bytes grow with them, its rounds do not)
        plan = run_in_process(_frames(groups), query, epsilon=1.0, bounds=[{"x": (0.0, 100.0)}] * 2)[1]
        rounds.add(plan.cost["rounds"])
    assert len(rounds) == 1 and rounds.pop() <= MOST_ROUNDS
