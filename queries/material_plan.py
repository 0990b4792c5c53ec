"""A plan's dealer material, listed before it runs: so the dealer can prepare all of it ahead.

A query's MPC steps ask the dealer for correlated randomness one request at a time; on a
wide-area network each answer costs a round trip to the dealer if it is asked for only when
the step runs. The requests depend on the plan alone (never on the data) for the statements
whose EXPLAIN prediction is exact, so the last party can list them before the MPC steps
start and send the whole list to the dealer at once (`parties.material_ahead`).

The list comes from the same stand-in run as EXPLAIN's prediction (`queries.cost.stand_ins`,
`queries.engine.predict_cost`): the very code that will run, so it cannot drift from it.
Statements whose material grows with the data — LOGISTIC and POISSON (rows, iterations),
MEDIAN/QUANTILE (rows), SURVIVAL (its grid) — get no list: their requests are asked for as
they come. A wrong list would cost time, never correctness (the correction stream fetches
a request that differs from the list on its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mpc.inprocess import make_contexts, run_parties
from mpc.material import MaterialKind, MaterialRequest
from protocols.material import KINDS
from queries import ir
from queries.cost import stand_ins
from queries.engine import run_party_with_facts
from queries.plan import Plan
from queries.table import Schema


def plannable(plan: Plan) -> bool:
    """Whether `plan`'s dealer requests are fixed by the plan alone (not by the data)."""
    stmt = plan.statement
    if isinstance(stmt, ir.Select):
        return not plan.quantiles
    if isinstance(stmt, ir.Crosstab):
        return True
    return isinstance(stmt, ir.Regression) and stmt.kind == "LINEAR"


class _Listing:
    """The last party's material source in the stand-in run, listing every request in order."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.listed: list[MaterialRequest] = []
        self.requests = 0
        self.bytes_from_dealer = 0

    @property
    def kinds(self) -> Mapping[str, MaterialKind]:
        return self._inner.kinds  # type: ignore[no-any-return]

    def get(self, request: MaterialRequest) -> Mapping[str, np.ndarray]:
        self.listed.append(request)
        out = self._inner.get(request)
        self.requests, self.bytes_from_dealer = self._inner.requests, self._inner.bytes_from_dealer
        return out  # type: ignore[no-any-return]


def material_requests(plan: Plan, schema: Schema, parties: int) -> list[MaterialRequest] | None:
    """The last party's dealer requests for `plan`'s MPC steps, in the order they are made (None
    when the plan's requests depend on the data: `plannable`)."""
    if not plannable(plan):
        return None
    run_plan, frames = stand_ins(plan, schema, parties)
    contexts = make_contexts(parties, kinds=KINDS)
    listing = _Listing(contexts[-1].material)
    contexts[-1].material = listing
    run_parties(parties, lambda ctx, frame: run_party_with_facts(ctx, run_plan, frame), args=frames, contexts=contexts)
    return listing.listed
