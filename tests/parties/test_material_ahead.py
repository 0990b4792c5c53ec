"""A node sends its query's dealer material ahead: real processes on 127.0.0.1 with mutual TLS.

The last party reports how its corrections came (`dealer_asked_ahead`,
`dealer_asked_on_demand`: one dealer round trip each). The first query of a kind asks for
its domain union's material on demand (no trace yet); the same query again asks for
everything ahead, with the same rounds and the same answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from parties.analyst import ask
from parties.client import ConsortiumClient
from parties.local import LocalConsortium
from queries.synth import cohort

pytestmark = pytest.mark.network
NAMES = ["a", "b", "c"]
QUERY = "SELECT COUNT(*), AVG(sbp) GROUP BY sex, smoking"


@pytest.fixture(scope="module")
def frames() -> list[pd.DataFrame]:
    return [cohort(rows, seed=i) for i, rows in enumerate([300, 500, 200])]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, frames: list[pd.DataFrame]) -> Iterator[ConsortiumClient]:
    out = tmp_path_factory.mktemp("ahead")
    files: dict[str, str | Path] = {}
    for name, frame in zip(NAMES, frames, strict=True):
        files[name] = out / f"{name}.parquet"
        frame.to_parquet(files[name])
    with LocalConsortium(NAMES, data=files) as lc, lc.client() as c:
        yield c


def test_a_repeated_query_asks_the_dealer_for_everything_ahead(
    client: ConsortiumClient, frames: list[pd.DataFrame]
) -> None:
    runs = [ask(client, NAMES, QUERY) for _ in range(2)]
    last = [job.outcomes["c"].public for _, _, job in runs]
    assert all("dealer_asked_ahead" not in job.outcomes["a"].public for _, _, job in runs)  # only the last party
    assert last[0]["dealer_asked_on_demand"] > 0  # the domain union's material, never seen before
    assert last[1]["dealer_asked_on_demand"] == 0 and last[1]["dealer_plan_wrong"] == 0
    assert last[1]["dealer_asked_ahead"] == last[0]["dealer_asked_ahead"] + last[0]["dealer_asked_on_demand"]
    assert last[1]["dealer_asked_ahead"] > last[1]["mpc_cost"]["dealer_requests"] > 0  # the union's and the plan's
    assert last[0]["mpc_cost"] == last[1]["mpc_cost"]
    pooled = pd.concat(frames).groupby(["sex", "smoking"]).size()
    for result, _, _ in runs:
        table = result.to_pandas().set_index(["sex", "smoking"])
        assert table.iloc[:, 0].astype(int).to_dict() == pooled.to_dict()


def test_a_logistic_fit_asks_for_its_later_passes_ahead(client: ConsortiumClient) -> None:
    result, _, job = ask(client, NAMES, "LOGISTIC diabetes ~ age + bmi + sbp")
    last = job.outcomes["c"].public
    iterations = int(result.extra["model"]["iterations"])
    assert iterations >= 4
    # From the third pass on, each pass's requests are those of the pass before, sent as it starts;
    # a told request that differed from what the pass asked would count as on demand.
    ahead, on_demand = last["dealer_asked_ahead"], last["dealer_asked_on_demand"]
    assert last["dealer_plan_wrong"] == 0 and ahead > 0 and on_demand > 0
    assert ahead % (iterations - 2) == 0  # the same requests in each pass from the third on
    assert ahead + on_demand == job.outcomes["c"].stats.dealer_requests
