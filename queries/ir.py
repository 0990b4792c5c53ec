"""The frozen intermediate representation of a query: what it means, not how it runs.

The parser builds these nodes; the compiler turns them into a `Plan`. Every node is an
immutable dataclass, so a parsed query can be hashed (the audit log records a plan hash)
and compared in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

Value = int | float | str


# -- conditions -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Compare:
    column: str
    op: str  # one of = != < <= > >=
    value: Value


@dataclass(frozen=True)
class InList:
    column: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Between:
    column: str
    low: Value
    high: Value


@dataclass(frozen=True)
class IsNull:
    column: str
    negated: bool = False


@dataclass(frozen=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Not:
    inner: Condition


Condition = Compare | InList | Between | IsNull | And | Or | Not

AGGREGATES = ("COUNT", "SUM", "AVG", "VAR", "STDDEV", "MIN", "MAX", "MEDIAN", "QUANTILE", "CORR")


# -- statements --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Aggregate:
    """One aggregate: `func` over `column` (None for COUNT(*)), a second column for CORR, q for QUANTILE."""

    func: str
    column: str | None = None
    column2: str | None = None
    q: float | None = None
    alias: str | None = None

    @property
    def name(self) -> str:
        if self.alias:
            return self.alias
        if self.column is None:
            return "count"
        args = self.column if self.column2 is None else f"{self.column}, {self.column2}"
        if self.q is not None:
            args = f"{args}, {self.q:g}"
        return f"{self.func.lower()}({args})"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.column, self.column2) if c is not None)


@dataclass(frozen=True)
class Select:
    aggregates: tuple[Aggregate, ...]
    where: Condition | None = None
    group_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Crosstab:
    row: str
    col: str
    where: Condition | None = None


@dataclass(frozen=True)
class Regression:
    """LINEAR or LOGISTIC `outcome ~ formula`: the right-hand side as written (a statsmodels
    formula, read by formulaic: `queries.formula`), with the columns it reads."""

    kind: str  # LINEAR or LOGISTIC
    outcome: str
    formula: str
    columns: tuple[str, ...] = ()  # every column the formula reads, in order of first mention
    categorical: tuple[str, ...] = ()  # columns inside C(...)
    where: Condition | None = None
    maxiter: int = 35
    tol: float = 1e-8


@dataclass(frozen=True)
class Explain:
    inner: Statement


Statement = Select | Crosstab | Regression | Explain


def condition_columns(cond: Condition | None) -> set[str]:
    """Every column a condition reads."""
    if cond is None:
        return set()
    if isinstance(cond, (And, Or)):
        return condition_columns(cond.left) | condition_columns(cond.right)
    if isinstance(cond, Not):
        return condition_columns(cond.inner)
    return {cond.column}


def statement_columns(stmt: Statement) -> set[str]:
    """Every column a statement reads (for per-site column policies)."""
    if isinstance(stmt, Explain):
        return statement_columns(stmt.inner)
    if isinstance(stmt, Select):
        cols = {c for a in stmt.aggregates for c in a.columns} | set(stmt.group_by)
        return cols | condition_columns(stmt.where)
    if isinstance(stmt, Crosstab):
        return {stmt.row, stmt.col} | condition_columns(stmt.where)
    return {stmt.outcome} | set(stmt.columns) | condition_columns(stmt.where)
