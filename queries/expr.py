"""Row expressions: the frozen tree of a WHERE condition, a derived column or an aggregate's argument.

The SQL front end (`queries.sql_expr`) compiles sqlglot's syntax tree into these nodes; the
type checker (`queries.typecheck`) checks them against the agreed schema; `queries.sql_text`
prints them, for people (canonical text, which also names derived columns) and for DuckDB,
which evaluates them on each party's own rows (`queries.evaluate`).

Every node is a frozen dataclass. A node's `pos` (1-based character in the query text) is
left out of equality, hashing and repr, so two spellings of one expression are equal and
a statement's repr (which the session binding hashes) does not depend on spacing.

For readable construction (tests, code), plain Python values are accepted: where a node
expects the expression a predicate is about (`Compare.left`, `InList.expr`, ...), a str is a
column name; where it expects a value, a plain value is a literal. So
`Compare("age", ">=", 50)` is `Compare(Column("age"), ">=", Literal(50))`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

Scalar = int | float | str | bool | None
"""A literal's value; None is SQL's NULL."""


def _pos() -> int | None:
    return field(default=None, compare=False, repr=False)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Column:
    name: str
    pos: int | None = _pos()


@dataclass(frozen=True)
class Literal:
    value: Scalar
    pos: int | None = _pos()


@dataclass(frozen=True)
class TypedLiteral:
    """DATE 'YYYY-MM-DD' or TIMESTAMP 'YYYY-MM-DD HH:MM:SS' (checked when parsed)."""

    type: str  # DATE | TIMESTAMP
    text: str
    pos: int | None = _pos()


@dataclass(frozen=True)
class Interval:
    """INTERVAL n unit: `value` a whole number, `unit` one of `INTERVAL_UNITS`."""

    value: Expr
    unit: str
    pos: int | None = _pos()


@dataclass(frozen=True)
class Neg:
    inner: Expr
    pos: int | None = _pos()


@dataclass(frozen=True)
class Arith:
    """`left op right` for op in + - * / // % || (/ divides as floating point, // truncates)."""

    left: Expr
    op: str
    right: Expr
    pos: int | None = _pos()


@dataclass(frozen=True)
class Compare:
    """`left op right` for op in = != < <= > >=."""

    left: Expr
    op: str
    right: Expr
    pos: int | None = _pos()

    def __post_init__(self) -> None:
        _coerce(self, "left", subject=True)
        _coerce(self, "right", subject=False)


@dataclass(frozen=True)
class Like:
    expr: Expr
    pattern: Expr
    ilike: bool = False
    pos: int | None = _pos()

    def __post_init__(self) -> None:
        _coerce(self, "expr", subject=True)
        _coerce(self, "pattern", subject=False)


@dataclass(frozen=True)
class InList:
    expr: Expr
    values: tuple[Expr, ...]
    pos: int | None = _pos()

    def __post_init__(self) -> None:
        _coerce(self, "expr", subject=True)
        object.__setattr__(self, "values", tuple(_value(v) for v in self.values))


@dataclass(frozen=True)
class Between:
    expr: Expr
    low: Expr
    high: Expr
    pos: int | None = _pos()

    def __post_init__(self) -> None:
        _coerce(self, "expr", subject=True)
        _coerce(self, "low", subject=False)
        _coerce(self, "high", subject=False)


@dataclass(frozen=True)
class IsNull:
    expr: Expr
    negated: bool = False
    pos: int | None = _pos()

    def __post_init__(self) -> None:
        _coerce(self, "expr", subject=True)


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr
    pos: int | None = _pos()


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr
    pos: int | None = _pos()


@dataclass(frozen=True)
class Not:
    inner: Expr
    pos: int | None = _pos()


@dataclass(frozen=True)
class Case:
    """CASE WHEN cond THEN value ... [ELSE default] END (a simple CASE x WHEN v is compiled to x = v)."""

    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None = None
    pos: int | None = _pos()


@dataclass(frozen=True)
class Cast:
    """CAST(expr AS type), type one of `CAST_TYPES`."""

    expr: Expr
    type: str
    pos: int | None = _pos()


@dataclass(frozen=True)
class Extract:
    """EXTRACT(part FROM expr), part one of `EXTRACT_PARTS`."""

    part: str
    expr: Expr
    pos: int | None = _pos()


@dataclass(frozen=True)
class Func:
    """A scalar function of `queries.typecheck.FUNCTIONS`, by its canonical upper-case name."""

    name: str
    args: tuple[Expr, ...]
    pos: int | None = _pos()


Expr = (
    Column | Literal | TypedLiteral | Interval | Neg | Arith | Compare | Like | InList | Between | IsNull | And | Or
    | Not | Case | Cast | Extract | Func
)
NODES = (Column, Literal, TypedLiteral, Interval, Neg, Arith, Compare, Like, InList, Between, IsNull, And, Or, Not,
         Case, Cast, Extract, Func)

CAST_TYPES = ("BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP")
EXTRACT_PARTS = ("YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "DOW", "DOY", "HOUR", "MINUTE", "SECOND", "EPOCH")
INTERVAL_UNITS = ("YEAR", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND")


def _value(v: object) -> Expr:
    return v if isinstance(v, NODES) else Literal(v)  # type: ignore[arg-type]


def _coerce(node: object, name: str, subject: bool) -> None:
    v = getattr(node, name)
    if not isinstance(v, NODES):
        object.__setattr__(node, name, Column(v) if subject and isinstance(v, str) else Literal(v))


def children(expr: Expr) -> Iterator[Expr]:
    """The direct sub-expressions of a node, in the order they are written."""
    for f in fields(expr):
        v = getattr(expr, f.name)
        if isinstance(v, NODES):
            yield v  # type: ignore[misc]
        elif isinstance(v, tuple):
            for item in v:
                if isinstance(item, tuple):
                    yield from (x for x in item if isinstance(x, NODES))
                elif isinstance(item, NODES):
                    yield item  # type: ignore[misc]


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of the tree, parents before children, left to right."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def columns_of(expr: Expr | None) -> tuple[str, ...]:
    """The columns an expression reads, in order of first mention."""
    if expr is None:
        return ()
    return tuple(dict.fromkeys(n.name for n in walk(expr) if isinstance(n, Column)))


def mentions(expr: Expr | None) -> list[tuple[str, int]]:
    """(column, position) of every column mention that has a position."""
    if expr is None:
        return []
    return [(n.name, n.pos) for n in walk(expr) if isinstance(n, Column) and n.pos is not None]


def position(expr: Expr) -> int | None:
    """The node's own position, or its first sub-expression's."""
    if expr.pos is not None:
        return expr.pos
    for child in children(expr):
        found = position(child)
        if found is not None:
            return found
    return None
