"""A SELECT statement, as sqlglot parsed it, compiled into the frozen `ir.Select`.

Accepted: aggregates (`SUPPORTED`) over columns or row expressions, the interval items AVG_CI,
PROPORTION and RATE (`queries.intervals_sql`: three result columns each), grouping columns
and expressions in the SELECT list (in any position), `FROM table`, `WHERE`, `GROUP BY`
(names, aliases, positions or the expressions themselves), `ORDER BY` and `LIMIT`/`OFFSET`
(the analyst applies them to the released rows). A grouping column that the SELECT list
does not show comes first in the result, so that every row says which group it is.

Refused, each with the reason: `SELECT *`, `DISTINCT` (or no aggregate at all), joins, subqueries, WITH, UNION (at
the statement level, `queries.parser`), window functions, `COUNT(DISTINCT ...)`, aggregates
in WHERE or GROUP BY, expressions over aggregates, columns neither grouped nor aggregated.
HAVING is compiled into the IR (its aggregates join the statement's, hidden from the result)
and decided inside MPC (`queries.having`, `queries.having_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from queries import expr as e
from queries import ir
from queries.errors import QueryError
from queries.having import condition
from queries.intervals import SUFFIXES
from queries.intervals_sql import NAMES as INTERVALS
from queries.intervals_sql import ONLY_IN_SELECT, attach, compile_interval, is_interval
from queries.sql_expr import ExprCompiler, Source, is_aggregate
from queries.sql_text import text as canonical

SUPPORTED = ("COUNT, SUM, AVG, VAR, STDDEV, MIN, MAX, MEDIAN, QUANTILE, PERCENTILE_CONT, CORR; in the SELECT list, "
             "AVG_CI, PROPORTION, RATE")
_ONE: dict[type, str] = {exp.Sum: "SUM", exp.Avg: "AVG", exp.Min: "MIN", exp.Max: "MAX", exp.Median: "MEDIAN",
        exp.Variance: "VAR", exp.Stddev: "STDDEV", exp.StddevSamp: "STDDEV"}
_ANONYMOUS = {"VAR": "VAR", "VAR_SAMP": "VAR", "STDEV": "STDDEV", "STDDEV": "STDDEV"}
_CLAUSES = {
    "with_": "WITH is not supported: a query reads one table",
    "joins": "joins are not supported: each party holds one table, and rows are never pooled",
    "laterals": "LATERAL is not supported: a query reads one table",
    "distinct": "SELECT DISTINCT is not supported: it would list values rather than aggregate them",
    "windows": "window functions (OVER ...) are not supported: every number released is an aggregate over a group",
    "qualify": "QUALIFY is not supported: every number released is an aggregate over a group",
}
_IN_WHERE = "aggregates cannot be used in WHERE: it chooses rows before they are grouped"
_OVER_AGGREGATES = ("an expression over aggregates is not supported: select the aggregates themselves and combine "
                    "the released numbers")


@dataclass
class _Item:
    """One entry of the SELECT list."""

    node: exp.Expression
    alias: str | None
    aggregate: ir.Aggregate | None = None
    expr: e.Expr | None = None
    key: int | None = None  # the grouping key it shows
    interval: tuple[str, str, list[ir.Aggregate]] | None = None  # AVG_CI, PROPORTION, RATE (`queries.intervals_sql`)


@dataclass
class _Builder:
    source: Source
    tables: frozenset[str]
    derived: dict[str, e.Expr] = field(default_factory=dict)
    mentions: list[tuple[str, int]] = field(default_factory=list)

    def compiler(self, where: str, no_aggregate: str) -> ExprCompiler:
        return ExprCompiler(self.source, where, no_aggregate, tables=self.tables)

    def named(self, value: e.Expr) -> str:
        """The column an expression reads as a whole: a table column's name, or a derived one's."""
        self.mentions.extend(e.mentions(value))
        if isinstance(value, e.Column):
            return value.name
        name = canonical(value)
        self.derived.setdefault(name, value)
        pos = e.position(value)
        if pos is not None:
            self.mentions.append((name, pos))
        return name

    def argument(self, node: exp.Expression, func: str) -> str:
        if isinstance(node, exp.Distinct):
            reason = ("COUNT(DISTINCT ...) is not supported: it would reveal which values each site holds"
                      if func == "COUNT" else f"{func}(DISTINCT ...) is not supported")
            parent = node.parent
            raise self.source.error(reason, parent if isinstance(parent, exp.Expression) else node)
        if isinstance(node, exp.Star):
            raise self.source.error(f"{func}(*) is not an aggregate; COUNT(*) counts rows", node)
        value = self.compiler(f"{func}'s argument", "an aggregate inside an aggregate is not supported").compile(node)
        return self.named(value)

    def quantile(self, node: exp.Expression | None, func: str) -> float:
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
            raise self.source.error("a quantile must be between 0 and 1", node)
        if not (isinstance(node, exp.Literal) and not node.is_string):
            raise self.source.error(f"{func} needs a number between 0 and 1 for its quantile", node)
        q = float(node.this)
        if not 0.0 <= q <= 1.0:
            raise self.source.error("a quantile must be between 0 and 1", node)
        return q

    def aggregate(self, node: exp.Expression, alias: str | None) -> ir.Aggregate:  # noqa: C901
        """One aggregate call (`node` satisfies `is_aggregate`)."""
        pos = self.source.pos(node)
        name = describe_agg(node)
        if isinstance(node, exp.WithinGroup):
            inner, order = node.this, node.expression
            keys = order.expressions if isinstance(order, exp.Order) else []
            if not isinstance(inner, exp.PercentileCont) or inner.expression is not None or len(keys) != 1:
                raise self.source.error(f"{describe_agg(inner)} WITHIN GROUP is not supported; PERCENTILE_CONT(q) "
                                        "WITHIN GROUP (ORDER BY x) is", node)
            if keys[0].args.get("desc"):
                raise self.source.error("PERCENTILE_CONT ... ORDER BY x DESC is not supported; use 1 - q", keys[0])
            q = self.quantile(inner.this, "PERCENTILE_CONT")
            return ir.Aggregate("QUANTILE", self.argument(keys[0].this, "PERCENTILE_CONT"), None, q, alias, pos)
        if isinstance(node, exp.Count):
            arg = node.this
            if arg is None or isinstance(arg, exp.Star) or (isinstance(arg, exp.Literal)):
                return ir.Aggregate("COUNT", None, None, None, alias, pos)
            if node.expressions:
                raise self.source.error("COUNT takes one argument", node)
            return ir.Aggregate("COUNT", self.argument(arg, "COUNT"), None, None, alias, pos)
        if type(node) in _ONE or (isinstance(node, exp.Anonymous) and name in _ANONYMOUS):
            func = _ONE.get(type(node)) or _ANONYMOUS[name]
            args = node.expressions if isinstance(node, exp.Anonymous) else [node.this]
            if len(args) != 1 or (not isinstance(node, exp.Anonymous)
                                  and any(v for k, v in node.args.items() if k != "this")):
                raise self.source.error(f"{func} takes one argument", node)
            column = self.argument(args[0], func)
            if func == "MEDIAN":
                return ir.Aggregate("QUANTILE", column, None, 0.5, alias or f"median({column})", pos)
            return ir.Aggregate(func, column, None, None, alias, pos)
        if isinstance(node, (exp.Quantile, exp.PercentileCont)):
            q_node = node.args.get("quantile") if isinstance(node, exp.Quantile) else node.expression
            if q_node is None:
                raise self.source.error(f"{name} needs a column and a quantile", node)
            column = self.argument(node.this, "QUANTILE")
            return ir.Aggregate("QUANTILE", column, None, self.quantile(q_node, "QUANTILE"), alias, pos)
        if isinstance(node, exp.Corr):
            if node.expression is None:
                raise self.source.error("CORR needs two columns", node)
            return ir.Aggregate("CORR", self.argument(node.this, "CORR"), self.argument(node.expression, "CORR"),
                                None, alias, pos)
        if name in INTERVALS:
            raise self.source.error(ONLY_IN_SELECT.format(kind=name), node)
        if isinstance(node, (exp.VariancePop, exp.StddevPop)):
            raise self.source.error(f"{name} is not supported: VAR and STDDEV are the sample variance and deviation",
                                    node)
        raise self.source.error(f"{name} is not a supported aggregate (supported: {SUPPORTED})", node)


def describe_agg(node: exp.Expression) -> str:
    """An aggregate's name as SQL spells it."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    return node.sql_name() if isinstance(node, exp.Func) else str(node.key).upper()


