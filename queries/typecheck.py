"""The type of every expression of a query, checked against the agreed schema before any data is read.

Types: int, float, text, bool, date, timestamp, interval and null (a bare NULL, which fits
anything). A table column is int, float or text (a categorical column). The rules follow
DuckDB's, which evaluates the expressions at each party (`queries.evaluate`), but refuse
what DuckDB would only fail on at run time, at some party, on some row: a text column
compared with a number, a number with a string. Every error names the position of the
offending part of the query and never echoes a literal.

A derived column (a grouping expression or an aggregate's argument) takes the plan kind of
its type (`plan_kind`): int and bool (1 true, 0 false) are "int", float "float", text and
dates (their ISO text) "category".
"""

from __future__ import annotations

from collections.abc import Callable

from queries import expr as e
from queries import ir
from queries.errors import QueryError, SchemaError
from queries.table import Schema

NUMBERS = ("int", "float")
_FROM_KIND = {"int": "int", "float": "float", "category": "text"}
_PLAIN = {"int": "a number", "float": "a number", "text": "a string", "bool": "TRUE or FALSE",
          "date": "a date", "timestamp": "a timestamp", "interval": "an interval", "null": "NULL"}
_CAST_FROM = {
    "BIGINT": ("int", "float", "text", "bool"), "DOUBLE": ("int", "float", "text", "bool"),
    "BOOLEAN": ("int", "text", "bool"), "DATE": ("text", "date", "timestamp"),
    "TIMESTAMP": ("text", "date", "timestamp"),
}
_CAST_TO = {"BIGINT": "int", "DOUBLE": "float", "VARCHAR": "text", "BOOLEAN": "bool", "DATE": "date",
            "TIMESTAMP": "timestamp"}


def plan_kind(t: str) -> str:
    """The column kind (int, float, category) a derived column of type `t` has in a plan."""
    return {"int": "int", "bool": "int", "float": "float"}.get(t, "category")


def _numeric(t: str) -> bool:
    return t in NUMBERS or t == "null"


def _join_numbers(a: str, b: str) -> str:
    if "null" in (a, b):
        return b if a == "null" else a
    return "int" if a == b == "int" else "float"


