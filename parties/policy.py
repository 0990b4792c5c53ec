"""A site's own rules for every query, decided locally before the node takes part.

Each site decides (zero trust): a node checks every query against its own `SitePolicy`
before it reads any data or sends any message; if it refuses, the query fails for the
analyst with this site's reason. The policy is a TOML table — the `[policy]` table of a
node's configuration (`parties/config.py`), or a file of its own (`pooled node --policy`):

    min_cell = 10                    # minimum contributing rows per released number (the largest applies)
    allow_extremes = false           # MIN, MAX, QUANTILE(x, 0 or 1): refused unless true (default false)
    release_zero = true              # a count of 0 is released as 0; false: 0 is suppressed like 1..k-1
    max_param_fraction = 0.33        # most model parameters per complete case
    max_queries_per_day = 200        # per analyst, per UTC day (allowed queries are counted)
    allowed_columns = ["age", "sex"] # optional: the only columns a query may read
    disclosure = "threshold"         # or "dp": differential privacy (any site on dp makes a query DP)
    epsilon_per_query = 1.0          # dp: a query's epsilon when the analyst asks none (the smallest applies)
    epsilon_per_day = 1.0            # optional: each analyst's privacy budget per UTC day (`parties.budget`)
    epsilon_total = 10.0             # optional: each analyst's privacy budget over all time
    [bounds]                         # dp: the range this site vouches for each numeric column (the widest applies)
    bmi = [10, 80]
    [analysts]                       # optional: who may do what; absent = every analyst, every role
    alice = ["counts", "statistics", "regression"]
    bob = ["counts"]

Roles by query kind (`ROLE_FOR_KIND`):

    count      SELECT of COUNT(*) / COUNT(col) only      -> counts
    crosstab   CROSSTAB row BY col                       -> counts
    aggregate  SELECT with any other aggregate, SURVIVAL -> statistics
    linear     LINEAR y ~ ...                            -> regression
    logistic   LOGISTIC y ~ ...                          -> regression
    poisson    POISSON y ~ ...                           -> regression
    cox        COX time, event ~ ...                     -> regression
    explain    EXPLAIN <query>                           -> no role, but a listed analyst

EXPLAIN releases no statistic, but it does run the parties' metadata exchange and the
private union of grouping domains, and it tells the analyst those category values; so it
needs a listed analyst, may read only allowed columns, and counts against the daily limit.
An analyst not listed may do nothing.

MIN and MAX (and QUANTILE at 0 or 1, the same numbers) release one patient's exact value,
so a site refuses them unless its policy says `allow_extremes = true`; since any site's
refusal fails the query, the strictest site wins.

The minimum cell size, `release_zero` and the parameter fraction never refuse a query here:
they are enforced in the plan (the largest k, the smallest fraction and zeros only if every
site releases them; suppression is decided inside MPC). `effective_min_cell` is the k this
site takes part with.

`decide_query` is a pure function of plain facts (kind, columns, today's count); `decide`
extracts those facts from a parsed statement. `QueryCounter` keeps today's counts per
analyst, seeded from the audit log so a restart does not reset the limit.
"""

from __future__ import annotations

import math
import threading
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from parties.audit import admitted_per_day
from parties.budget import BUDGET_KEYS, BudgetError, BudgetLimits, exact_epsilon
from queries import ir

ROLES = ("counts", "statistics", "regression")
ROLE_FOR_KIND: Mapping[str, str | None] = {
    "count": "counts",
    "crosstab": "counts",
    "aggregate": "statistics",
    "linear": "regression",
    "logistic": "regression",
    "poisson": "regression",
    "cox": "regression",
    "explain": None,
}
QUERY_KINDS = tuple(ROLE_FOR_KIND)
_KEYS = ("min_cell", "max_param_fraction", "max_queries_per_day", "allowed_columns", "analysts", "allow_extremes",
         "release_zero", "disclosure", "epsilon_per_query", "bounds", *BUDGET_KEYS)
DISCLOSURES = ("threshold", "dp")
EXTREME_FUNCS = frozenset({"MIN", "MAX"})


class PolicyError(ValueError):
    """A policy table is malformed; the message names the source and the key."""