def compile_select(node: exp.Select, source: Source) -> ir.Select:
    """`node` as an `ir.Select`; QueryError with the position of anything refused."""
    for key, message in _CLAUSES.items():
        value = node.args.get(key)
        if value:
            at = value[0] if isinstance(value, list) else value
            pos = source.pos(at) if isinstance(at, exp.Expression) else None
            raise source.error(message, pos=pos or (source.pos(node.expressions[0]) if node.expressions else None))
    allowed = {"expressions", "from_", "where", "group", "having", "order", "limit", "offset", "kind"}
    unknown = [k for k, v in node.args.items() if v and k not in allowed]
    if unknown or node.args.get("kind"):
        raise source.error(f"{(unknown or ['kind'])[0].upper().rstrip('_')} is not supported in a query")
    table, tables = _source_table(node, source)
    b = _Builder(source, tables)
    where = None
    if node.args.get("where") is not None:
        where = b.compiler("WHERE", _IN_WHERE).compile(node.args["where"].this)
        b.mentions.extend(e.mentions(where))
    items = [_item(b, item) for item in node.expressions]
    keys = _group_keys(b, node, items)
    output = _output(b, items, keys)
    aggregates = [item.aggregate for item in items if item.aggregate is not None]
    intervals = tuple(attach(*item.interval, aggregates) for item in items if item.interval is not None)
    if not aggregates:
        raise source.error("a SELECT releases aggregates: add one (COUNT(*), AVG(x), ...)", node.expressions[0])
    having = None
    if node.args.get("having") is not None:
        having = _having(b, node.args["having"], aggregates)
    order = _order(b, node, items, output)
    limit, offset = _limit(source, node)
    derived = tuple(ir.Derived(n, v) for n, v in b.derived.items())
    stmt = ir.Select(
        tuple(aggregates), where, tuple(name for name, _ in keys), derived, tuple(output), tuple(order), limit, offset,
        having, table, source.text, tuple(sorted(b.mentions, key=_by_pos)), intervals,
    )
    if having is not None:
        condition(stmt)  # refused before anything is read (the plan checks it again with the column kinds)
    return stmt


