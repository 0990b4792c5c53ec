"""A site's own rules for every query, decided locally before the node takes part.

Loaded from a TOML file (`pooled node --policy FILE`):

    min_cell = 10                    # minimum cell size this site requires (the largest applies)
    max_param_fraction = 0.33        # most model parameters per complete case
    max_queries_per_day = 200        # per analyst, UTC day
    allowed_columns = ["age", "sex"] # optional: columns a query may read
    [analysts]
    alice = ["counts", "statistics", "regression"]
    bob = ["counts"]

Roles: a SELECT of COUNTs only and a CROSSTAB need `counts`; other aggregates need
`statistics`; LINEAR and LOGISTIC need `regression`; EXPLAIN needs a known analyst. An
analyst not listed may do nothing. Without a policy file a node allows every analyst its
certificate authenticates, with the defaults above.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from queries import ir

ROLES = ("counts", "statistics", "regression")


@dataclass(frozen=True)
class SitePolicy:
    min_cell: int = 5
    max_param_fraction: float = 0.33
    max_queries_per_day: int = 1000
    allowed_columns: frozenset[str] | None = None
    analysts: dict[str, frozenset[str]] | None = field(default=None)
    """None: every authenticated analyst has every role."""

    @staticmethod
    def load(path: str | Path) -> SitePolicy:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read the policy {p}: {exc}") from exc
        analysts = raw.get("analysts")
        table = None
        if analysts is not None:
            table = {}
            for name, roles in analysts.items():
                bad = [r for r in roles if r not in ROLES]
                if bad:
                    raise ValueError(f"{p}: analyst {name!r} has unknown roles {bad} (known: {', '.join(ROLES)})")
                table[name] = frozenset(roles)
        cols = raw.get("allowed_columns")
        return SitePolicy(
            min_cell=int(raw.get("min_cell", 5)),
            max_param_fraction=float(raw.get("max_param_fraction", 0.33)),
            max_queries_per_day=int(raw.get("max_queries_per_day", 1000)),
            allowed_columns=frozenset(cols) if cols is not None else None,
            analysts=table,
        )


def role_needed(stmt: ir.Statement) -> str | None:
    if isinstance(stmt, ir.Explain):
        return None
    if isinstance(stmt, ir.Regression):
        return "regression"
    if isinstance(stmt, ir.Crosstab):
        return "counts"
    assert isinstance(stmt, ir.Select)
    return "counts" if all(a.func == "COUNT" for a in stmt.aggregates) else "statistics"


def decide(policy: SitePolicy, analyst: str, stmt: ir.Statement, today: int) -> tuple[bool, str]:
    """(allowed, reason): this site's decision on one query by one analyst."""
    roles = None if policy.analysts is None else policy.analysts.get(analyst)
    if policy.analysts is not None and roles is None:
        return False, f"analyst {analyst!r} is not authorised at this site"
    needed = role_needed(stmt)
    if needed is not None and roles is not None and needed not in roles:
        return False, f"analyst {analyst!r} lacks the {needed!r} role at this site"
    if today >= policy.max_queries_per_day:
        return False, f"analyst {analyst!r} reached this site's limit of {policy.max_queries_per_day} queries per day"
    if policy.allowed_columns is not None:
        extra = sorted(ir.statement_columns(stmt) - policy.allowed_columns)
        if extra:
            return False, f"this site does not allow queries on column {extra[0]!r}"
    return True, "allowed by site policy"
