"""AVG_CI, PROPORTION and RATE in a SELECT list: each compiled into the ordinary aggregates it is computed from.

An interval item is not a new kind of MPC work: it becomes aggregates the engine already runs and
releases under the disclosure rule (hidden from the result, like HAVING's, and shared with the
SELECT list's own aggregates when they are the same), and the analyst computes the estimate and
its 95% CI from them (`queries.intervals`). Each shows three result columns: NAME,
NAME_ci95_low and NAME_ci95_high, NAME being its alias or avg(x), proportion(condition),
rate(events, person_time).

- `AVG_CI(x)`: AVG(x), COUNT(x) and STDDEV(x).
- `PROPORTION(condition)`: SUM and COUNT of the derived column CASE WHEN condition THEN 1 WHEN NOT
  condition THEN 0 END, so that a row whose condition is NULL (unknown) counts in neither.
- `RATE(events, person_time)`: SUM of CASE WHEN person_time IS NOT NULL THEN events END and of
  CASE WHEN events IS NOT NULL THEN person_time END: both over the rows where both are present.
They may appear in the SELECT list only (HAVING and ORDER BY name their result columns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from queries import expr as e
from queries import ir
from queries.sql_text import text as canonical

if TYPE_CHECKING:
    from queries.sql_select import _Builder

NAMES = ("AVG_CI", "PROPORTION", "RATE")
_SHAPES = {"AVG_CI": "AVG_CI(x)", "PROPORTION": "PROPORTION(condition)", "RATE": "RATE(events, person_time)"}
_CONDITIONS = (e.Column, e.Compare, e.And, e.Or, e.Not, e.IsNull, e.InList, e.Between, e.Like)
ONLY_IN_SELECT = ("{kind} may appear only in the SELECT list: HAVING and ORDER BY name its result columns "
                  "(NAME, NAME_ci95_low, NAME_ci95_high)")


def is_interval(node: exp.Expression) -> bool:
    """Is `node` a call of AVG_CI, PROPORTION or RATE?"""
    return isinstance(node, exp.Anonymous) and str(node.name).upper() in NAMES


def compile_interval(b: _Builder, node: exp.Anonymous, alias: str | None) -> tuple[str, str, list[ir.Aggregate]]:
    """(kind, result name, the aggregates it is computed from) of one interval call."""
    kind = str(node.name).upper()
    args = node.expressions
    if len(args) != (2 if kind == "RATE" else 1):
        raise b.source.error(f"{kind} takes {'two arguments' if kind == 'RATE' else 'one argument'}: "
                             f"{_SHAPES[kind]}", node)
    pos = b.source.pos(node)
    if kind == "AVG_CI":
        column = b.argument(args[0], kind)
        name = alias or f"avg({column})"
        return kind, name, [ir.Aggregate(f, column, pos=pos) for f in ("AVG", "COUNT", "STDDEV")]
    compiler = b.compiler(f"{kind}'s argument", "an aggregate inside an aggregate is not supported")
    if kind == "PROPORTION":
        cond = compiler.compile(args[0])
        if not isinstance(cond, _CONDITIONS):  # a column: the type check says whether it is true/false
            raise b.source.error("PROPORTION needs a condition (true or false), e.g. PROPORTION(sbp > 140)", args[0])
        flag = b.named(e.Case(((cond, e.Literal(1)), (e.Not(cond), e.Literal(0)))))
        name = alias or f"proportion({_text(cond)})"
        return kind, name, [ir.Aggregate("SUM", flag, pos=pos), ir.Aggregate("COUNT", flag, pos=pos)]
    events, person_time = compiler.compile(args[0]), compiler.compile(args[1])
    both = [b.named(e.Case(((e.IsNull(other, True), value),))) for value, other in
            ((events, person_time), (person_time, events))]
    name = alias or f"rate({_text(events)}, {_text(person_time)})"
    return kind, name, [ir.Aggregate("SUM", column, pos=pos) for column in both]


def attach(kind: str, name: str, parts: list[ir.Aggregate], aggregates: list[ir.Aggregate]) -> ir.Interval:
    """The interval over `aggregates`, each part found there (the same function, columns and q) or added."""
    index = []
    for part in parts:
        at = next((i for i, a in enumerate(aggregates) if (a.func, a.columns, a.q) == (part.func, part.columns,
                                                                                        part.q)), None)
        if at is None:
            aggregates.append(part)
            at = len(aggregates) - 1
        index.append(at)
    return ir.Interval(kind, name, tuple(index))


def _text(value: e.Expr) -> str:
    return value.name if isinstance(value, e.Column) else canonical(value)