def _by_pos(m: tuple[str, int]) -> int:
    return m[1]


def _source_table(node: exp.Select, source: Source) -> tuple[str | None, frozenset[str]]:
    """FROM's table name (None without FROM) and the names a column may be qualified with."""
    clause = node.args.get("from_")
    if clause is None:
        return None, frozenset()
    table = clause.this
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise source.error("FROM names one table: subqueries and table functions are not supported", table)
    if table.args.get("db") or table.args.get("catalog") or table.args.get("joins"):
        raise source.error("FROM names one table, without a schema or database", table)
    alias = table.alias
    return table.name, frozenset({table.name} | ({alias} if alias else set()))


def _item(b: _Builder, node: exp.Expression) -> _Item:
    alias = node.alias if isinstance(node, exp.Alias) else None
    inner = node.this if isinstance(node, exp.Alias) else node
    if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)):
        raise b.source.error("SELECT * is not supported: a query releases aggregates, never rows", inner)
    if isinstance(inner, exp.Filter):
        raise b.source.error("FILTER (WHERE ...) is not supported; put a CASE WHEN inside the aggregate", inner)
    if is_interval(inner):
        assert isinstance(inner, exp.Anonymous)
        found = compile_interval(b, inner, alias)
        pos = b.source.pos(inner)
        if pos is not None:
            b.mentions.append((found[1], pos))
        return _Item(node, alias, interval=found)
    if is_aggregate(inner):
        agg = b.aggregate(inner, alias)
        if agg.pos is not None:
            b.mentions.append((agg.name, agg.pos))
        return _Item(node, alias, aggregate=agg)
    value = b.compiler("the SELECT list", _OVER_AGGREGATES).compile(inner)
    b.mentions.extend(e.mentions(value))
    if isinstance(value, e.Literal):
        raise b.source.error("expected an aggregate or a grouping column, found a constant", inner)
    return _Item(node, alias, expr=value)


