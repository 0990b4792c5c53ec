"""The `query` job: a node's part in answering an analyst's query over its own table.

Before any MPC step the parties exchange metadata — their schema (column names and kinds),
disclosure terms and the digest of the request each was given — and form the domains of
the query's grouping columns by a private union (`queries.domains`: only the union is
revealed, not which site holds which value), so they can agree on one plan; every node
then checks that all compiled the same plan (`parties.binding`), runs the plan's local
pushdown on its own rows and the MPC steps. The shares of the released values go to the
analyst with the public facts it needs to rebuild the same plan.

A query counts against the analyst's daily limit at this site once it is admitted here;
if it never runs — another site refused it, or the session failed before every site bound
it to one plan — the count is refunded and the refund audited, so the limit counts only
queries that ran. Under differential privacy the query's epsilon is charged the same way to
the analyst's privacy budget at every site (`parties.privacy_terms`, `parties.budget`), before
any data is read, and refunded with the count.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mpc.context import PartyContext
from mpc.share import Share
from parties.audit import AuditLog, HeadError
from parties.audit_entry import released
from parties.binding import check_agreement, plan_digest, request_digest
from parties.budget import PrivacyBudget, audit_fields
from parties.jobs import Job, SiteData
from parties.material_ahead import material_ahead
from parties.policy import QueryCounter, SitePolicy, decide
from parties.privacy_terms import agree_privacy, site_terms
from queries import ir
from queries.declared import Declared
from queries.domains import union_values
from queries.engine import check_query, grouping_columns, local_values, plan_query, run_party_with_facts
from queries.parser import parse
from queries.plan import Plan
from queries.sources import Datasets, Source, SourceError, open_source
from queries.table import Schema, check_schemas


@dataclass(frozen=True)
class SiteTerms:
    """This site's disclosure terms for one query, combined across sites in `agree`."""

    min_cell: int
    param_fraction: float = 0.33
    release_zero: bool = True
    privacy: Mapping[str, Any] = field(default_factory=lambda: {"disclosure": "threshold"})
    """This site's differential privacy terms (`parties.privacy_terms.site_terms`)."""


def agree(
    ctx: PartyContext,
    text: str,
    data: Source,
    terms: SiteTerms,
    *,
    analyst: str = "unknown",
    roster: Sequence[str] = (),
    asked_min_cell: int = 0,
    audit: AuditLog | None = None,
    stmt: ir.Statement | None = None,
    schema: Schema | None = None,
    asked_epsilon: float | None = None,
    charge: Callable[[float], tuple[bool, str]] | None = None,
) -> tuple[Plan, dict[str, Any]]:
    """Exchange metadata with the other parties, bind the session to one plan, and compile it.

    1. One round: every party sends its schema, its terms and the digest of the request it
       was given (`parties.binding.request_digest`); a different request anywhere stops the
       session here, before any data-dependent step.
    2. The grouping domains by private union (`queries.domains`).
    3. The plan, from the combined terms: the largest k, the smallest parameter fraction,
       zeros released only if every site releases them; under differential privacy (any site
       on dp) its DP terms, charged to every site's budget first (`parties.privacy_terms`:
       one more round, before the grouping domains, so a refusal reads no data).
    4. One round: every party sends the digest of the plan it compiled; any difference stops
       the session.

    With `audit`, the metadata carries this node's signed audit head, and the other parties'
    heads are checked and recorded in `audit` (`AuditLog.record_peer_heads`). `stmt`: `text`
    already parsed (parsed here otherwise). `data`: the dataset the query reads here; `schema`:
    its schema, if already read (read here otherwise). `asked_epsilon`: the epsilon the analyst
    asked for (None: the sites' default); `charge`: this site's budget decision on an epsilon.
    """
    stmt = stmt if stmt is not None else parse(text)
    names = list(roster) or [str(p) for p in range(ctx.n)]
    mine: dict[str, Any] = {
        "request": request_digest(stmt, analyst, names, ctx.session, asked_min_cell, asked_epsilon),
        "schema": (schema if schema is not None else data.schema()).to_json(),
        "min_cell": terms.min_cell,
        "param_fraction": terms.param_fraction,
        "release_zero": terms.release_zero,
        "terms": dict(terms.privacy),
    }
    if audit is not None:
        mine["audit_head"] = audit.signed_head()
    everyone = [json.loads(b) for b in ctx.all_to_all(json.dumps(mine).encode(), "query-meta")]
    check_agreement([str(info.get("request")) for info in everyone], names, ctx.rank, "requests")
    if audit is not None:
        audit.record_peer_heads(analyst, ctx.session, _peer_heads(everyone, ctx.rank, names))
    common = check_schemas([Schema.from_json(info["schema"]) for info in everyone], names)
    k = max(int(info["min_cell"]) for info in everyone)
    fraction = min(float(info["param_fraction"]) for info in everyone)  # the strictest site's
    zeros = all(bool(info["release_zero"]) for info in everyone)
    check_query(stmt, common)  # an unknown column or a type error is a clear error before any data is read
    privacy = agree_privacy(ctx, everyone, stmt, asked_epsilon, names, charge)
    cols = grouping_columns(stmt, common)  # a model's categorical columns depend on the schema
    domains = union_values(ctx, local_values(data, stmt, common)) if cols else {}
    plan = replace(plan_query(stmt, common, domains, k, zeros), param_fraction=fraction)
    if privacy is not None:
        plan = replace(plan, privacy=privacy, mpc_steps=privacy.steps())
    binding = plan_digest(plan, analyst, names, ctx.session)
    digests = [b.decode() for b in ctx.all_to_all(binding.encode(), "plan-binding")]
    check_agreement(digests, names, ctx.rank, "plans")
    public = {
        "query": text,
        "schema": common.to_json(),
        "domains": {c: list(v) for c, v in domains.items()},
        "min_cell": k,
        "param_fraction": fraction,
        "release_zero": zeros,
        "binding": binding,
    }
    if privacy is not None:
        public["privacy"] = privacy.to_json()
    return plan, public


