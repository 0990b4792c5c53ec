"""The analyst's side of a query: send it to every node, rebuild the plan, reconstruct the result.

Only the analyst ever adds up the parties' shares of the released values; the nodes see
nothing of the result. `ask` returns the result table, the plan (with EXPLAIN's predicted
cost when asked) and the raw job result (timings, per-party counters).

gRPC, the engine and pandas are imported when a query is asked, not with this module, so that
a command checks its query (`checked_query`) before it loads them or starts anything.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from queries import ir
from queries.errors import ModelRefused, QueryError, SchemaError
from queries.parser import parse

if TYPE_CHECKING:
    from parties.client import ConsortiumClient, JobResult
    from queries.plan import Plan
    from queries.result import Result


def ask(
    client: ConsortiumClient,
    roster: Sequence[str],
    text: str,
    min_cell: int = 0,
    timeout_s: float = 0.0,
    call_timeout_s: float = 600.0,
    yates: bool = False,
    stmt: ir.Statement | None = None,
    epsilon: float | None = None,
) -> tuple[Result, Plan, JobResult]:
    """Run one query over the consortium; raises QueryError on a bad query (before any node is asked),
    and a model's refusal as its `ModelRefused` (with `.job` and `.plan` of the run that refused).

    `timeout_s`: the longest a party waits for one peer message (0: the nodes' setting);
    `call_timeout_s`: the longest the analyst waits for the whole answer; `yates`: a CROSSTAB's
    chi-square with Yates' continuity correction (computed here, from the released counts);
    `stmt`: `text` already parsed (parsed here otherwise); `epsilon`: the privacy parameter this
    query may spend under differential privacy (None: the sites' default).
    """
    from parties.client import ConsortiumError
    from queries.engine import finish_result, predict_cost, rebuild_plan
    from queries.result import explain_result
    from queries.table import Schema

    stmt = stmt if stmt is not None else parse(text)
    job = client.run(
        "query",
        {"query": text, "min_cell": min_cell, **({"epsilon": epsilon} if epsilon is not None else {})},
        roster=list(roster),
        session=uuid.uuid4().hex,
        peer_timeout_s=timeout_s,
        call_timeout_s=call_timeout_s,
    )
    public = next(iter(job.outcomes.values())).public
    if not public:
        raise QueryError("the nodes returned no plan")
    bindings = {name: outcome.public.get("binding") for name, outcome in job.outcomes.items()}
    if len(set(bindings.values())) != 1:
        first = next(iter(bindings.values()))
        odd = sorted(name for name, b in bindings.items() if b != first)
        raise ConsortiumError(odd[0], "the nodes answered for different plans; the result is discarded", {})
    plan = rebuild_plan(public, stmt)
    if plan.explain:
        plan = replace(plan, cost=predict_cost(plan, Schema.from_json(public["schema"]), len(roster)))
        return explain_result(plan), plan, job
    shares = next(iter(job.outcomes.values())).shares
    outputs = [(total, share.frac, share.ring.bits) for total, share in zip(job.ring_outputs(), shares)]
    try:
        result = finish_result(plan, outputs, public, yates)
    except ModelRefused as refusal:
        refusal.job, refusal.plan = job, plan  # type: ignore[attr-defined]  # the run that refused
        raise
    result.extra["cost"] = public.get("mpc_cost", {})
    return result, plan, job


def checked_query(prog: str, text: str, epsilon: float | None) -> ir.Statement | None:
    """The parsed query, or None after one line on stderr for a bad query or a `--epsilon` that is
    not a positive number: what a command checks before it reaches any party."""
    if epsilon is not None and not 0 < epsilon < float("inf"):
        print(f"{prog}: --epsilon must be a positive number, got {epsilon!r}", file=sys.stderr)
        return None
    try:
        return parse(text)
    except QueryError as exc:
        print(f"{prog}: {exc.render()}", file=sys.stderr)
        return None


def answer_to_stdout(prog: str, get: Callable[[], Result], fmt: str, epsilon: float | None = None) -> int:
    """Run `get`, print its result as `fmt` (table, csv or json) and return the command's exit code.

    0: answered; 1: the consortium refused or failed, or refused to fit a model (the reason on
    stderr); 2: a bad query. `epsilon`: the `--epsilon` given; when the answer is not a
    differentially private one (no site on dp), stderr says it was not spent.
    """
    from parties.client import ConsortiumError

    try:
        result = get()
    except (QueryError, SchemaError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ModelRefused as exc:
        print(f"{prog}: refused ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    except ConsortiumError as exc:
        print(f"{prog}: the query failed: {exc}", file=sys.stderr)
        return 1
    if fmt == "json":
        print(result.to_json())
    elif fmt == "csv":
        print(result.to_csv(), end="")
    else:
        print(result.to_table())
    if epsilon is not None and not spends_epsilon(result):
        print(f"{prog}: --epsilon {epsilon:g} was not spent: no site is on differential privacy "
              '(disclosure = "dp"), so the answer is under the minimum cell size rule', file=sys.stderr)
    return 0


def spends_epsilon(result: Result) -> bool:
    """Whether `result` came from a differentially private query (its answer, or EXPLAIN's plan of one)."""
    if result.kind == "plan":
        return any(str(row[0]).lstrip().startswith("disclosure: differential privacy") for row in result.rows)
    return "privacy" in result.extra