def _group_keys(b: _Builder, node: exp.Select, items: list[_Item]) -> list[tuple[str, e.Expr]]:
    """GROUP BY's keys (name, expression), each SELECT-list item marked with the key it shows."""
    group = node.args.get("group")
    keys: list[tuple[str, e.Expr]] = []
    if group is not None:
        if any(group.args.get(k) for k in ("grouping_sets", "cube", "rollup", "totals", "all")):
            raise b.source.error("ROLLUP, CUBE, GROUPING SETS and GROUP BY ALL are not supported", group)
        aliases = {item.alias: item for item in items if item.alias}
        compiler = b.compiler("GROUP BY", "aggregates cannot be grouped by: GROUP BY names columns or expressions")
        for g in group.expressions:
            if isinstance(g, exp.Literal) and not g.is_string and str(g.this).isdigit():
                n = int(g.this)
                if not 1 <= n <= len(items):
                    raise b.source.error(f"GROUP BY {n}: the SELECT list has {len(items)} columns", g)
                value = _grouped(b, items[n - 1], g)
            elif isinstance(g, exp.Column) and not g.table and g.name in aliases:
                value = _grouped(b, aliases[g.name], g)
            else:
                value = compiler.compile(g)
                if isinstance(value, e.Literal):
                    raise b.source.error("GROUP BY needs a column or an expression over columns", g)
            name = b.named(value)
            if name not in [k for k, _ in keys]:
                keys.append((name, value))
    for item in items:
        if item.expr is None:
            continue
        item.key = next((i for i, (_, v) in enumerate(keys) if v == item.expr), None)
        if item.key is None:
            what = f"column {item.expr.name!r}" if isinstance(item.expr, e.Column) else f"'{canonical(item.expr)}'"
            raise b.source.error(f"{what} must appear in GROUP BY or be used in an aggregate", item.node)
    return keys


def _grouped(b: _Builder, item: _Item, at: exp.Expression) -> e.Expr:
    if item.expr is None:
        raise b.source.error("GROUP BY names an aggregate; it groups by columns or expressions", at)
    return item.expr


def _output(b: _Builder, items: list[_Item], keys: list[tuple[str, e.Expr]]) -> list[ir.Output]:
    shown = {item.key for item in items if item.key is not None}
    out = [ir.Output(name, "group", k) for k, (name, _) in enumerate(keys) if k not in shown]
    n_agg = n_interval = 0
    for item in items:
        if item.interval is not None:
            for part, suffix in enumerate(SUFFIXES):
                name = f"{item.interval[1]}{suffix}"
                if name in {o.name for o in out}:
                    raise b.source.error(f"two result columns are named {name!r}; use AS", item.node)
                out.append(ir.Output(name, "interval", 3 * n_interval + part))
            n_interval += 1
            continue
        if item.aggregate is not None:
            out.append(ir.Output(item.aggregate.name, "aggregate", n_agg))
            n_agg += 1
        else:
            assert item.key is not None
            out.append(ir.Output(item.alias or keys[item.key][0], "group", item.key))
            alias = item.node.args.get("alias") if isinstance(item.node, exp.Alias) else None
            pos = b.source.pos(alias) if isinstance(alias, exp.Expression) else None
            if item.alias and pos is not None:
                b.mentions.append((item.alias, pos))
        if out[-1].name in {o.name for o in out[:-1]}:
            raise b.source.error(f"two result columns are named {out[-1].name!r}; use AS", item.node)
    return out


