"""A site's privacy budget: the epsilon each analyst has spent here, and refusing an overrun.

Every differentially private release costs its epsilon; under basic composition the costs
of an analyst's queries add up, and a site caps the sum per analyst — per UTC day, over
all time, or both. The limits are two keys of the site's policy table:

    epsilon_per_day = 1.0     # per analyst, per UTC day
    epsilon_total = 10.0      # per analyst, ever

Each site keeps its own accountant (`PrivacyBudget`) and decides alone, like the rest of
its policy: `charge` refuses a query whose epsilon would overrun either limit, with a
reason naming the site and what is left. A query that never ran (another site refused it,
or it failed before anything was released) is refunded by its session.

Amounts are exact: each epsilon is read as the decimal it prints as (0.1 is 1/10), and
sums are fractions, so ten queries of 0.1 spend exactly 1.0 and a limit of 1.0 allows
exactly those ten.

Persistence is the node's audit log, as for `parties.policy.QueryCounter`: the decision
or `budget` entry of an allowed charge carries `cost = {"epsilon": eps}` (`audit_fields`), and a
failure or abort entry with `refunded = true` takes back the charge of its session.
`PrivacyBudget.from_audit` replays those entries at start, so a restart forgets nothing.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from parties.audit import read_entries

BUDGET_KEYS = ("epsilon_per_day", "epsilon_total")


class BudgetError(ValueError):
    """A malformed limit or epsilon; the message says which and why."""


def exact_epsilon(value: Any, what: str = "epsilon") -> Fraction:
    """A positive, finite number as the exact decimal it prints as (0.1 -> 1/10)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise BudgetError(f"{what} must be a positive number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise BudgetError(f"{what} must be a positive number, got {value!r}")
    return Fraction(repr(number))


@dataclass(frozen=True)
class BudgetLimits:
    """Epsilon per analyst per UTC day and in total; None: no limit of that kind."""

    per_day: Fraction | None = None
    total: Fraction | None = None

    @staticmethod
    def from_table(raw: Mapping[str, Any], source: str = "policy") -> BudgetLimits:
        """The limits in a policy table (`BUDGET_KEYS`; other keys are the policy's business)."""
        found = [None if raw.get(key) is None else exact_epsilon(raw[key], f"{source}: {key}") for key in BUDGET_KEYS]
        return BudgetLimits(*found)

    def to_table(self) -> dict[str, float]:
        """The keys this loads from (absent limits left out)."""
        pairs = zip(BUDGET_KEYS, (self.per_day, self.total))
        return {key: float(limit) for key, limit in pairs if limit is not None}


class BudgetDecision(NamedTuple):
    """The accountant's answer to one charge; `reason` is what the analyst is told."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class Charge:
    """Epsilon spent by one analyst's query (its session) on one UTC day."""

    analyst: str
    session: str
    epsilon: Fraction
    day: date


def audit_fields(epsilon: Any) -> dict[str, Any]:
    """The fields to add to an allowed query's decision entry so a restart replays its charge."""
    return {"cost": {"epsilon": float(exact_epsilon(epsilon))}}


def _day(entry: Mapping[str, Any]) -> date:
    return datetime.fromisoformat(str(entry["time"])).astimezone(UTC).date()


def charges_from_entries(entries: Iterable[Mapping[str, Any]]) -> list[Charge]:
    """The charges an audit log holds: allowed decisions with `cost.epsilon`, less the sessions
    refunded afterwards (a failure or abort entry with `refunded`). Entries without an epsilon
    cost nothing."""
    charges: dict[str, Charge] = {}
    for e in entries:
        event, session = e.get("event"), str(e.get("session", ""))
        cost = e.get("cost")
        charged = event in ("decision", "budget") and e.get("decision") == "allow"
        if charged and isinstance(cost, Mapping) and "epsilon" in cost:
            spent = exact_epsilon(cost["epsilon"], f"the audit entry of session {session!r}: cost.epsilon")
            earlier = charges.get(session)
            charges[session] = Charge(str(e.get("analyst")), session,
                                      spent + (earlier.epsilon if earlier else 0), _day(e))
        elif event in ("failure", "abort") and e.get("refunded") is True:
            charges.pop(session, None)
    return list(charges.values())


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _show(x: Fraction) -> str:
    return f"{float(x):g}"


class PrivacyBudget:
    """The epsilon each analyst has spent at one site, safe for concurrent queries in one node.

    Seed it from the audit log (`from_audit`) so a restart keeps every analyst's spending.
    """

    def __init__(self, site: str, limits: BudgetLimits, charges: Iterable[Charge] = (),
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.site = site
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._charges: dict[str, Charge] = {}
        self._daily: dict[tuple[str, date], Fraction] = {}
        self._total: dict[str, Fraction] = {}
        for c in charges:
            self._add(c, 1)

    @staticmethod
    def from_audit(path: str | Path, site: str, limits: BudgetLimits,
                   clock: Callable[[], datetime] = _utc_now) -> PrivacyBudget:
        """Every analyst's spending from a node's audit log (`charges_from_entries`); none if there is no log."""
        return PrivacyBudget(site, limits, charges_from_entries(read_entries(path)), clock)

    def _today(self) -> date:
        return self._clock().astimezone(UTC).date()

    def _add(self, c: Charge, sign: int) -> None:
        self._daily[(c.analyst, c.day)] = self._daily.get((c.analyst, c.day), Fraction(0)) + sign * c.epsilon
        self._total[c.analyst] = self._total.get(c.analyst, Fraction(0)) + sign * c.epsilon
        if sign > 0:
            self._charges[c.session] = c
        else:
            del self._charges[c.session]

    def _left(self, analyst: str) -> list[tuple[Fraction, str]]:
        """What is left under each limit, with the limit's description."""
        out = []
        if self.limits.per_day is not None:
            spent = self._daily.get((analyst, self._today()), Fraction(0))
            out.append((self.limits.per_day - spent, f"daily privacy budget (epsilon {_show(self.limits.per_day)} "
                                                     "per UTC day)"))
        if self.limits.total is not None:
            out.append((self.limits.total - self._total.get(analyst, Fraction(0)),
                        f"total privacy budget (epsilon {_show(self.limits.total)})"))
        return out

    def spent(self, analyst: str) -> tuple[Fraction, Fraction]:
        """Epsilon this analyst has spent here today (UTC) and in total."""
        with self._lock:
            return self._daily.get((analyst, self._today()), Fraction(0)), self._total.get(analyst, Fraction(0))

    def remaining(self, analyst: str) -> Fraction | None:
        """The most epsilon one query may still spend here (the tighter limit); None: no limit."""
        with self._lock:
            left = self._left(analyst)
        return min(x for x, _ in left) if left else None

    def charge(self, analyst: str, epsilon: Any, session: str) -> BudgetDecision:
        """Atomically: refuse if `epsilon` overruns a limit, else record the charge for `session`.

        Two concurrent queries cannot both take the last of a budget. BudgetError (nothing
        charged) for a non-positive or non-numeric epsilon, an empty session, or a session
        already charged.
        """
        amount = exact_epsilon(epsilon)
        if not isinstance(session, str) or not session:
            raise BudgetError("a privacy charge needs the query's session")
        with self._lock:
            if session in self._charges:
                raise BudgetError(f"session {session!r} was already charged at {self.site}")
            for left, which in sorted(self._left(analyst), key=lambda pair: pair[0]):
                if amount > left:
                    return BudgetDecision(
                        False,
                        f"analyst {analyst!r} has epsilon {_show(max(left, Fraction(0)))} left of {self.site}'s "
                        f"{which}; this query needs {_show(amount)}",
                    )
            self._add(Charge(analyst, session, amount, self._today()), 1)
            left_now = self._left(analyst)
        tail = f"; epsilon {_show(min(x for x, _ in left_now))} left" if left_now else ""
        return BudgetDecision(True, f"charged epsilon {_show(amount)} at {self.site}{tail}")

    def refund(self, session: str) -> bool:
        """Take back the charge of a query that never ran (to the day it was charged); False if none."""
        with self._lock:
            charge = self._charges.get(session)
            if charge is None:
                return False
            self._add(charge, -1)
            return True