def _peer_heads(everyone: Sequence[Mapping[str, Any]], rank: int, roster: Sequence[str]) -> dict[str, Any]:
    """The other parties' signed audit heads, by party name (`record_peer_heads` checks the signatures).

    Every party must send one, in its own name (the roster's name at its rank): a node that
    stopped sending would leave its log uncheckable by its peers.
    """
    heads: dict[str, Any] = {}
    for r, info in enumerate(everyone):
        if r == rank:
            continue
        head = info.get("audit_head")
        if not isinstance(head, dict):
            raise HeadError(f"{roster[r]} sent no signed audit head")
        if str(head.get("node")) != roster[r]:
            raise HeadError(f"{roster[r]} sent an audit head in another party's name")
        heads[roster[r]] = head
    return heads


class PolicyRefusal(Exception):
    """This site declines the query; the message is the reason the analyst sees."""


@dataclass(frozen=True)
class _Prepared:
    """A query admitted at this site, with its dataset picked and its schema read: what `compute` needs."""

    text: str
    stmt: ir.Statement
    source: Source
    schema: Schema
    terms: SiteTerms
    analyst: str
    asked_min_cell: int
    roster: tuple[str, ...]
    site: str = ""
    asked_epsilon: float | None = None


class _Admitted:
    """Sessions admitted here whose count is not yet final (until every site bound the plan)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    def add(self, session: str) -> None:
        with self._lock:
            self._pending.add(session)

    def settle(self, session: str) -> bool:
        """Forget `session`; True if it was still pending (its count may be refunded)."""
        with self._lock:
            if session in self._pending:
                self._pending.discard(session)
                return True
            return False


def query_job(policy: SitePolicy | None = None, audit: AuditLog | None = None,
              counter: QueryCounter | None = None, kinds: Mapping[str, str] | None = None,
              domains: Mapping[str, Sequence[str]] | None = None, datasets: Datasets | None = None) -> Job:
    """The job registered as "query": this site checks its policy, logs, then takes part.

    The policy decision comes first, from the analyst's certificate identity (set by the
    node), before any data is read or any message is sent to a peer; a refusal fails the
    query on every side with this site's reason. `counter` keeps today's allowed queries
    per analyst (default: seeded from `audit`, so a restart keeps the count); deciding and
    counting is one atomic step, so concurrent queries cannot overrun the daily limit, and a
    query that never ran is refunded (module docstring). Every decision, release, failure
    and refund is written to `audit` (when given). `datasets`: the site's named datasets
    (`queries.sources.Datasets`); without them, the node's one data file is the dataset, with
    `kinds` and `domains` its declared schema (`[data.schema]`, `[data.domains]`), checked
    each time it is read (`queries.declared`). A query's FROM picks the dataset; a name the site
    does not have fails here, before anything is read, and so does a dataset that cannot be
    reached (its error names the file or the database host, never a password).
    """
    rules = policy or SitePolicy()
    today = counter or (QueryCounter.from_audit(audit.path) if audit is not None else QueryCounter())
    pending = _Admitted()
    budgets = _Budgets(rules, audit)

    def analyst_of(params: dict[str, Any]) -> str:
        return str(params.get("_analyst", "unknown"))

    def prepare(ctx: PartyContext, params: dict[str, Any], site: SiteData) -> _Prepared:
        if audit is not None:
            audit.check()  # a log changed outside the node stops it before anything is read
        analyst = analyst_of(params)
        text = str(params["query"])
        stmt = parse(text)  # a bad query fails here, before any data is touched
        asked = _asked_min_cell(params)
        epsilon = _asked_epsilon(params)
        verdict = today.admit(analyst, lambda count: decide(rules, analyst, stmt, count))
        if audit is not None:
            audit.decision(analyst, session=ctx.session, query=text, allowed=verdict.allowed, reason=verdict.reason)
        if not verdict.allowed:
            raise PolicyRefusal(f"{site.party} refuses: {verdict.reason}")
        pending.add(ctx.session)
        data = datasets
        if data is None:
            if site.data_file is None:
                raise ValueError(f"party {site.party} has no table (start the node with --data or [data] path)")
            data = Datasets.of(Declared(open_source(site.data_file), kinds, domains))
        try:
            source = data.pick(stmt)
            schema = source.schema()
        except SourceError as exc:
            raise SourceError(f"{site.party}: {exc}") from None
        declared = getattr(source, "bounds", None)  # a Declared dataset's numeric ranges
        terms = SiteTerms(max(rules.min_cell, asked), rules.max_param_fraction, rules.release_zero,
                          site_terms(rules, declared))
        roster = tuple(str(p) for p in params.get("_roster", ()))
        return _Prepared(text, stmt, source, schema, terms, analyst, asked, roster, site.party, epsilon)

    def compute(ctx: PartyContext, job: _Prepared) -> tuple[list[Share], dict[str, Any]]:
        def charge(epsilon: float) -> tuple[bool, str]:
            return budgets.charge(job.site, job.analyst, epsilon, ctx.session)

        plan, public = agree(ctx, job.text, job.source, job.terms, analyst=job.analyst, roster=job.roster,
                             asked_min_cell=job.asked_min_cell, audit=audit, stmt=job.stmt, schema=job.schema,
                             asked_epsilon=job.asked_epsilon, charge=charge)
        pending.settle(ctx.session)  # every site admitted it and bound it to this plan: it counts
        binding = {"binding": public["binding"]}
        if plan.explain:
            if audit is not None:
                audit.release(job.analyst, session=ctx.session, plan_hash=plan.hash(), what="the plan only",
                              cost={}, **binding)
            return [], public
        before = ctx.stats.snapshot()
        with material_ahead(ctx, plan, Schema.from_json(public["schema"])):  # the dealer prepares it all now
            shares, facts = run_party_with_facts(ctx, plan, job.source)
        public.update(facts)
        public["mpc_cost"] = ctx.stats.since(before).as_dict()
        if audit is not None:
            refused = facts.get("refused")
            what = released([list(s.shape) for s in shares], None,
                            f"shares of {plan.groups} group(s) to the analyst; "
                            + ("small cells are suppressed in MPC" if plan.privacy is None else
                               f"noisy statistics (differential privacy, epsilon {plan.privacy.epsilon:g})"))
            audit.release(job.analyst, session=ctx.session, plan_hash=plan.hash(), what=what,
                          cost=public["mpc_cost"], groups=plan.groups, **binding,
                          **({"refused": str(refused)} if refused else {}))
        return shares, public

    def failed(params: dict[str, Any], session: str, exc: BaseException, aborted: bool) -> None:
        refund = pending.settle(session)
        if refund:
            today.refund(analyst_of(params))
            budgets.refund(session)
        if audit is None or isinstance(exc, PolicyRefusal) or audit.refusal:  # logged as a decision / cannot log
            return
        audit.failure(analyst_of(params), session=session, error=f"{type(exc).__name__}: {exc}", aborted=aborted,
                      refunded=refund)

    return Job("query", prepare, compute, "answer an analyst's query over this party's table", on_failure=failed,
               checks_policy=True)


class _Budgets:
    """This site's privacy budget (`parties.budget`), seeded from the audit log at its first use
    (so a restart forgets no spending), and the audit of every charge."""

    def __init__(self, policy: SitePolicy, audit: AuditLog | None) -> None:
        self._policy, self._audit = policy, audit
        self._lock = threading.Lock()
        self._budget: PrivacyBudget | None = None

    def _of(self, site: str) -> PrivacyBudget:
        with self._lock:
            if self._budget is None:
                limits = self._policy.budget
                self._budget = (PrivacyBudget.from_audit(self._audit.path, site, limits) if self._audit is not None
                                else PrivacyBudget(site, limits))
            return self._budget

    def charge(self, site: str, analyst: str, epsilon: float, session: str) -> tuple[bool, str]:
        """Charge `epsilon` to `analyst` here, atomically; log the decision (an allowed one with its cost)."""
        verdict = self._of(site).charge(analyst, epsilon, session)
        if self._audit is not None:
            self._audit.append(analyst, "budget", session=session, decision="allow" if verdict.allowed else "refuse",
                               reason=verdict.reason, **(audit_fields(epsilon) if verdict.allowed else {}))
        return verdict.allowed, verdict.reason

    def refund(self, session: str) -> None:
        """Take back the charge of a session that never ran (its failure entry says `refunded`)."""
        if self._budget is not None:
            self._budget.refund(session)


def _asked_epsilon(params: Mapping[str, Any]) -> float | None:
    """The epsilon the analyst asked for (None: the sites' default); a non-positive one is a clear error."""
    value = params.get("epsilon")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise ValueError(f"epsilon must be a positive number, got {value!r}")
    return float(value)


def _asked_min_cell(params: Mapping[str, Any]) -> int:
    """The minimum cell size the analyst asked for (0: none); a malformed one is a clear error."""
    value = params.get("min_cell", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
        raise ValueError(f"min_cell must be a whole number >= 0, got {value!r}")
    return int(value)
