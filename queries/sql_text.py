"""Expressions as SQL text: the canonical text people read, and the SQL DuckDB evaluates.

`text(expr)` is canonical: keywords upper case, function names lower case, single spaces,
parentheses only where precedence needs them, columns bare unless they need double quotes.
It names a derived column (`AVG(weight / (height * height))` reads the column
"weight / (height * height)") and appears in EXPLAIN. `duckdb(expr, names)` is the same
expression for DuckDB: every column renamed through `names` and quoted, every composite
operand parenthesised (so precedence never depends on the dialect), float literals written
as DOUBLE (never DECIMAL), `/` dividing as DOUBLE and every divisor guarded by NULLIF(divisor, 0),
so a division by zero is NULL in DuckDB and in every dialect the SQL is transpiled to
(`queries.pushdown`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from queries.expr import (
    And,
    Arith,
    Between,
    Case,
    Cast,
    Column,
    Compare,
    Expr,
    Extract,
    Func,
    InList,
    Interval,
    IsNull,
    Like,
    Literal,
    Neg,
    Not,
    Or,
    TypedLiteral,
)

_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED = frozenset(
    """ALL AND ANY AS ASC BETWEEN BY CASE CAST CROSSTAB DATE DESC DISTINCT ELSE END EXPLAIN EXTRACT FALSE FILTER
    FROM GROUP HAVING ILIKE IN INTERVAL IS JOIN LIKE LIMIT LINEAR LOGISTIC MAXITER NOT NULL OFFSET ON OR ORDER OVER
    SELECT THEN TIMESTAMP TOL TRUE UNION WHEN WHERE WITH WITHIN""".split()
)

_ATOM = 9
_PREC = {"OR": 1, "AND": 2, "NOT": 3, "CMP": 4, "||": 5, "+": 6, "-": 6, "*": 7, "/": 7, "//": 7, "%": 7, "NEG": 8}


def quote_name(name: str) -> str:
    """A column name as SQL: bare when it is a plain identifier and no keyword, else in double quotes."""
    if _SIMPLE.match(name) and name.upper() not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def literal(value: object, duck: bool = False) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        raw = repr(value)
        return raw + "e0" if duck and "e" not in raw and "E" not in raw else raw
    return str(value)


def text(expr: Expr) -> str:
    """The canonical text of an expression (see the module docstring)."""
    return _Printer(quote_name, duck=False).show(expr)


def duckdb(expr: Expr, names: Mapping[str, str]) -> str:
    """The expression as DuckDB SQL, column c read as the column names[c]."""
    return _Printer(lambda c: '"' + names[c].replace('"', '""') + '"', duck=True).show(expr)


def _prec(expr: Expr) -> int:
    if isinstance(expr, Or):
        return _PREC["OR"]
    if isinstance(expr, And):
        return _PREC["AND"]
    if isinstance(expr, Not):
        return _PREC["NOT"]
    if isinstance(expr, (Compare, Like, InList, Between, IsNull)):
        return _PREC["CMP"]
    if isinstance(expr, Arith):
        return _PREC[expr.op]
    if isinstance(expr, Neg) or (isinstance(expr, Literal) and isinstance(expr.value, (int, float))
                                 and not isinstance(expr.value, bool) and expr.value < 0):
        return _PREC["NEG"]
    return _ATOM


class _Printer:
    def __init__(self, column: Callable[[str], str], duck: bool) -> None:
        self.column = column
        self.duck = duck

    def sub(self, expr: Expr, parent: int, strict: bool = False) -> str:
        """A child of an operator of precedence `parent`, parenthesised when it binds less tightly
        (or equally, if `strict`); for DuckDB, every composite child is parenthesised."""
        shown = self.show(expr)
        p = _prec(expr)
        if (self.duck and p != _ATOM) or p < parent or (strict and p == parent):
            return f"({shown})"
        return shown

    def show(self, e: Expr) -> str:  # noqa: C901  (one branch per node type)
        if isinstance(e, Column):
            return self.column(e.name)
        if isinstance(e, Literal):
            return literal(e.value, self.duck)
        if isinstance(e, TypedLiteral):
            return f"{e.type} {literal(e.text)}"
        if isinstance(e, Interval):
            return f"INTERVAL {self.sub(e.value, _ATOM if self.duck else _PREC['NEG'])} {e.unit}"
        if isinstance(e, Neg):
            inner = self.sub(e.inner, _PREC["NEG"])
            return f"-({inner})" if inner.startswith("-") else f"-{inner}"
        if isinstance(e, Not):
            return f"NOT {self.sub(e.inner, _PREC['NOT'] + 1)}"
        if isinstance(e, Arith) and self.duck and e.op in ("/", "//", "%"):
            return self.guarded_division(e)
        if isinstance(e, (Arith, Compare, And, Or)):
            return self.infix(e)
        if isinstance(e, (Like, InList, Between, IsNull)):
            return f"{self.sub(e.expr, _PREC['CMP'], True)} {self.predicate(e)}"
        if isinstance(e, Case):
            parts = ["CASE"] + [f"WHEN {self.show(c)} THEN {self.show(v)}" for c, v in e.whens]
            if e.default is not None:
                parts.append(f"ELSE {self.show(e.default)}")
            return " ".join(parts + ["END"])
        if isinstance(e, Cast):
            return f"CAST({self.show(e.expr)} AS {e.type})"
        if isinstance(e, Extract):
            return f"EXTRACT({e.part} FROM {self.show(e.expr)})"
        assert isinstance(e, Func)
        return f"{e.name.lower()}({', '.join(self.show(a) for a in e.args)})"

    def infix(self, e: Arith | Compare | And | Or) -> str:
        """`left op right`. The right operand is parenthesised also at equal precedence (the
        operators associate to the left), a comparison's left one too (comparisons do not chain)."""
        p = _prec(e)
        op = e.op if isinstance(e, (Arith, Compare)) else "AND" if isinstance(e, And) else "OR"
        return f"{self.sub(e.left, p, strict=isinstance(e, Compare))} {op} {self.sub(e.right, p, strict=True)}"

    def predicate(self, e: Like | InList | Between | IsNull) -> str:
        """What follows the expression a predicate is about."""
        cmp = _PREC["CMP"]
        if isinstance(e, Like):
            return f"{'ILIKE' if e.ilike else 'LIKE'} {self.sub(e.pattern, cmp, True)}"
        if isinstance(e, InList):
            return f"IN ({', '.join(self.show(v) for v in e.values)})"
        if isinstance(e, Between):
            return f"BETWEEN {self.sub(e.low, cmp, True)} AND {self.sub(e.high, cmp, True)}"
        return f"IS {'NOT ' if e.negated else ''}NULL"

    def guarded_division(self, e: Arith) -> str:
        """A division for DuckDB: a zero divisor gives NULL in every dialect, and / divides as DOUBLE."""
        left, right = self.show(e.left), self.show(e.right)
        if e.op == "/":
            return f"CAST({left} AS DOUBLE) / NULLIF(CAST({right} AS DOUBLE), 0)"
        return f"({left}) {e.op} NULLIF({right}, 0)"
