"""sqlglot's syntax tree of a row expression, compiled into Pooled's frozen expressions (`queries.expr`).

Only what `queries.expr` can say is accepted, so this is also the whitelist: a construct not
handled here (a subquery, a window function, a function not in `FUNCTIONS`) is refused with
the reason and its position. Aggregates are the statement's business: where one appears,
the caller's `aggregate` hook compiles it (a HAVING condition) or the error names why it
cannot be there (WHERE filters rows before they are grouped).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from queries import expr as e
from queries.errors import QueryError

AGGREGATE_NAMES = frozenset({"VAR", "VAR_SAMP", "STDEV", "STDDEV", "AVG_CI", "PROPORTION", "RATE"})
"""Aggregates sqlglot leaves as anonymous functions (AVG_CI, PROPORTION, RATE: `queries.intervals_sql`)."""

_CASTS = {
    "BIGINT": "BIGINT", "INT": "BIGINT", "INTEGER": "BIGINT", "SMALLINT": "BIGINT", "TINYINT": "BIGINT",
    "UBIGINT": "BIGINT", "UINT": "BIGINT", "HUGEINT": "BIGINT",
    "DOUBLE": "DOUBLE", "FLOAT": "DOUBLE", "REAL": "DOUBLE", "DECIMAL": "DOUBLE", "NUMERIC": "DOUBLE",
    "VARCHAR": "VARCHAR", "TEXT": "VARCHAR", "CHAR": "VARCHAR", "NVARCHAR": "VARCHAR", "NCHAR": "VARCHAR",
    "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "TIMESTAMPNTZ": "TIMESTAMP",
    "DATETIME": "TIMESTAMP",
}
_COMPARE: dict[type, str] = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_ARITH: dict[type, str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.IntDiv: "//", exp.Mod: "%",
                           exp.DPipe: "||"}
_FUNCS: dict[type, tuple[str, tuple[str, ...]]] = {
    exp.Abs: ("ABS", ("this",)), exp.Sign: ("SIGN", ("this",)), exp.Round: ("ROUND", ("this", "decimals")),
    exp.Floor: ("FLOOR", ("this",)), exp.Ceil: ("CEIL", ("this",)), exp.Sqrt: ("SQRT", ("this",)),
    exp.Ln: ("LN", ("this",)), exp.Exp: ("EXP", ("this",)), exp.Pow: ("POWER", ("this", "expression")),
    exp.Coalesce: ("COALESCE", ("this", "expressions")), exp.Nullif: ("NULLIF", ("this", "expression")),
    exp.Greatest: ("GREATEST", ("this", "expressions")), exp.Least: ("LEAST", ("this", "expressions")),
    exp.Lower: ("LOWER", ("this",)), exp.Upper: ("UPPER", ("this",)), exp.Length: ("LENGTH", ("this",)),
    exp.Trim: ("TRIM", ("this",)), exp.Substring: ("SUBSTRING", ("this", "start", "length")),
}
_IGNORED_ARGS = frozenset({"ignore_nulls", "is_nvl", "is_null", "big_int", "typed", "safe", "_type", "zero_start"})
_PARTS = {"Year": "YEAR", "Month": "MONTH", "Day": "DAY"}
_TRUNC_UNITS = ("YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND")

AggregateHook = Callable[[exp.Expression], e.Expr]


@dataclass(frozen=True)
class Source:
    """The whole query text and where the string sqlglot parsed starts in it (0-based)."""

    text: str
    offset: int = 0

    def pos(self, node: exp.Expression) -> int | None:
        """1-based position of the leftmost token of `node` that sqlglot located."""
        starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
        return self.offset + min(starts) + 1 if starts else None

    def error(self, message: str, node: exp.Expression | None = None, pos: int | None = None) -> QueryError:
        return QueryError(message, pos if pos is not None else (self.pos(node) if node is not None else None),
                          self.text)


def is_aggregate(node: exp.Expression) -> bool:
    """Is `node` an aggregate call (COUNT, AVG, PERCENTILE_CONT ... WITHIN GROUP, VAR, ...)?"""
    if isinstance(node, (exp.AggFunc, exp.WithinGroup)):
        return True
    return isinstance(node, exp.Anonymous) and str(node.name).upper() in AGGREGATE_NAMES


def describe(node: exp.Expression) -> str:
    """A node for an error message, never a literal's value."""
    if isinstance(node, exp.Literal):
        return "a string" if node.is_string else "a number"
    if isinstance(node, exp.Column):
        return f"column {node.name!r}"
    name = node.name if isinstance(node, exp.Anonymous) else getattr(node, "key", type(node).__name__)
    return str(name).upper()


