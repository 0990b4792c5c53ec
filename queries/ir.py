"""The frozen intermediate representation of a query: what it means, not how it runs.

The parser (`queries.parser`, with sqlglot for SQL) builds these nodes; the compiler turns
them into a `Plan`. Every node is an immutable dataclass, so a parsed query can be hashed
(the audit log records a plan hash; the session binding hashes the statement's repr) and
compared in tests. Positions in the query text and the text itself ride along for error
messages but are left out of equality, hashing and repr: two spellings of one query that
differ only in case or spacing are the same statement.

Row expressions (WHERE, derived columns) are `queries.expr` trees. A SELECT's grouping
expressions and aggregate arguments that are not plain columns become `Derived` columns,
named by their canonical text (`queries.sql_text`), which every party computes from its own
rows before anything else; from there on they are columns like the table's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from queries.expr import And, Between, Column, Compare, Expr, InList, IsNull, Literal, Not, Or, columns_of

__all__ = ["And", "Between", "Column", "Compare", "Expr", "InList", "IsNull", "Literal", "Not", "Or"]

Value = int | float | str
Condition = Expr

AGGREGATES = ("COUNT", "SUM", "AVG", "VAR", "STDDEV", "MIN", "MAX", "MEDIAN", "QUANTILE", "CORR")
Mentions = tuple[tuple[str, int], ...]


def _hidden(default: object) -> object:
    return field(default=default, compare=False, repr=False)


# -- statements --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Aggregate:
    """One aggregate: `func` over `column` (None for COUNT(*)), a second column for CORR, q for QUANTILE.
    A column is a table column or a `Derived` one, by name."""

    func: str
    column: str | None = None
    column2: str | None = None
    q: float | None = None
    alias: str | None = None
    pos: int | None = _hidden(None)  # type: ignore[assignment]

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
class Interval:
    """AVG_CI(x), PROPORTION(condition) or RATE(events, person_time): an estimate and its 95% CI, which
    the analyst computes from released aggregates (`queries.intervals`); `parts` index the statement's
    `aggregates` (AVG_CI: AVG, COUNT, STDDEV; PROPORTION: SUM, COUNT of the 0/1 indicator; RATE: the
    two SUMs over the rows where both are present)."""

    kind: str
    name: str
    parts: tuple[int, ...]


@dataclass(frozen=True)
class Derived:
    """A column each party computes from its own rows: `expr`, named by its canonical text."""

    name: str
    expr: Expr


@dataclass(frozen=True)
class Output:
    """A column of a SELECT's result, in SELECT order: its name, and what it shows — grouping
    column `index` of `group_by` ("group") or aggregate `index` of `aggregates` ("aggregate")."""

    name: str
    source: str
    index: int


@dataclass(frozen=True)
class OrderKey:
    """ORDER BY one result column (by its name); applied by the analyst to the released rows."""

    column: str
    descending: bool = False
    nulls_first: bool = False


@dataclass(frozen=True)
class Select:
    aggregates: tuple[Aggregate, ...]
    where: Expr | None = None
    group_by: tuple[str, ...] = ()
    derived: tuple[Derived, ...] = ()
    output: tuple[Output, ...] = ()
    """The result's columns in SELECT order; empty: the grouping columns, then the aggregates.
    An interval's three columns (estimate, ci95_low, ci95_high) are ("interval", 3 j + part)."""
    order_by: tuple[OrderKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    having: Expr | None = None
    """Over result names (an aggregate hidden from the result is in `aggregates`, not in `output`)."""
    source: str | None = None  # the table named in FROM
    text: str = _hidden("")  # type: ignore[assignment]
    mentions: Mentions = _hidden(())  # type: ignore[assignment]
    intervals: tuple[Interval, ...] = ()
    """AVG_CI, PROPORTION and RATE items: computed by the analyst from hidden `aggregates`."""
    weight: str | None = None
    """SELECT ... WEIGHT w: the weight column; the aggregates are then weighted (`queries.weights_select`)."""


@dataclass(frozen=True)
class Crosstab:
    """CROSSTAB row BY col [STRATA s]: with STRATA, a 2 x 2 table per level of s, pooled by
    Mantel-Haenszel (`queries.strata_plan`)."""

    row: str
    col: str
    where: Expr | None = None
    source: str | None = None
    text: str = _hidden("")  # type: ignore[assignment]
    mentions: Mentions = _hidden(())  # type: ignore[assignment]
    strata: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the table reads: row, column and the strata column if any."""
        return (self.row, self.col) + ((self.strata,) if self.strata else ())


@dataclass(frozen=True)
class Regression:
    """LINEAR, LOGISTIC or POISSON `outcome ~ formula`: the right-hand side as written (a statsmodels
    formula, read by formulaic: `queries.formula`) but for a POISSON offset(...) term, whose code
    is `offset` (`queries.offset`), with the columns both read. COX `time, event ~ formula`: the
    outcome is the event column, `time` the time column on the grid of width `every` (`queries.cox`)."""

    kind: str  # LINEAR, LOGISTIC, POISSON or COX
    outcome: str
    formula: str
    columns: tuple[str, ...] = ()  # every column the formula reads, in order of first mention
    categorical: tuple[str, ...] = ()  # columns inside C(...)
    where: Expr | None = None
    maxiter: int = 35
    tol: float = 1e-8
    source: str | None = None
    text: str = _hidden("")  # type: ignore[assignment]
    mentions: Mentions = _hidden(())  # type: ignore[assignment]
    offset: str | None = None  # POISSON: the code inside offset(...), e.g. "np.log(person_years)"
    weight: str | None = None  # WEIGHT w: the weight column (`queries.weights`)
    robust: bool = False  # WEIGHT w ROBUST: inverse-probability weights, HC0 standard errors
    time: str | None = None  # COX: the time column
    every: float = 1.0  # COX: the width of the public time grid

    def model_text(self) -> str:
        """`outcome ~ formula`, with the offset term as written (COX: `time, event ~ formula`)."""
        tail = f" + offset({self.offset})" if self.offset else ""
        head = f"{self.time}, {self.outcome}" if self.time else self.outcome
        return f"{head} ~ {self.formula}{tail}"


@dataclass(frozen=True)
class Survival:
    """SURVIVAL time, event [BY group] [EVERY w]: the Kaplan-Meier curve per group on a public time grid
    of width `every` (a time t counts at the grid point ceil(t / every) every), and with BY the log-rank
    test across the groups (`queries.survival_plan`)."""

    time: str
    event: str
    group: str | None = None
    every: float = 1.0
    where: Expr | None = None
    source: str | None = None
    text: str = _hidden("")  # type: ignore[assignment]
    mentions: Mentions = _hidden(())  # type: ignore[assignment]

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the curve reads: time, event and the grouping column if any."""
        return (self.time, self.event) + ((self.group,) if self.group else ())


@dataclass(frozen=True)
class Explain:
    inner: Statement


Statement = Select | Crosstab | Regression | Survival | Explain


def condition_columns(cond: Expr | None) -> set[str]:
    """Every column a condition reads."""
    return set(columns_of(cond))


def derived_names(stmt: Statement) -> set[str]:
    """The names of a statement's derived columns (not table columns)."""
    inner = stmt.inner if isinstance(stmt, Explain) else stmt
    return {d.name for d in inner.derived} if isinstance(inner, Select) else set()


def statement_columns(stmt: Statement) -> set[str]:
    """Every table column a statement reads (for per-site column policies and the schema check),
    including those read by its derived columns."""
    if isinstance(stmt, Explain):
        return statement_columns(stmt.inner)
    if isinstance(stmt, Select):
        derived = {d.name for d in stmt.derived}
        named = {c for a in stmt.aggregates for c in a.columns} | set(stmt.group_by)
        read = {c for d in stmt.derived for c in columns_of(d.expr)}
        return (named - derived) | read | condition_columns(stmt.where)
    if isinstance(stmt, Crosstab):
        return set(stmt.columns) | condition_columns(stmt.where)
    if isinstance(stmt, Survival):
        return set(stmt.columns) | condition_columns(stmt.where)
    extra = ({stmt.weight} if stmt.weight else set()) | ({stmt.time} if stmt.time else set())
    return {stmt.outcome} | set(stmt.columns) | extra | condition_columns(stmt.where)


def source_text(stmt: Statement) -> str:
    """The query text a statement was parsed from ("" if it was built in code)."""
    return source_text(stmt.inner) if isinstance(stmt, Explain) else stmt.text


def position_of(stmt: Statement, name: str) -> int | None:
    """The position of the first mention of a column, derived column or result name in the
    query (recorded by the parser; None if it has none)."""
    if isinstance(stmt, Explain):
        return position_of(stmt.inner, name)
    return next((pos for n, pos in stmt.mentions if n == name), None)
