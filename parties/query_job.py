"""The `query` job: a node's part in answering an analyst's query over its own table.

Before any MPC step the parties exchange metadata — their schema (column names and kinds),
minimum cell size and parameter fraction — and form the domains of the query's grouping
columns by a private union (`queries.domains`: only the union is revealed, not which site
holds which value), so they can agree on one plan; then each runs the plan's local
pushdown on its own rows and the MPC steps. The shares of the released values go to the
analyst with the public facts it needs to rebuild the same plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from mpc.context import PartyContext
from mpc.share import Share
from parties.audit import AuditLog, HeadError, released
from parties.jobs import Job, SiteData
from parties.policy import QueryCounter, SitePolicy, decide
from queries.domains import union_domains
from queries.engine import grouping_columns, plan_query, run_party_with_facts
from queries.parser import parse
from queries.plan import Plan
from queries.table import Schema, check_schemas, conform, load_table, schema_of


def agree(
    ctx: PartyContext, text: str, frame: pd.DataFrame, min_cell: int, param_fraction: float = 0.33,
    *, audit: AuditLog | None = None, analyst: str = "unknown",
) -> tuple[Plan, dict[str, Any]]:
    """Exchange metadata with the other parties (one round) and compile the common plan.

    With `audit`, the metadata carries this node's signed audit head, and the other parties'
    heads are checked and recorded in `audit` (`AuditLog.record_peer_heads`).
    """
    stmt = parse(text)
    cols = grouping_columns(stmt)
    mine: dict[str, Any] = {"schema": schema_of(frame).to_json(), "min_cell": min_cell,
                            "param_fraction": param_fraction}
    if audit is not None:
        mine["audit_head"] = audit.signed_head()
    everyone = [json.loads(b) for b in ctx.all_to_all(json.dumps(mine).encode(), "query-meta")]
    if audit is not None:
        audit.record_peer_heads(analyst, ctx.session, _peer_heads(everyone, ctx.rank))
    schema = check_schemas([Schema.from_json(info["schema"]) for info in everyone])
    k = max(int(info["min_cell"]) for info in everyone)
    for col in cols:
        schema.kind(col)  # an unknown grouping column is a clear error before any MPC step
    domains = union_domains(ctx, frame, cols) if cols else {}
    fraction = min(float(info["param_fraction"]) for info in everyone)  # the strictest site's
    plan = replace(plan_query(text, schema, domains, k), param_fraction=fraction)
    public = {
        "query": text,
        "schema": schema.to_json(),
        "domains": {c: list(v) for c, v in domains.items()},
        "min_cell": k,
        "param_fraction": fraction,
    }
    return plan, public


def _peer_heads(everyone: Sequence[Mapping[str, Any]], rank: int) -> dict[str, Any]:
    """The other parties' signed audit heads, by the party each names (`record_peer_heads` checks them).

    Every party must send one: a node that stopped would leave its log uncheckable by its peers.
    """
    heads: dict[str, Any] = {}
    for r, info in enumerate(everyone):
        if r == rank:
            continue
        head = info.get("audit_head")
        name = str(head.get("node")) if isinstance(head, dict) else f"rank {r}"
        if head is None or name in heads:
            raise HeadError(f"the party at rank {r} sent {'no' if head is None else 'a second'} signed audit head")
        heads[name] = head
    return heads


class PolicyRefusal(Exception):
    """This site declines the query; the message is the reason the analyst sees."""


def query_job(policy: SitePolicy | None = None, audit: AuditLog | None = None,
              counter: QueryCounter | None = None, kinds: Mapping[str, str] | None = None,
              domains: Mapping[str, Sequence[str]] | None = None) -> Job:
    """The job registered as "query": this site checks its policy, logs, then takes part.

    The policy decision comes first, from the analyst's certificate identity (set by the
    node), before any data is read or any message is sent to a peer; a refusal fails the
    query on every side with this site's reason. `counter` keeps today's allowed queries
    per analyst (default: seeded from `audit`, so a restart keeps the count); deciding and
    counting is one atomic step, so concurrent queries cannot overrun the daily limit.
    Every decision, release and failure is written to `audit` (when given). `kinds` and
    `domains` are the site's declared schema (`[data.schema]`, `[data.domains]`): the table
    is checked and converted against them each time it is read (`queries.table.conform`).
    """
    rules = policy or SitePolicy()
    today = counter or (QueryCounter.from_audit(audit.path) if audit is not None else QueryCounter())

    def analyst_of(params: dict[str, Any]) -> str:
        return str(params.get("_analyst", "unknown"))

    def prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> tuple[str, pd.DataFrame, int, str]:
        if audit is not None:
            audit.check()  # a log changed outside the node stops it before anything is read
        analyst = analyst_of(params)
        text = str(params["query"])
        stmt = parse(text)  # a bad query fails here, before any data is touched
        verdict = today.admit(analyst, lambda count: decide(rules, analyst, stmt, count))
        if audit is not None:
            audit.decision(analyst, session=ctx.session, query=text, allowed=verdict.allowed, reason=verdict.reason)
        if not verdict.allowed:
            raise PolicyRefusal(f"{site.party} refuses: {verdict.reason}")
        if site.data_file is None:
            raise ValueError(f"party {site.party} has no table (start the node with --data or [data] path)")
        asked = int(params.get("min_cell", 0))
        frame = _load(site.data_file)
        if kinds is not None or domains:
            frame = conform(frame, kinds, domains)
        return text, frame, max(rules.min_cell, asked), analyst

    def compute(ctx: PartyContext, prepared: tuple[str, pd.DataFrame, int, str]) -> tuple[list[Share], dict[str, Any]]:
        text, frame, k, analyst = prepared
        plan, public = agree(ctx, text, frame, k, rules.max_param_fraction, audit=audit, analyst=analyst)
        if plan.explain:
            if audit is not None:
                audit.release(analyst, session=ctx.session, plan_hash=plan.hash(), what="the plan only", cost={})
            return [], public
        before = ctx.stats.snapshot()
        shares, facts = run_party_with_facts(ctx, plan, frame)
        public.update(facts)
        public["mpc_cost"] = ctx.stats.since(before).as_dict()
        if audit is not None:
            refused = facts.get("refused")
            what = released([list(s.shape) for s in shares], None,
                            f"shares of {plan.groups} group(s) to the analyst; small cells are suppressed in MPC")
            audit.release(analyst, session=ctx.session, plan_hash=plan.hash(), what=what, cost=public["mpc_cost"],
                          groups=plan.groups, **({"refused": str(refused)} if refused else {}))
        return shares, public

    def failed(params: dict[str, Any], session: str, exc: BaseException, aborted: bool) -> None:
        if audit is None or isinstance(exc, PolicyRefusal) or audit.refusal:  # logged as a decision / cannot log
            return
        audit.failure(analyst_of(params), session=session, error=f"{type(exc).__name__}: {exc}", aborted=aborted)

    return Job("query", prepare, compute, "answer an analyst's query over this party's table", on_failure=failed)


def _load(path: Path) -> pd.DataFrame:
    return load_table(path)