class ExprCompiler:
    """Compiles one kind of clause: `where` names it in messages ("WHERE", "GROUP BY", ...);
    `aggregate` compiles an aggregate found inside (None: refused with `no_aggregate`);
    `tables` are the names a column may be qualified with (FROM's name and alias)."""

    def __init__(self, source: Source, where: str, no_aggregate: str, aggregate: AggregateHook | None = None,
                 tables: frozenset[str] = frozenset()) -> None:
        self.source = source
        self.where = where
        self.no_aggregate = no_aggregate
        self.aggregate = aggregate
        self.tables = tables

    def error(self, message: str, node: exp.Expression) -> QueryError:
        return self.source.error(message, node)

    def compile(self, node: exp.Expression) -> e.Expr:  # noqa: C901  (one branch per construct)
        pos = self.source.pos(node)
        if isinstance(node, exp.Paren):
            return self.compile(node.this)
        if is_aggregate(node):
            if self.aggregate is None:
                raise self.error(self.no_aggregate, node)
            return self.aggregate(node)
        if isinstance(node, exp.Column):
            return self.column(node)
        if isinstance(node, (exp.Literal, exp.Boolean, exp.Null)):
            return e.Literal(self.literal(node), pos=pos)
        if isinstance(node, exp.Neg):
            inner = self.compile(node.this)
            if isinstance(inner, e.Literal) and isinstance(inner.value, (int, float)) and inner.value >= 0:
                return e.Literal(-inner.value, pos=pos)
            return e.Neg(inner, pos=pos)
        if isinstance(node, exp.Not):
            inner = self.compile(node.this)
            if isinstance(inner, e.IsNull):
                return e.IsNull(inner.expr, not inner.negated, pos=pos)
            return e.Not(inner, pos=pos)
        if isinstance(node, exp.And):
            return e.And(self.compile(node.this), self.compile(node.expression), pos=pos)
        if isinstance(node, exp.Or):
            return e.Or(self.compile(node.this), self.compile(node.expression), pos=pos)
        if type(node) in _COMPARE:
            return e.Compare(self.compile(node.this), _COMPARE[type(node)], self.compile(node.expression), pos=pos)
        if type(node) in _ARITH:
            return e.Arith(self.compile(node.this), _ARITH[type(node)], self.compile(node.expression), pos=pos)
        if isinstance(node, (exp.Like, exp.ILike)):
            if node.args.get("escape"):
                raise self.error("LIKE ... ESCAPE is not supported", node)
            like = e.Like(self.compile(node.this), self.compile(node.expression), isinstance(node, exp.ILike), pos=pos)
            return e.Not(like, pos=pos) if node.args.get("negate") else like
        if isinstance(node, exp.Escape):
            raise self.error("LIKE ... ESCAPE is not supported", node)
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise self.error(f"a subquery in {self.where} is not supported: a query reads one table", node)
            return e.InList(self.compile(node.this), tuple(self.compile(v) for v in node.expressions), pos=pos)
        if isinstance(node, exp.Between):
            if node.args.get("symmetric"):
                raise self.error("BETWEEN SYMMETRIC is not supported", node)
            return e.Between(self.compile(node.this), self.compile(node.args["low"]), self.compile(node.args["high"]),
                             pos=pos)
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null):
                raise self.error("only IS NULL and IS NOT NULL are supported after IS", node)
            return e.IsNull(self.compile(node.this), bool(node.args.get("negate")), pos=pos)
        if isinstance(node, exp.Case):
            return self.case(node, pos)
        if isinstance(node, exp.If):
            default = node.args.get("false")
            return e.Case(((self.compile(node.this), self.compile(node.args["true"])),),
                          None if default is None else self.compile(default), pos=pos)
        if isinstance(node, exp.Cast):
            return self.cast(node, pos)
        if isinstance(node, (exp.Extract, exp.Year, exp.Month, exp.Day)):
            return self.extract(node, pos)
        if isinstance(node, exp.Interval):
            return self.interval(node, pos)
        if isinstance(node, (exp.Subquery, exp.Select, exp.Exists, exp.Union, exp.Query)):
            raise self.error(f"a subquery in {self.where} is not supported: a query reads one table", node)
        if isinstance(node, exp.Window):
            raise self.error("window functions (OVER ...) are not supported: every number released is an aggregate "
                             "over a group", node)
        if isinstance(node, exp.Star):
            raise self.error(f"'*' is not a value in {self.where}", node)
        if isinstance(node, exp.Concat) and all(isinstance(a, exp.Literal) for a in node.expressions):
            raise self.error("two strings in a row; join strings with ||", node)
        return self.function(node, pos)

    def column(self, node: exp.Column) -> e.Column:
        if node.args.get("db") or node.args.get("catalog"):
            raise self.error("a column may be qualified by the table's name only", node)
        table = node.table
        if table and table not in self.tables:
            raise self.error(f"unknown table {table!r}: a query reads one table (the one named in FROM)", node)
        if isinstance(node.this, exp.Star):
            raise self.error(f"'*' is not a value in {self.where}", node)
        return e.Column(node.name, pos=self.source.pos(node.this) or self.source.pos(node))

    def literal(self, node: exp.Expression) -> e.Scalar:
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        assert isinstance(node, exp.Literal)
        if node.is_string:
            return str(node.this)
        raw = str(node.this)
        try:
            return int(raw) if raw.isdigit() else float(raw)
        except ValueError:
            raise self.error("a number that cannot be read", node) from None

    def case(self, node: exp.Case, pos: int | None) -> e.Expr:
        subject = node.this
        whens = []
        for branch in node.args.get("ifs") or []:
            cond = self.compile(branch.this)
            if subject is not None:
                cond = e.Compare(self.compile(subject), "=", cond, pos=cond.pos)
            whens.append((cond, self.compile(branch.args["true"])))
        default = node.args.get("default")
        return e.Case(tuple(whens), None if default is None else self.compile(default), pos=pos)

    def cast(self, node: exp.Cast, pos: int | None) -> e.Expr:
        if isinstance(node, exp.TryCast) or any(node.args.get(k) for k in ("format", "action", "default")):
            raise self.error("only CAST(value AS type) is supported", node)
        to = node.args["to"]
        name = to.this.name if isinstance(to, exp.DataType) else str(to)
        kind = _CASTS.get(str(name).upper())
        if kind is None:
            raise self.error(f"CAST to {str(name).lower()} is not supported (supported: integer, double, varchar, "
                             "boolean, date, timestamp)", node)
        inner = self.compile(node.this)
        if kind in ("DATE", "TIMESTAMP") and isinstance(inner, e.Literal) and isinstance(inner.value, str):
            return e.TypedLiteral(kind, self.timestamp(inner.value, kind, node), pos=pos)
        return e.Cast(inner, kind, pos=pos)

    def timestamp(self, raw: str, kind: str, node: exp.Expression) -> str:
        try:
            if kind == "DATE":
                return datetime.date.fromisoformat(raw.strip()).isoformat()
            return datetime.datetime.fromisoformat(raw.strip()).isoformat(sep=" ")
        except ValueError:
            shape = "YYYY-MM-DD" if kind == "DATE" else "YYYY-MM-DD HH:MM:SS"
            raise self.error(f"a {kind} literal must read {shape}", node) from None

    def extract(self, node: exp.Expression, pos: int | None) -> e.Expr:
        if isinstance(node, exp.Extract):
            part, value = str(node.this.name).upper(), node.expression
        else:
            part, value = _PARTS[type(node).__name__], node.this
        part = {"DAYOFWEEK": "DOW", "DAYOFYEAR": "DOY", "EPOCH_SECOND": "EPOCH"}.get(part, part)
        if part not in e.EXTRACT_PARTS:
            raise self.error(f"EXTRACT of {part.lower()} is not supported (supported: "
                             f"{', '.join(p.lower() for p in e.EXTRACT_PARTS)})", node)
        return e.Extract(part, self.compile(value), pos=pos)

    def interval(self, node: exp.Interval, pos: int | None) -> e.Expr:
        unit = str(node.args["unit"].name if node.args.get("unit") is not None else "").upper().rstrip("S")
        if unit not in e.INTERVAL_UNITS:
            raise self.error(f"INTERVAL needs a unit ({', '.join(u.lower() for u in e.INTERVAL_UNITS)})", node)
        value = node.this
        if isinstance(value, exp.Literal) and value.is_string:
            try:
                return e.Interval(e.Literal(int(str(value.this).strip()), pos=pos), unit, pos=pos)
            except ValueError:
                raise self.error("INTERVAL needs a whole number", node) from None
        return e.Interval(self.compile(value), unit, pos=pos)

    def function(self, node: exp.Expression, pos: int | None) -> e.Expr:
        name = str(node.name if isinstance(node, exp.Anonymous) else node.key).upper()
        if isinstance(node, exp.Log):
            base = node.this
            if node.expression is None or not (isinstance(base, exp.Literal) and base.this in ("2", "10")):
                raise self.error("LOG(x) differs between SQL dialects; use LN, LOG10 or LOG2", node)
            return e.Func(f"LOG{base.this}", (self.compile(node.expression),), pos=pos)
        if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
            unit = str(node.args["unit"].name).upper() if node.args.get("unit") is not None else ""
            if unit not in _TRUNC_UNITS or node.args.get("zone"):
                raise self.error(f"DATE_TRUNC needs a unit ({', '.join(u.lower() for u in _TRUNC_UNITS)})", node)
            return e.Func("DATE_TRUNC", (e.Literal(unit.lower()), self.compile(node.this)), pos=pos)
        spec = _FUNCS.get(type(node))
        if spec is None:
            if isinstance(node, (exp.Func, exp.Anonymous)):
                raise self.error(f"unknown function {name.lower()!r} in {self.where}", node)
            raise self.error(f"{describe(node)} is not supported in {self.where}", node)
        canonical, keys = spec
        extra = [k for k, v in node.args.items() if v not in (None, False, []) and k not in keys
                 and k not in _IGNORED_ARGS]
        if extra:
            raise self.error(f"this form of {canonical} is not supported", node)
        args: list[e.Expr] = []
        for key in keys:
            value = node.args.get(key)
            if isinstance(value, list):
                args.extend(self.compile(v) for v in value)
            elif value is not None:
                args.append(self.compile(value))
        return e.Func(canonical, tuple(args), pos=pos)
