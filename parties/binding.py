"""Binding a query session to one request and one plan, checked by every node.

An analyst sends the query to every node separately, so a dishonest client could send a
different text (or a different minimum cell size) to each, and learn one site's own
aggregates from the difference. Before any data is read, every node therefore derives two
digests and all nodes compare them:

1. `request_digest`: the normalised statement (its parsed form, so spacing and case do not
   matter), the analyst's certificate name, the roster in rank order, the session id, the
   minimum cell size and (under differential privacy) the epsilon the analyst asked for.
   Sent with the metadata exchange (no extra round); a mismatch stops the session before
   the private union of grouping domains.
2. `plan_digest`: the same facts plus the canonical plan every node compiled from the
   agreed metadata — its text (with its DP terms: epsilon, bounds, noise scales), group
   keys, design terms — and the effective policy terms (k, parameter fraction, whether
   zeros are released). One extra round; a mismatch means the nodes would compute
   different things (or run different code) and stops the session.

`check_agreement` raises `SessionMismatch`, whose message names the parties that differ and
never any data; the node aborts the session at every peer and audits the failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from queries import ir
from queries.plan import Plan


class SessionMismatch(RuntimeError):
    """The parties of one session were asked, or compiled, different things."""


def _digest(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_digest(stmt: ir.Statement, analyst: str, roster: Sequence[str], session: str, asked_min_cell: int,
                   asked_epsilon: float | None = None) -> str:
    """What the analyst asked of this node, independent of how the text was written (with the epsilon
    it asked for, under differential privacy)."""
    fields = {
        "statement": repr(stmt),
        "analyst": analyst,
        "roster": list(roster),
        "session": session,
        "asked_min_cell": int(asked_min_cell),
    }
    if asked_epsilon is not None:
        fields["asked_epsilon"] = float(asked_epsilon)
    return _digest(fields)


def plan_digest(plan: Plan, analyst: str, roster: Sequence[str], session: str) -> str:
    """The canonical plan this node is about to run, with the effective disclosure terms."""
    return _digest({
        "statement": repr(plan.statement),
        "plan": plan.text(with_cost=False),
        "group_keys": repr(plan.group_keys),
        "terms": list(plan.terms),
        "min_cell": plan.min_cell,
        "param_fraction": plan.param_fraction,
        "release_zero": plan.release_zero,
        "analyst": analyst,
        "roster": list(roster),
        "session": session,
    })


def check_agreement(digests: Sequence[str], roster: Sequence[str], rank: int, what: str) -> None:
    """Raise SessionMismatch unless every party's digest equals this party's (`rank`)."""
    mine = digests[rank]
    differ = [roster[p] for p, d in enumerate(digests) if d != mine]
    if differ:
        raise SessionMismatch(
            f"the parties of this session were given different {what}: {', '.join(differ)} "
            f"disagree with {roster[rank]}; the session is stopped and nothing is released"
        )
