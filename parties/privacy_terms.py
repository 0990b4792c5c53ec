"""A query's differential privacy terms across the sites: the mode, the epsilon, the bounds, every site's budget.

Each site's policy (`parties.policy`) says its disclosure mode, its default epsilon per
query and its privacy budget per analyst; the bounds of numeric columns come from its
policy (`bounds`) or its dataset's declaration (`{ min, max }` in `[data.domains]`). In
the metadata exchange of a query (`parties.query_job.agree`) every site sends the first
three (`site_terms`); then every site, from the same facts, decides (`agree_privacy`):

1. The query is DP if any site's mode is "dp" (the strictest applies).
2. Its epsilon: the one the analyst asked for (bound into the request digest, so every
   site was asked the same), else the smallest of the sites' `epsilon_per_query`.
3. Its terms (`queries.dp.plan_privacy`) from the widest of the sites' bounds: a query DP
   cannot release, or a column without bounds at some site, is refused here, before
   anything is charged or read.
4. Every site charges the epsilon to the analyst's budget at that site (`charge`: atomic,
   audited), except for EXPLAIN, which releases no statistic; one round tells every site
   every verdict. If any site refused, the query stops at every site with each refusing
   site's reason (its name and the epsilon left), before any data is read; the sites that
   charged are refunded when the session fails (`parties.query_job`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mpc.context import PartyContext
from parties.policy import SitePolicy
from queries import ir
from queries.dp import Privacy, plan_privacy, pooled_bounds


class BudgetRefusal(RuntimeError):
    """A site's privacy budget refuses the query; the message names each refusing site and what is left."""


def site_terms(policy: SitePolicy, declared: Mapping[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """What this site sends in the metadata exchange about differential privacy. Its bounds: those
    its policy gives and those the dataset's declaration gives (`queries.declared.Declared.bounds`,
    `{ min, max }` in `[data.domains]`), the wider where both name a column."""
    bounds = dict(declared or {})
    for c, (lo, hi) in policy.bounds.items():
        old = bounds.get(c, (lo, hi))
        bounds[c] = (min(lo, old[0]), max(hi, old[1]))
    return {
        "disclosure": policy.disclosure,
        "epsilon_per_query": policy.epsilon_per_query,
        "bounds": {c: [lo, hi] for c, (lo, hi) in sorted(bounds.items())},
    }


def agree_privacy(
    ctx: PartyContext,
    everyone: Sequence[Mapping[str, Any]],
    stmt: ir.Statement,
    asked_epsilon: float | None,
    roster: Sequence[str],
    charge: Callable[[float], tuple[bool, str]] | None,
) -> Privacy | None:
    """The query's DP terms (None: not DP), charged at every site; steps 1-4 of the module docstring.

    `everyone`: every site's metadata (with `site_terms`); `charge(epsilon)`: this site's
    budget decision, (allowed, reason), recorded when allowed; None: nothing to charge here.
    """
    if not any(info.get("terms", {}).get("disclosure") == "dp" for info in everyone):
        return None
    terms = [info["terms"] for info in everyone]
    epsilon = asked_epsilon if asked_epsilon is not None else min(float(t["epsilon_per_query"]) for t in terms)
    privacy = plan_privacy(stmt, epsilon, pooled_bounds([t.get("bounds") or {} for t in terms]))
    if isinstance(stmt, ir.Explain):
        return privacy
    allowed, reason = charge(privacy.epsilon) if charge is not None else (True, "no budget at this site")
    verdicts = [json.loads(b) for b in ctx.all_to_all(json.dumps([allowed, reason]).encode(), "dp-budget")]
    refused = [f"{roster[p]} refuses: {why}" for p, (ok, why) in enumerate(verdicts) if not ok]
    if refused:
        raise BudgetRefusal("; ".join(refused) + "; nothing was read or released")
    return privacy