class Checker:
    """Types of expressions over the columns of `schema`; errors carry `text` for their caret."""

    def __init__(self, schema: Schema, text: str | None = None) -> None:
        self.schema = schema
        self.text = text

    def error(self, message: str, node: e.Expr, name: str | None = None) -> QueryError:
        return QueryError(message, e.position(node), self.text, name)

    def column(self, node: e.Column) -> str:
        try:
            kind = self.schema.kind(node.name)
        except SchemaError as exc:
            raise self.error(str(exc), node, node.name) from None
        return _FROM_KIND[kind]

    def condition(self, node: e.Expr, where: str) -> None:
        """`node` must be true/false (or NULL): a WHERE or a CASE's WHEN."""
        t = self.type(node)
        if t not in ("bool", "null"):
            raise self.error(f"{where} needs a condition (true or false), found {_PLAIN[t]}", node)

    def type(self, node: e.Expr) -> str:  # noqa: C901  (one branch per node type)
        if isinstance(node, e.Column):
            return self.column(node)
        if isinstance(node, e.Literal):
            v = node.value
            if v is None:
                return "null"
            if isinstance(v, bool):
                return "bool"
            return "text" if isinstance(v, str) else "int" if isinstance(v, int) else "float"
        if isinstance(node, e.TypedLiteral):
            return node.type.lower()
        if isinstance(node, e.Interval):
            if self.type(node.value) not in ("int", "null"):
                raise self.error("INTERVAL needs a whole number", node.value)
            return "interval"
        if isinstance(node, e.Neg):
            t = self.type(node.inner)
            if not _numeric(t) and t != "interval":
                raise self.error(f"'-' needs a number, found {_PLAIN[t]}", node.inner)
            return t
        if isinstance(node, e.Arith):
            return self.arith(node)
        if isinstance(node, e.Compare):
            self.comparable(node.left, node.right, node)
            return "bool"
        if isinstance(node, e.Like):
            for part in (node.expr, node.pattern):
                if self.type(part) not in ("text", "null"):
                    raise self.error(f"{'ILIKE' if node.ilike else 'LIKE'} compares strings; "
                                     f"found {_PLAIN[self.type(part)]}", part, _name(part))
            return "bool"
        if isinstance(node, e.InList):
            for value in node.values:
                self.comparable(node.expr, value, node)
            return "bool"
        if isinstance(node, e.Between):
            self.comparable(node.expr, node.low, node)
            self.comparable(node.expr, node.high, node)
            return "bool"
        if isinstance(node, e.IsNull):
            self.type(node.expr)
            return "bool"
        if isinstance(node, (e.And, e.Or)):
            word = "AND" if isinstance(node, e.And) else "OR"
            self.condition(node.left, word)
            self.condition(node.right, word)
            return "bool"
        if isinstance(node, e.Not):
            self.condition(node.inner, "NOT")
            return "bool"
        if isinstance(node, e.Case):
            for cond, _ in node.whens:
                self.condition(cond, "WHEN")
            results = [v for _, v in node.whens] + ([node.default] if node.default is not None else [])
            return self.unify(results, "CASE's results")
        if isinstance(node, e.Cast):
            t = self.type(node.expr)
            if node.type != "VARCHAR" and t != "null" and t not in _CAST_FROM[node.type]:
                raise self.error(f"CAST of {_PLAIN[t]} AS {node.type} is not supported", node)
            return _CAST_TO[node.type]
        if isinstance(node, e.Extract):
            t = self.type(node.expr)
            if t not in ("date", "timestamp", "null"):
                raise self.error(f"EXTRACT needs a date or timestamp, found {_PLAIN[t]} (CAST it AS DATE)", node.expr,
                                 _name(node.expr))
            return "float" if node.part == "EPOCH" else "int"
        assert isinstance(node, e.Func)
        return self.function(node)

    def arith(self, node: e.Arith) -> str:
        a, b = self.type(node.left), self.type(node.right)
        op = node.op
        if op == "||":
            if a in ("text", "null") and b in ("text", "null"):
                return "text"
            raise self.error("|| joins strings; CAST numbers AS VARCHAR first", node)
        if _numeric(a) and _numeric(b):
            if op == "/":
                return "float"
            return _join_numbers(a, b)
        dated = {"date", "timestamp"}
        if op == "+" and {a, b} <= {"date", "int"} and "date" in (a, b) and a != b:
            return "date"
        if op == "-" and a == "date" and b in ("int", "null"):
            return "date"
        if op == "-" and a == "date" and b == "date":
            return "int"
        if op in ("+", "-") and a in dated and b == "interval":
            return "timestamp"
        if op == "+" and a == "interval" and b in dated:
            return "timestamp"
        raise self.error(f"'{op}' cannot combine {_PLAIN[a]} and {_PLAIN[b]}", node)

    def comparable(self, left: e.Expr, right: e.Expr, at: e.Expr) -> None:
        a, b = self.type(left), self.type(right)
        if "null" in (a, b) or a == b or (_numeric(a) and _numeric(b)):
            return
        dated = ("date", "timestamp")
        if a in dated and (b in dated or (b == "text" and isinstance(right, e.Literal))):
            return
        if b in dated and a == "text" and isinstance(left, e.Literal):
            return
        column = left if isinstance(left, e.Column) else right if isinstance(right, e.Column) else None
        other = right if column is left else left
        if column is not None and isinstance(other, e.Literal) and self.type(column) in ("int", "float", "text"):
            text = self.type(column) == "text"
            kind, literal = ("categorical", "a string") if text else ("numeric", "a number")
            raise self.error(f"column {column.name!r} is {kind}; compare it with {literal}", column, column.name)
        raise self.error(f"cannot compare {_PLAIN[a]} with {_PLAIN[b]}", left if e.position(left) else at)

    def unify(self, nodes: list[e.Expr], what: str) -> str:
        types = [self.type(n) for n in nodes]
        known = [t for t in types if t != "null"]
        if not known:
            return "null"
        if all(t in NUMBERS for t in known):
            return "float" if "float" in known else "int"
        if set(known) <= {"date", "timestamp"}:
            return "timestamp" if "timestamp" in known else "date"
        if len(set(known)) == 1:
            return known[0]
        odd = next(n for n, t in zip(nodes, types) if t not in ("null", known[0]))
        raise self.error(f"{what} mix {_PLAIN[known[0]]} and {_PLAIN[self.type(odd)]}", odd)

    def function(self, node: e.Func) -> str:
        rule = FUNCTIONS.get(node.name)
        if rule is None:
            raise self.error(f"unknown function {node.name.lower()!r}", node)
        low, high, result = rule
        if not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise self.error(f"{node.name.lower()} takes {count} argument(s)", node)
        return result(self, node)


def _name(node: e.Expr) -> str | None:
    return node.name if isinstance(node, e.Column) else None


def _numbers(keep: bool) -> Callable[[Checker, e.Func], str]:
    """Numeric arguments; the result keeps the first argument's type (`keep`) or is float."""

    def rule(c: Checker, node: e.Func) -> str:
        types = [c.type(a) for a in node.args]
        for a, t in zip(node.args, types):
            if not _numeric(t):
                raise c.error(f"{node.name.lower()} needs a number, found {_PLAIN[t]}", a, _name(a))
        if node.name == "ROUND" and len(node.args) == 2 and types[1] not in ("int", "null"):
            raise c.error("round's second argument is a whole number of digits", node.args[1])
        return (types[0] if types[0] != "null" else "float") if keep else "float"

    return rule


