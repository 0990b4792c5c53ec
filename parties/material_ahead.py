"""The last party tells the dealer a query's whole material before the MPC steps ask for it.

Without it, each MPC step that needs correlated randomness asks the dealer when it runs,
and on a wide-area network the answer arrives a round trip to the dealer later, after the
step's own round: a query with 55 dealer requests pays up to 55 extra half round trips.
Once the parties have bound the session to one plan, `material_ahead` sends the dealer the
plan's requests in one batch on the correction stream (`mpc.dealer.SeededMaterial.planner`,
`parties.dealer_client.CorrectionStream.extend`); the dealer computes and streams them back
while the parties run their local steps. The list is either

* remembered: the MPC steps run as a phase keyed by the plan (`mpc.dealer.SeededMaterial.phase`),
  so the node keeps the requests a plan made and sends them as the same plan starts again;
* or, for a plan not seen before and a dealer at least `LIST_FROM_RTT_S` away, listed by the
  same stand-in run as EXPLAIN's prediction (`queries.material_plan.material_requests`) in a
  background thread: the MPC steps do not wait for it, and requests they make before it is
  sent are asked for one by one.

The dealer learns nothing new: the same requests, kinds and shapes, in the same session, only
earlier. Parties 0..n-2, and statements whose material depends on the data
(`queries.material_plan.plannable`), do nothing here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator

from mpc.context import PartyContext
from mpc.dealer import phase
from mpc.material import MaterialRequest
from queries.material_plan import material_requests, plannable
from queries.plan import Plan
from queries.table import Schema

LIST_FROM_RTT_S = 0.005
"""The dealer round trip (the session's seed call) from which a plan not seen before is listed: below
it, as on one machine, asking on demand costs less than the listing's CPU."""


@contextlib.contextmanager
def material_ahead(ctx: PartyContext, plan: Plan, schema: Schema) -> Iterator[threading.Thread | None]:
    """Run the block (the plan's MPC steps) with its dealer material sent ahead, where the plan allows;
    yields the thread listing it (None when the plan's requests are remembered, not listed, or not sent)."""
    if not plannable(plan):
        yield None
        return
    digest = hashlib.sha256(schema.to_json().encode()).hexdigest()[:16]
    with phase(ctx.material, f"plan/{ctx.n}/{plan.hash()}/{digest}") as told:
        planner = getattr(ctx.material, "planner", None)
        rtt = getattr(ctx.material, "dealer_rtt_s", None)
        near = rtt is not None and rtt < LIST_FROM_RTT_S
        tell = planner() if planner is not None and not told and not near else None
        lister = None
        if tell is not None:
            lister = threading.Thread(target=_list_and_tell, args=(plan, schema, ctx.n, tell),
                                      name=f"material-ahead-{ctx.session[:8]}", daemon=True)
            lister.start()
        yield lister


def _list_and_tell(plan: Plan, schema: Schema, parties: int, tell: Callable[[list[MaterialRequest]], int]) -> None:
    try:
        listed = material_requests(plan, schema, parties)
    except Exception:  # noqa: BLE001 - only a speed-up: the steps ask for their material as they go
        logging.getLogger(__name__).warning("listing the dealer material of plan %s failed", plan.hash(), exc_info=True)
        return
    if listed is not None:
        tell(listed)
