"""A site's declared schema over any data source: the kinds it promises and the category values it allows.

`Declared(source, kinds, domains, bounds)` is the source as the site declared it
(`[data.schema]`, `[data.domains]` of a node's configuration; a numeric column's `{ min, max }`
there is its declared range, `bounds`, used under differential privacy): its schema is the
declared one, after checking that the dataset has exactly the declared columns and that each
converts to its declared kind without loss (int -> float, anything -> category, an empty column
-> anything, a decimal column -> int only if every value is whole, counted by the source's own
SQL); and no row may hold a category value outside its declared domain (also counted in the
source). The rows are read as the kinds the parties agree on, so nothing is converted in Python. The errors are those of
`queries.table.conform`: they name columns and counts, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from queries import ir
from queries.errors import SchemaError
from queries.expr import And, Column, Compare, Func, InList, IsNull, Literal, Not
from queries.pushdown import Read
from queries.sources import Rows, Source
from queries.table import KINDS, Schema

if TYPE_CHECKING:
    import numpy as np

    from queries.plan import Plan
    from queries.pushdown_partials import Stat


class Declared(Source):
    """`source` with the site's declared kinds and domains (see the module docstring)."""

    def __init__(self, source: Source, kinds: Mapping[str, str] | None,
                 domains: Mapping[str, Sequence[str]] | None = None,
                 bounds: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.source = source
        self.name = source.name
        self.kinds = dict(kinds) if kinds is not None else None
        self.domains = {c: tuple(v) for c, v in (domains or {}).items()}
        self.bounds = {c: (float(lo), float(hi)) for c, (lo, hi) in (bounds or {}).items()}
        """Numeric column -> the (min, max) the site declares: under differential privacy the
        parties clamp to the widest of the sites' (`queries.dp`); values outside are clamped, not refused."""

    def describe(self) -> str:
        return self.source.describe()

    def schema(self) -> Schema:
        found = self.source.schema()
        have = dict(found.columns)
        if self.kinds is None:
            self._check_domains(have)
            return found
        missing = [c for c in self.kinds if c not in have]
        extra = [c for c in have if c not in self.kinds]
        if missing or extra:
            which = f"lacks the declared column {missing[0]!r}" if missing else f"has an undeclared column {extra[0]!r}"
            raise SchemaError(f"this site's table {which} ([data.schema])")
        for col, want in self.kinds.items():
            if want not in KINDS:
                raise SchemaError(f"declared kind of {col!r} must be one of {', '.join(KINDS)}, got {want!r}")
            kind = have[col]
            if kind == want or want == "category" or kind == "empty" or (want, kind) == ("float", "int"):
                continue
            if (want, kind) == ("int", "float") and not self._fractions(col):
                continue
            raise SchemaError(f"column {col!r} is declared {want} but holds {kind} values ([data.schema])")
        self._check_domains(have)
        return Schema(tuple(self.kinds.items()))

    def _fractions(self, col: str) -> int:
        """Rows whose value in a decimal column is not a whole number."""
        where = Compare(Column(col), "!=", Func("FLOOR", (Column(col),)))
        return self.source.count_where(Read(((col, "float"),), where=where))

    def _check_domains(self, have: Mapping[str, str]) -> None:
        for col, allowed in self.domains.items():
            if col not in have:
                raise SchemaError(f"a domain is declared for {col!r}, which the table lacks ([data.domains])")
            outside = Not(InList(Column(col), tuple(Literal(v) for v in allowed)))
            where = And(IsNull(Column(col), negated=True), outside)
            count = self.source.count_where(Read(((col, "category"),), where=where))
            if count:
                raise SchemaError(f"{count} row(s) of column {col!r} hold a value outside its declared domain")

    def rows(self, plan: Plan) -> Rows:
        return self.source.rows(plan)

    def partials(self, plan: Plan, stats: Sequence[Stat]) -> tuple[dict[Stat, np.ndarray], int]:
        return self.source.partials(plan, stats)

    def values(self, stmt: ir.Statement, kinds: Mapping[str, str], columns: Sequence[str]) -> dict[str, tuple]:
        return self.source.values(stmt, kinds, columns)

    def count_where(self, read: Read) -> int:
        return self.source.count_where(read)