def _texts(result: str) -> Callable[[Checker, e.Func], str]:
    def rule(c: Checker, node: e.Func) -> str:
        first = c.type(node.args[0])
        if first not in ("text", "null"):
            raise c.error(f"{node.name.lower()} needs a string, found {_PLAIN[first]}", node.args[0],
                          _name(node.args[0]))
        for a in node.args[1:]:
            if c.type(a) not in ("int", "null"):
                raise c.error(f"{node.name.lower()}'s positions are whole numbers", a)
        return result

    return rule


def _same(c: Checker, node: e.Func) -> str:
    return c.unify(list(node.args), f"{node.name.lower()}'s arguments")


def _nullif(c: Checker, node: e.Func) -> str:
    c.comparable(node.args[0], node.args[1], node)
    return c.type(node.args[0])


def _trunc(c: Checker, node: e.Func) -> str:
    t = c.type(node.args[1])
    if t not in ("date", "timestamp", "null"):
        raise c.error(f"date_trunc needs a date or timestamp, found {_PLAIN[t]}", node.args[1], _name(node.args[1]))
    return "timestamp"


def _sign(c: Checker, node: e.Func) -> str:
    _numbers(True)(c, node)
    return "int"


FUNCTIONS: dict[str, tuple[int, int, Callable[[Checker, e.Func], str]]] = {
    "ABS": (1, 1, _numbers(True)), "ROUND": (1, 2, _numbers(True)), "SIGN": (1, 1, _sign),
    "FLOOR": (1, 1, _numbers(False)), "CEIL": (1, 1, _numbers(False)), "SQRT": (1, 1, _numbers(False)),
    "LN": (1, 1, _numbers(False)), "LOG10": (1, 1, _numbers(False)), "LOG2": (1, 1, _numbers(False)),
    "EXP": (1, 1, _numbers(False)), "POWER": (2, 2, _numbers(False)),
    "COALESCE": (1, 64, _same), "GREATEST": (1, 64, _same), "LEAST": (1, 64, _same), "NULLIF": (2, 2, _nullif),
    "LOWER": (1, 1, _texts("text")), "UPPER": (1, 1, _texts("text")), "TRIM": (1, 1, _texts("text")),
    "LENGTH": (1, 1, _texts("int")), "SUBSTRING": (2, 3, _texts("text")), "DATE_TRUNC": (2, 2, _trunc),
}
"""Scalar functions: (fewest arguments, most arguments, the rule giving the result type)."""


def check_statement(stmt: ir.Statement, schema: Schema) -> dict[str, str]:
    """Check a statement against the agreed schema before any data is read: every column it
    names exists (the first unknown one, in the order written, is the error), every expression
    is well typed, WHERE is a condition. Returns the plan kind of each derived column."""
    if isinstance(stmt, ir.Explain):
        return check_statement(stmt.inner, schema)
    inner = stmt
    c = Checker(schema, ir.source_text(inner))
    derived = ir.derived_names(inner)
    for name, pos in inner.mentions:
        if name in derived or name not in ir.statement_columns(inner):
            continue
        try:
            schema.kind(name)
        except SchemaError as exc:
            raise QueryError(str(exc), pos, c.text, name) from None
    for col in sorted(ir.statement_columns(inner)):  # a column built in code, without positions
        try:
            schema.kind(col)
        except SchemaError as exc:
            raise QueryError(str(exc), ir.position_of(inner, col), c.text, col) from None
    if inner.where is not None:
        c.condition(inner.where, "WHERE")
    kinds: dict[str, str] = {}
    if isinstance(inner, ir.Select):
        for d in inner.derived:
            t = c.type(d.expr)
            if t in ("interval", "null"):
                what = "an interval" if t == "interval" else "always NULL"
                raise c.error(f"'{d.name}' is {what}: it cannot be grouped by or aggregated", d.expr)
            if d.name in schema.names:
                raise c.error(f"the expression '{d.name}' reads like the name of a column; add parentheses", d.expr)
            kinds[d.name] = plan_kind(t)
        for out in inner.output:
            key = inner.group_by[out.index] if out.source == "group" else None
            if key is not None and out.name != key and out.name in schema.names:
                raise QueryError(f"{out.name!r} names both a column of the table and a grouping expression of the "
                                 "SELECT list; choose another name", ir.position_of(inner, out.name), c.text,
                                 out.name)
    return kinds
