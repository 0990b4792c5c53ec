"""The site's gate in front of every job a node runs: who may run it, how many today, how large, and the audit.

A `Node` cannot be built without a `JobGate` and asks it about every job before anything
else happens for that job (before the dealer hears of the session, before any data is
read or any message is sent to a peer). For each job the gate

1. decides by the site policy (`decide_job`): the analyst must be listed (when the policy
   lists analysts), the job's largest input must be at most `max_elements`, and the analyst
   must be below the daily limit; an allowed job is counted (one atomic step with the
   decision, in the `QueryCounter` the query job shares, so queries and jobs draw on one
   daily limit);
2. writes the decision to the audit log, then the release (shapes and costs, never values)
   or the failure.

A job that asks for something unknown to the node is refused and its refusal logged too.

The query job is the one job that applies the policy itself (`Job.checks_policy`): its
decision needs the parsed query (roles by query kind, allowed columns), so the gate lets
it through and `parties.query_job` decides, counts and audits it with the same counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parties.audit import AuditLog
from parties.audit_entry import released
from parties.jobs import Job
from parties.policy import Decision, QueryCounter, SitePolicy
from parties.records import JobCall, JobOutcome

MAX_ELEMENTS = 10_000_000
"""The most elements one input of a non-query job may have (80 MB as ring elements)."""

_ALLOWED = "allowed by site policy"


def analyst_of(call: JobCall) -> str:
    """Who asks: set by the node from the caller's certificate, never from the request."""
    return str(call.params.get("_analyst", "unknown"))


def size_problem(job: Job, params: dict[str, Any], max_elements: int = MAX_ELEMENTS) -> str | None:
    """Why `job` may not run with `params` for its size (None: it may).

    1. The job must say how large its inputs are (`Job.elements`); one that does not is refused.
    2. Its params must be ones it can take (the job's own ValueError, or a missing parameter).
    3. Its largest input must hold at most `max_elements` elements.
    """
    if job.elements is None:
        return f"job {job.name!r} does not declare its input size, so this node does not run it"
    try:
        n = int(job.elements(params))
    except KeyError as exc:
        return f"job {job.name!r} needs the parameter {exc}"
    except (TypeError, ValueError) as exc:
        return f"job {job.name!r}: {exc}"
    if n > max_elements:
        return f"job {job.name!r} asks for {n:,} elements in one input; this site allows at most {max_elements:,}"
    return None


def decide_job(policy: SitePolicy, analyst: str, today: int, too_large: str | None) -> Decision:
    """This site's decision on one non-query job, from plain facts (pure; no I/O).

    1. The analyst must be listed (when the policy lists analysts); no role is needed.
    2. The job's size must be acceptable (`too_large` is `size_problem`'s answer).
    3. `today` (queries and jobs this analyst was allowed today, UTC) must be below the daily limit.
    """
    if policy.analysts is not None and analyst not in policy.analysts:
        return Decision(False, f"analyst {analyst!r} is not authorised at this site")
    if too_large is not None:
        return Decision(False, too_large)
    if today >= policy.max_queries_per_day:
        return Decision(
            False,
            f"analyst {analyst!r} reached this site's limit of {policy.max_queries_per_day} queries and jobs per day",
        )
    return Decision(True, _ALLOWED)


@dataclass
class JobGate:
    """One node's gate: its policy, its audit log (None: no log) and the daily counter it shares."""

    policy: SitePolicy = field(default_factory=SitePolicy)
    audit: AuditLog | None = None
    counter: QueryCounter = field(default_factory=QueryCounter)
    max_elements: int = MAX_ELEMENTS

    def admit(self, job: Job, call: JobCall) -> Decision:
        """Decide on `job`, count it if allowed, and log the decision (the query job: allowed, untouched)."""
        if job.checks_policy:
            return Decision(True, "the job applies the site policy itself")
        analyst = analyst_of(call)
        too_large = size_problem(job, call.params, self.max_elements)
        verdict = self.counter.admit(analyst, lambda today: decide_job(self.policy, analyst, today, too_large))
        if self.audit is not None:
            self.audit.append(analyst, "decision", session=call.session, job=job.name,
                              decision="allow" if verdict.allowed else "refuse", reason=verdict.reason)
        return verdict

    def unknown(self, call: JobCall, reason: str) -> None:
        """Log the refusal of a job this node does not run."""
        if self.audit is not None:
            self.audit.append(analyst_of(call), "decision", session=call.session, job=call.job,
                              decision="refuse", reason=reason)

    def released(self, job: Job, call: JobCall, outcome: JobOutcome) -> None:
        """Log what this node is about to send the analyst: the shapes of its shares and the cost."""
        if job.checks_policy or self.audit is None:
            return
        what = released([list(s.shape) for s in outcome.shares], None, "shares of the job's outputs to the analyst")
        cost = {**outcome.stats.as_dict(), "compute_seconds": round(outcome.compute_seconds, 6)}
        self.audit.append(analyst_of(call), "release", session=call.session, job=job.name, released=what,
                          cost=cost, outcome="ok")

    def failed(self, job: Job, call: JobCall, exc: BaseException, aborted: bool) -> None:
        """Log a job that failed here after it was admitted (`aborted`: another party stopped it)."""
        if job.checks_policy or self.audit is None:
            return
        self.audit.failure(analyst_of(call), session=call.session, error=f"{type(exc).__name__}: {exc}",
                           aborted=aborted)
