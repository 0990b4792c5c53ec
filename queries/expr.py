"""Row expressions: the frozen tree of a WHERE condition, a derived column or an aggregate's argument.

The SQL front end (`queries.sql_expr`) compiles sqlglot's syntax tree into these nodes; the
type checker (`queries.typecheck`) checks them against the agreed schema; `queries.sql_text`
prints them, for people (canonical text, which also names derived columns) and for DuckDB,
which evaluates them on each party's own rows (`queries.evaluate`).

Every node is a frozen dataclass (a subclass of `Node`). A node's `pos` (1-based character
in the query text, a keyword argument) is left out of equality, hashing and repr, so two
spellings of one expression are equal and a statement's repr (which the session binding
hashes) does not depend on spacing.

For readable construction (tests, code), plain Python values are accepted: where a node
expects the expression a predicate is about (`Compare.left`, `InList.expr`, ...), a str is a
column name; where it expects a value, a plain value is a literal. So
`Compare("age", ">=", 50)` is `Compare(Column("age"), ">=", Literal(50))`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import ClassVar, dataclass_transform

Scalar = int | float | str | bool | None
"""A literal's value; None is SQL's NULL."""


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
@dataclass(frozen=True)
class Node:
    """The base of every node: each subclass is made a frozen dataclass with the fields it declares.

    `pos` is keyword-only and left out of equality, hashing and repr. Where a subclass names
    `_subject`, a plain str in that field is a column and any other plain value a literal;
    in the fields of `_values`, a plain value is a literal.
    """

    pos: int | None = field(default=None, compare=False, repr=False, kw_only=True)
    _subject: ClassVar[str] = ""
    _values: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True)(cls)

    def __post_init__(self) -> None:
        if self._subject:
            _coerce(self, self._subject, subject=True)
        for name in self._values:
            _coerce(self, name, subject=False)


class Column(Node):
    name: str


class Literal(Node):
    value: Scalar


class TypedLiteral(Node):
    """DATE 'YYYY-MM-DD' or TIMESTAMP 'YYYY-MM-DD HH:MM:SS' (checked when parsed)."""

    type: str  # DATE | TIMESTAMP
    text: str


class Interval(Node):
    """INTERVAL n unit: `value` a whole number, `unit` one of `INTERVAL_UNITS`."""

    value: Expr
    unit: str


class _Unary(Node):
    """An operator on one expression."""

    inner: Expr


class Neg(_Unary):
    """-inner."""


class Not(_Unary):
    """NOT inner."""


class _Infix(Node):
    """An operator between two expressions, by its symbol."""

    left: Expr
    op: str
    right: Expr


class Arith(_Infix):
    """`left op right` for op in + - * / // % || (/ divides as floating point, // truncates)."""


class Compare(_Infix):
    """`left op right` for op in = != < <= > >=."""

    _subject = "left"
    _values = ("right",)


class _Connective(Node):
    """`left AND right` or `left OR right`."""

    left: Expr
    right: Expr


class And(_Connective):
    """Both conditions hold."""


class Or(_Connective):
    """At least one condition holds."""


class Like(Node):
    expr: Expr
    pattern: Expr
    ilike: bool = False

    _subject = "expr"
    _values = ("pattern",)


class InList(Node):
    expr: Expr
    values: tuple[Expr, ...]

    _subject = "expr"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "values", tuple(_value(v) for v in self.values))


class Between(Node):
    expr: Expr
    low: Expr
    high: Expr

    _subject = "expr"
    _values = ("low", "high")


class IsNull(Node):
    expr: Expr
    negated: bool = False

    _subject = "expr"


class Case(Node):
    """CASE WHEN cond THEN value ... [ELSE default] END (a simple CASE x WHEN v is compiled to x = v)."""

    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None = None


class Cast(Node):
    """CAST(expr AS type), type one of `CAST_TYPES`."""

    expr: Expr
    type: str


class Extract(Node):
    """EXTRACT(part FROM expr), part one of `EXTRACT_PARTS`."""

    part: str
    expr: Expr


class Func(Node):
    """A scalar function of `queries.typecheck.FUNCTIONS`, by its canonical upper-case name."""

    name: str
    args: tuple[Expr, ...]


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