def _having(b: _Builder, clause: exp.Having, aggregates: list[ir.Aggregate]) -> e.Expr:
    """HAVING over result columns; an aggregate not in the SELECT list joins `aggregates` (hidden)."""

    def hook(node: exp.Expression) -> e.Expr:
        agg = b.aggregate(node, None)
        same = next((a for a in aggregates if a.func == agg.func and a.columns == agg.columns and a.q == agg.q), None)
        if same is None:
            aggregates.append(agg)
            same = agg
        return e.Column(same.name, pos=b.source.pos(node))

    return ExprCompiler(b.source, "HAVING", "", hook, b.tables).compile(clause.this)


def _order(b: _Builder, node: exp.Select, items: list[_Item], output: list[ir.Output]) -> list[ir.OrderKey]:
    clause = node.args.get("order")
    if clause is None:
        return []
    names = [o.name for o in output]
    widths = [len(SUFFIXES) if item.interval else 1 for item in items]  # an interval shows three columns
    firsts = [len(output) - sum(widths) + sum(widths[:i]) for i in range(len(items))]  # unshown keys come first
    keys = []
    for ordered in clause.expressions:
        target = ordered.this
        if isinstance(target, exp.Literal) and not target.is_string and str(target.this).isdigit():
            n = int(target.this)
            if not 1 <= n <= len(items):
                raise b.source.error(f"ORDER BY {n}: the SELECT list has {len(items)} columns", target)
            name = names[firsts[n - 1]]
        elif isinstance(target, exp.Column) and not target.table and target.name in names:
            name = target.name
        else:
            name = _order_expression(b, target, items, output)
        keys.append(ir.OrderKey(name, bool(ordered.args.get("desc")), bool(ordered.args.get("nulls_first"))))
    return keys


def _order_expression(b: _Builder, target: exp.Expression, items: list[_Item], output: list[ir.Output]) -> str:
    probe = _Builder(b.source, b.tables)  # compiled only to compare: nothing it derives is kept
    refusal = ("ORDER BY sorts the released rows: name a column of the result (its name or position), or an "
               "aggregate or expression of the SELECT list")
    try:
        if is_aggregate(target):
            agg = probe.aggregate(target, None)
            for o in output:
                a = _at(items, o)
                if o.source == "aggregate" and a is not None and (a.func, a.columns, a.q) == (agg.func, agg.columns,
                                                                                                agg.q):
                    return o.name
        else:
            value = probe.compiler("ORDER BY", refusal).compile(target)
            name = canonical(value) if not isinstance(value, e.Column) else value.name
            for o in output:
                if o.source == "group" and name in (o.name, _key_name(items, o)):
                    return o.name
    except QueryError:
        pass
    raise b.source.error(refusal, target)


def _at(items: list[_Item], o: ir.Output) -> ir.Aggregate | None:
    aggs = [item.aggregate for item in items if item.aggregate is not None]
    return aggs[o.index] if o.index < len(aggs) else None


def _key_name(items: list[_Item], o: ir.Output) -> str | None:
    for item in items:
        if item.key == o.index and item.expr is not None:
            return item.expr.name if isinstance(item.expr, e.Column) else canonical(item.expr)
    return None


def _limit(source: Source, node: exp.Select) -> tuple[int | None, int]:
    def whole(clause: exp.Expression | None, word: str) -> int | None:
        if clause is None:
            return None
        value = clause.expression if isinstance(clause, (exp.Limit, exp.Offset)) else clause
        if not (isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit()):
            raise source.error(f"{word} needs a whole number", value)
        return int(value.this)

    limit = node.args.get("limit")
    if isinstance(limit, exp.Limit) and limit.args.get("offset") is not None:
        raise source.error("LIMIT offset, count is not supported; use LIMIT count OFFSET offset", limit)
    return whole(limit, "LIMIT"), whole(node.args.get("offset"), "OFFSET") or 0