@dataclass(frozen=True)
class SitePolicy:
    min_cell: int = 5
    max_param_fraction: float = 0.33
    max_queries_per_day: int = 1000
    allowed_columns: frozenset[str] | None = None
    """None: every column."""
    analysts: Mapping[str, frozenset[str]] | None = field(default=None)
    """None: every authenticated analyst has every role."""
    allow_extremes: bool = False
    """MIN, MAX and QUANTILE at 0 or 1 release single patients' values: refused unless True."""
    release_zero: bool = True
    """A count of 0 is released as 0 (as DataSHIELD does); False: suppressed like 1..k-1."""
    disclosure: str = "threshold"
    """"threshold" (minimum cell size) or "dp" (differential privacy: `queries.dp`)."""
    epsilon_per_query: float = 1.0
    """Under dp, a query's epsilon when the analyst asks for none (the smallest site's applies)."""
    budget: BudgetLimits = field(default_factory=BudgetLimits)
    """Each analyst's epsilon per UTC day and in total at this site (`parties.budget`)."""
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))
    """Under dp, the [min, max] this site declares for numeric columns (the widest over the sites applies)."""

    @staticmethod
    def load(path: str | Path) -> SitePolicy:
        """A policy file of its own (the whole file is the table)."""
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"cannot read the policy {p}: {exc}") from exc
        return SitePolicy.from_table(raw, str(p))

    @staticmethod
    def from_table(raw: Mapping[str, Any], source: str = "policy") -> SitePolicy:
        """A policy from a parsed TOML table; errors name `source` and the key."""
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise PolicyError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})")
        min_cell = _int(raw, "min_cell", 5, source, low=1)
        fraction = raw.get("max_param_fraction", 0.33)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise PolicyError(f"{source}: max_param_fraction must be a number in (0, 1], got {fraction!r}")
        per_day = _int(raw, "max_queries_per_day", 1000, source, low=0)
        cols = raw.get("allowed_columns")
        if cols is not None and (not isinstance(cols, list) or not all(isinstance(c, str) for c in cols)):
            raise PolicyError(f"{source}: allowed_columns must be a list of column names")
        disclosure = raw.get("disclosure", "threshold")
        if disclosure not in DISCLOSURES:
            raise PolicyError(f"{source}: disclosure must be one of {', '.join(DISCLOSURES)}, got {disclosure!r}")
        try:
            budget = BudgetLimits.from_table(raw, source)
            per_query = float(exact_epsilon(raw.get("epsilon_per_query", 1.0), f"{source}: epsilon_per_query"))
        except BudgetError as exc:
            raise PolicyError(str(exc)) from None
        return SitePolicy(min_cell, float(fraction), per_day, frozenset(cols) if cols is not None else None,
                          _analysts(raw.get("analysts"), source), _bool(raw, "allow_extremes", False, source),
                          _bool(raw, "release_zero", True, source), disclosure, per_query, budget,
                          _bounds(raw.get("bounds"), source))

    def to_table(self) -> dict[str, Any]:
        """The TOML table this policy loads from (for writing configuration files)."""
        table: dict[str, Any] = {
            "min_cell": self.min_cell,
            "max_param_fraction": self.max_param_fraction,
            "max_queries_per_day": self.max_queries_per_day,
            "allow_extremes": self.allow_extremes,
            "release_zero": self.release_zero,
        }
        if self.disclosure != "threshold" or self.epsilon_per_query != 1.0:
            table.update(disclosure=self.disclosure, epsilon_per_query=self.epsilon_per_query)
        table.update(self.budget.to_table())
        if self.bounds:
            table["bounds"] = {c: list(b) for c, b in self.bounds.items()}
        if self.allowed_columns is not None:
            table["allowed_columns"] = sorted(self.allowed_columns)
        if self.analysts is not None:
            table["analysts"] = {name: sorted(roles) for name, roles in self.analysts.items()}
        return table


