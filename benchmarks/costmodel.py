"""The cost model the benchmark checks: EXPLAIN's counters against the measured ones, and seconds from them.

Counters. `EXPLAIN` predicts, per party, the rounds, messages, bytes and dealer material of
a query's MPC part (`queries.engine.predict_cost`, by running the plan in-process on
stand-in tables). For SELECT and CROSSTAB the prediction is exact, so any difference from
the counters measured over the network is a bug: `check_prediction` raises `CostMismatch`
naming every counter that differs. A LOGISTIC prediction is an estimate (the number of
Newton iterations depends on the data), so it is compared per iteration and reported, not
enforced.

Seconds. A simple model, calibrated on the same consortium in the same run:

    seconds = bytes_sent / bandwidth + rounds x t_round + dealer_requests x rtt

* `bandwidth`: bytes a party sends per second, from opening a 1,000,000-element vector
  (fewer with `--quick`);
* `t_round`: the seconds one round costs on these links, from opening one element (this
  includes the emulated delay: a round is one one-way trip, about rtt / 2, plus software);
* `dealer_requests x rtt`: the last party asks the dealer for each correction, a full round
  trip each. It asks in the background and reads the answer only when the protocol needs
  it (`mpc.dealer.PendingMaterial`: usually after the opening round that follows), so part
  of each trip is hidden behind a round; the model counts the whole trip and so errs high
  on a WAN (the logistic query at 20 ms RTT: 38.0 s predicted, 31.7 s measured in a quick run).

It models the MPC part only: the analyst's call, the parties' metadata exchange and the
private union of grouping domains, and each party's local pass over its rows are outside
it, so at RTT 0 it predicts less than the measured end-to-end time.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from parties.client import ConsortiumClient

EXACT_KEYS = ("rounds", "messages_sent", "bytes_sent", "dealer_requests", "dealer_bytes")


class CostMismatch(AssertionError):
    """EXPLAIN's prediction differs from what the parties measured."""


@dataclass(frozen=True)
class Calibration:
    bandwidth_bytes_per_s: float
    round_seconds: float
    rtt_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def calibrate(client: ConsortiumClient, roster: Sequence[str], rtt_ms: float, repeat: int = 5,
              size: int = 1_000_000) -> Calibration:
    """Measure bandwidth and per-round time on this consortium's links (see the module docstring);
    `size`: the elements of the opening that measures bandwidth."""
    big = {"size": size, "seed": 1}
    client.run("bench_open", big, roster=list(roster))
    runs = [client.run("bench_open", big, roster=list(roster)) for _ in range(max(2, repeat // 2))]
    sent = max(o.stats.bytes_sent for o in runs[-1].outcomes.values())
    small = {"size": 1, "seed": 1}
    client.run("bench_open", small, roster=list(roster))
    rounds = [client.run("bench_open", small, roster=list(roster)).compute_seconds for _ in range(repeat)]
    t_round = statistics.median(rounds)
    t_big = statistics.median(r.compute_seconds for r in runs)
    return Calibration(sent / max(t_big - t_round, 1e-6), t_round, rtt_ms / 1000.0)


def predict_seconds(cost: Mapping[str, Any], calib: Calibration) -> float:
    """Seconds the model gives for one party's counters."""
    return (float(cost.get("bytes_sent", 0)) / calib.bandwidth_bytes_per_s
            + float(cost.get("rounds", 0)) * calib.round_seconds
            + float(cost.get("dealer_requests", 0)) * calib.rtt_s)


def measured_cost(per_party: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """The maximum over parties of each counter (EXPLAIN predicts the maximum too)."""
    return {k: max(int(p.get(k, 0)) for p in per_party) for k in per_party[0]}


def check_prediction(query: str, predicted: Mapping[str, Any], measured: Mapping[str, Any], exact: bool) -> dict:
    """Compare; raise CostMismatch if an exact prediction differs. Returns {counter: [predicted, measured]}."""
    keys = [k for k in EXACT_KEYS if k in predicted and k in measured]
    table = {k: [int(predicted[k]), int(measured[k])] for k in keys}
    if exact:
        wrong = {k: v for k, v in table.items() if v[0] != v[1]}
        if wrong:
            listed = ", ".join(f"{k} predicted {p} measured {m}" for k, (p, m) in wrong.items())
            raise CostMismatch(f"EXPLAIN's prediction for {query!r} differs from the measurement: {listed}")
    return table