def _int(raw: Mapping[str, Any], key: str, default: int, source: str, low: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PolicyError(f"{source}: {key} must be an integer >= {low}, got {value!r}")
    return value


def _bool(raw: Mapping[str, Any], key: str, default: bool, source: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError(f"{source}: {key} must be true or false, got {value!r}")
    return value


def _bounds(raw: Any, source: str) -> Mapping[str, tuple[float, float]]:
    """`bounds = { col = [min, max] }`: finite numbers with min < max."""
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{source}: bounds must be a table of column = [min, max]")
    table = {}
    for col, pair in raw.items():
        ok = isinstance(pair, list) and len(pair) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair)
        if not ok or pair[0] >= pair[1]:
            raise PolicyError(f"{source}: bounds.{col} must be [min, max], two finite numbers with min < max, "
                              f"got {pair!r}")
        table[str(col)] = (float(pair[0]), float(pair[1]))
    return MappingProxyType(table)


def _analysts(raw: Any, source: str) -> Mapping[str, frozenset[str]] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{source}: analysts must be a table of name = [roles]")
    table = {}
    for name, roles in raw.items():
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise PolicyError(f"{source}: analysts.{name} must be a list of roles ({', '.join(ROLES)})")
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise PolicyError(f"{source}: analyst {name!r} has unknown roles {bad} (known: {', '.join(ROLES)})")
        table[name] = frozenset(roles)
    return MappingProxyType(table)


class Decision(NamedTuple):
    """A site's answer to one query; `reason` is what the analyst is told."""

    allowed: bool
    reason: str


def decide_query(
    policy: SitePolicy, analyst: str, kind: str, columns: Iterable[str], today: int, extremes: Iterable[str] = ()
) -> Decision:
    """This site's decision on one query, from plain facts (pure; no I/O).

    1. The analyst must be listed (when the policy lists analysts).
    2. The analyst must hold the role the query kind needs (`ROLE_FOR_KIND`).
    3. `today` (queries this analyst was allowed today, UTC) must be below the daily limit.
    4. Every column the query reads must be allowed (the first offending one is named).
    5. `extremes` (the query's MIN/MAX-like aggregates, by name) must be empty unless the
       policy sets `allow_extremes`.
    """
    if kind not in ROLE_FOR_KIND:
        raise ValueError(f"unknown query kind {kind!r} (known: {', '.join(QUERY_KINDS)})")
    roles = None if policy.analysts is None else policy.analysts.get(analyst)
    if policy.analysts is not None and roles is None:
        return Decision(False, f"analyst {analyst!r} is not authorised at this site")
    needed = ROLE_FOR_KIND[kind]
    if needed is not None and roles is not None and needed not in roles:
        return Decision(False, f"analyst {analyst!r} lacks the {needed!r} role at this site")
    if today >= policy.max_queries_per_day:
        return Decision(
            False, f"analyst {analyst!r} reached this site's limit of {policy.max_queries_per_day} queries per day"
        )
    if policy.allowed_columns is not None:
        extra = sorted(set(columns) - policy.allowed_columns)
        if extra:
            return Decision(False, f"this site does not allow queries on column {extra[0]!r}")
    asked = sorted(set(extremes))
    if asked and not policy.allow_extremes:
        return Decision(
            False,
            f"this site's policy does not release extremes ({asked[0]} gives one patient's exact value; "
            "allow_extremes = false)",
        )
    return Decision(True, "allowed by site policy")


def query_kind(stmt: ir.Statement) -> str:
    """The policy's kind of a parsed statement (one of `QUERY_KINDS`)."""
    if isinstance(stmt, ir.Explain):
        return "explain"
    if isinstance(stmt, ir.Regression):
        return stmt.kind.lower()
    if isinstance(stmt, ir.Crosstab):
        return "crosstab"
    if isinstance(stmt, ir.Survival):
        return "aggregate"
    assert isinstance(stmt, ir.Select)
    return "count" if all(a.func == "COUNT" for a in stmt.aggregates) else "aggregate"


def role_needed(stmt: ir.Statement) -> str | None:
    return ROLE_FOR_KIND[query_kind(stmt)]


def extreme_aggregates(stmt: ir.Statement) -> list[str]:
    """The aggregates of a statement that release one value's exact magnitude: MIN, MAX, QUANTILE(x, 0 or 1)."""
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    if not isinstance(inner, ir.Select):
        return []
    return [
        a.name for a in inner.aggregates
        if a.func in EXTREME_FUNCS or (a.func == "QUANTILE" and a.q is not None and a.q in (0.0, 1.0))
    ]


def decide(policy: SitePolicy, analyst: str, stmt: ir.Statement, today: int) -> Decision:
    """`decide_query` on the facts of a parsed statement (EXPLAIN: the inner query's columns)."""
    return decide_query(
        policy, analyst, query_kind(stmt), ir.statement_columns(stmt), today, extreme_aggregates(stmt)
    )


def effective_min_cell(policy: SitePolicy, requested: int | None = None) -> int:
    """The k this site takes part with: its own, or the analyst's if larger (never smaller)."""
    return max(policy.min_cell, int(requested or 0))


def _utc_now() -> datetime:
    return datetime.now(UTC)


class QueryCounter:
    """Queries allowed per analyst per UTC day, safe for concurrent queries in one node.

    Seed it from the audit log (`from_audit`) so a restart keeps today's counts. Only the
    current day's counts are kept; a new UTC day starts from zero.
    """

    def __init__(self, counts: Mapping[tuple[str, date], int] | None = None,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._day = self._today()
        self._counts = {a: n for (a, d), n in (counts or {}).items() if d == self._day}

    @staticmethod
    def from_audit(path: str | Path, clock: Callable[[], datetime] = _utc_now) -> QueryCounter:
        """Today's counts from a node's audit log (its allowed decisions); empty if there is no log."""
        return QueryCounter(admitted_per_day(path), clock)

    def _today(self) -> date:
        return self._clock().astimezone(UTC).date()

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self._counts = day, {}

    def today(self, analyst: str) -> int:
        with self._lock:
            self._roll()
            return self._counts.get(analyst, 0)

    def record(self, analyst: str) -> None:
        with self._lock:
            self._roll()
            self._counts[analyst] = self._counts.get(analyst, 0) + 1

    def refund(self, analyst: str) -> None:
        """Take back one query counted today (one that never ran because another site refused or failed first)."""
        with self._lock:
            self._roll()
            if self._counts.get(analyst, 0) > 0:
                self._counts[analyst] -= 1

    def admit(self, analyst: str, judge: Callable[[int], Decision]) -> Decision:
        """Atomically: judge(today's count); if allowed, count the query. Returns the decision.

        Two concurrent queries cannot both take the last query of the day.
        """
        with self._lock:
            self._roll()
            decision = judge(self._counts.get(analyst, 0))
            if decision.allowed:
                self._counts[analyst] = self._counts.get(analyst, 0) + 1
            return decision
