"""HAVING, as a plan: its condition compiled into comparisons of aggregates with constants.

A SELECT's HAVING is decided inside MPC (`queries.having_gate`), on the same secret values the
release gates; this module turns its condition (over result names: `ir.Select.having`) into a
tree of AND, OR and NOT over three kinds of leaf, and refuses what cannot be decided exactly:

* `Fixed`: sum_i a_i v_i + b  op  0, op in < <= > >= = !=, every v_i an aggregate released in
  fixed point or as an integer (COUNT, SUM, MIN, MAX, MEDIAN/QUANTILE, CORR), a_i and b exact
  rationals (the literals as written; `+ - *` and `/` by a constant). On shares the leaf is
  an integer comparison of the values' ring encodings, exact: for one aggregate at every
  magnitude the engine supports; for arithmetic over several, while each is below
  2^VALUE_BITS (checked against the coefficients when planned: `_check_range`).
* `Floated`: v op c for v an AVG, VAR or STDDEV, released in floating point as mantissa and
  exponent (`queries.floats`), and a constant c (`a v + b op 0` is rewritten so); compared as
  floating-point numbers (exponents, then mantissas), so at every magnitude. = and != are
  refused: these values are computed to about 1e-13 relative precision, so a tie with c is
  not decided; < and <= (> and >=) are the same test.
* `NullTest`: v IS [NOT] NULL.

BETWEEN is two comparisons and an AND; IN is an OR of equalities. Conditions on grouping
columns belong in WHERE and are refused, as are constants compared with constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from queries import expr as e
from queries import ir
from queries.errors import QueryError

FLOATED = ("AVG", "VAR", "STDDEV")
"""Aggregates released as mantissa and exponent (`queries.floats`)."""

VALUE_BITS = 60
"""Arithmetic over several aggregates in HAVING is exact while each is below 2^60 (~1.2e18) in magnitude."""

RING_BITS = 126
"""Encodings compared on shares stay below 2^126 in magnitude (the precise ring is Z_2^128)."""

PRECISE_FRAC = 40
"""Fractional bits of the precise fixed point (`mpc.fixedpoint.PRECISE`)."""

OPS = ("<", "<=", ">", ">=", "=", "!=")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


@dataclass(frozen=True)
class Fixed:
    """sum(coef * aggregate) + const  op  0 over fixed-point (or integer) aggregates, by index."""

    terms: tuple[tuple[int, Fraction], ...]
    const: Fraction
    op: str


@dataclass(frozen=True)
class Floated:
    """aggregate `agg` (an AVG, VAR or STDDEV) below c (`below`) or not below c."""

    agg: int
    c: float
    below: bool


@dataclass(frozen=True)
class NullTest:
    agg: int
    negated: bool


Leaf = Fixed | Floated | NullTest
Tree = Leaf | tuple  # ("and", Tree, Tree) | ("or", Tree, Tree) | ("not", Tree)


def condition(stmt: ir.Select, integer_columns: frozenset[str] | set[str] = frozenset()) -> Tree:
    """The HAVING condition of `stmt` as a tree of leaves; QueryError (with a position) for what is refused.
    `integer_columns`: columns whose SUM is an exact integer (frac 0), for the range check."""
    assert stmt.having is not None
    names = {a.name: i for i, a in enumerate(stmt.aggregates)}
    return _Compiler(stmt, names, integer_columns).tree(stmt.having)


def leaves(tree: Tree) -> list[Leaf]:
    """The leaves of a condition, left to right."""
    if isinstance(tree, tuple):
        return [leaf for part in tree[1:] for leaf in leaves(part)]
    return [tree]


def aggregates_read(tree: Tree) -> list[int]:
    """Indices of the aggregates the condition reads, in order of first use."""
    out: list[int] = []
    for leaf in leaves(tree):
        idx = [i for i, _ in leaf.terms] if isinstance(leaf, Fixed) else [leaf.agg]
        out += [i for i in idx if i not in out]
    return out


def frac_of(agg: ir.Aggregate, integer_columns: frozenset[str] | set[str]) -> int:
    """Fractional bits of an aggregate's value on shares before its release: an integer column's SUM is
    an exact integer; every other fixed-point value has the precise scale."""
    return 0 if agg.func == "SUM" and agg.column in integer_columns else PRECISE_FRAC


def integer_form(leaf: Fixed, fracs: dict[int, int]) -> tuple[list[tuple[int, int]], int, int, str]:
    """The leaf over the values' ring encodings X_i = v_i 2^frac_i, all integers:
    ([(index, A_i)], lo, hi, op) with sum A_i X_i  compared as  [Y < lo] and [Y < hi] (Y the sum):
    Y op' t for t = lo = hi when several aggregates, or one aggregate against its bound t with
    lo = ceil(t), hi = floor(t) + 1 (so [Y < t] = [Y < lo], [Y <= t] = [Y < hi]); op' is op,
    reversed when one aggregate's coefficient is negative. Bounds are clamped to +-2^RING_BITS."""
    rationals = [(i, a / (1 << fracs[i])) for i, a in leaf.terms]
    scale = math.lcm(*(r.denominator for _, r in rationals), leaf.const.denominator)
    ints = [(i, int(r * scale)) for i, r in rationals]
    const = leaf.const * scale
    op = leaf.op
    if len(ints) == 1:
        i, a = ints[0]
        bound = -const / a
        if a < 0:
            op = _FLIP[op]
        return [(i, 1)], _clamp(math.ceil(bound)), _clamp(math.floor(bound) + 1), op
    t = int(-const)
    return ints, _clamp(t), _clamp(t + 1), op


def _clamp(v: int) -> int:
    limit = 1 << RING_BITS
    return max(-limit, min(limit, v))


def describe(stmt: ir.Select, integer_columns: set[str]) -> str:
    """EXPLAIN's step for the HAVING condition."""
    found = leaves(condition(stmt, integer_columns))
    early = sum(isinstance(leaf, Fixed) and early_leaf(stmt, leaf) for leaf in found)
    fixed = sum(isinstance(leaf, Fixed) for leaf in found) - early
    floated = sum(isinstance(leaf, Floated) for leaf in found)
    parts = []
    if early:
        parts.append(f"{early} exact comparison(s) of COUNT/SUM in the suppression flags' batched comparison")
    late = [f"{fixed} exact comparison(s) of MIN/MAX/MEDIAN/CORR"] if fixed else []
    late += [f"{floated} floating-point comparison(s) of AVG/VAR/STDDEV (exponents, then mantissas)"] if floated else []
    if late:
        parts.append(" and ".join(late) + " in one batched comparison")
    nulls = len(found) - early - fixed - floated
    if nulls:
        parts.append(f"{nulls} NULL test(s)")
    return (
        "HAVING: per group, " + "; ".join(parts) + "; AND, OR and NOT in three-valued logic by products of bits "
        "(a NULL aggregate is unknown; so is one withheld by the disclosure rule, and a group whose outcome it "
        "leaves unknown is shown with every value withheld); the outcome gates the release, so a group the "
        "condition drops, or an empty one, is released as absent: every value, NULL and suppression flag zero"
    )


def early_leaf(stmt: ir.Select, leaf: Fixed) -> bool:
    """Whether a `Fixed` leaf reads COUNTs and SUMs only, known from the partials' round."""
    return all(stmt.aggregates[i].func in ("COUNT", "SUM") for i, _ in leaf.terms)


class _Compiler:
    def __init__(self, stmt: ir.Select, names: dict[str, int], integers: frozenset[str] | set[str]) -> None:
        self.stmt = stmt
        self.names = names
        self.integers = integers

    def error(self, message: str, node: e.Expr) -> QueryError:
        return QueryError(message, e.position(node), stmt_text(self.stmt) or None)

    def tree(self, node: e.Expr) -> Tree:
        if isinstance(node, e.And):
            return ("and", self.tree(node.left), self.tree(node.right))
        if isinstance(node, e.Or):
            return ("or", self.tree(node.left), self.tree(node.right))
        if isinstance(node, e.Not):
            return ("not", self.tree(node.inner))
        if isinstance(node, e.Compare):
            return self.compare(node.left, node.op, node.right, node)
        if isinstance(node, e.Between):
            low, high = self.compare(node.expr, ">=", node.low, node), self.compare(node.expr, "<=", node.high, node)
            return ("and", low, high)
        if isinstance(node, e.InList):
            options = [self.compare(node.expr, "=", v, node) for v in node.values]
            out: Tree = options[0]
            for other in options[1:]:
                out = ("or", out, other)
            return out
        if isinstance(node, e.IsNull):
            terms, const = self.linear(node.expr)
            if len(terms) != 1 or const or next(iter(terms.values())) != 1:
                raise self.error("IS NULL in HAVING tests one aggregate", node)
            return NullTest(next(iter(terms)), node.negated)
        raise self.error("HAVING takes comparisons of aggregates (with + - * / by constants), BETWEEN, IN, IS NULL, "
                         "AND, OR and NOT", node)

    def compare(self, left: e.Expr, op: str, right: e.Expr, at: e.Expr) -> Leaf:
        lt, lc = self.linear(left)
        rt, rc = self.linear(right)
        terms = dict(lt)
        for i, a in rt.items():
            terms[i] = terms.get(i, Fraction(0)) - a
        terms = {i: a for i, a in terms.items() if a}
        const = lc - rc
        if not terms:
            raise self.error("HAVING compares no aggregate here: a condition needs an aggregate on one side", at)
        aggs = self.stmt.aggregates
        floated = [i for i in terms if aggs[i].func in FLOATED]
        if floated:
            name = aggs[floated[0]].name
            if len(terms) > 1:
                raise self.error(f"{name} in HAVING is compared with constants only: AVG, VAR and STDDEV are released "
                                 "in floating point, and arithmetic with other aggregates is not supported", at)
            if op in ("=", "!="):
                raise self.error(f"= and <> are not supported on {name} in HAVING: AVG, VAR and STDDEV are computed "
                                 "to about 1e-13 relative precision, so a tie is not decided; use < or >", at)
            (i, a), = terms.items()
            try:
                c = float(-const / a)
            except OverflowError:
                raise self.error(f"{name} is compared with a number beyond float64's range", at) from None
            if a < 0:
                op = _FLIP[op]
            return Floated(i, c, op in ("<", "<="))
        leaf = Fixed(tuple(sorted(terms.items())), const, op)
        if len(terms) > 1:
            self._check_range(leaf, at)
        return leaf

    def _check_range(self, leaf: Fixed, at: e.Expr) -> None:
        """Several aggregates: sum |A_i| 2^(VALUE_BITS + frac_i) must stay below 2^(RING_BITS - 1)."""
        fracs = {i: frac_of(self.stmt.aggregates[i], self.integers) for i, _ in leaf.terms}
        ints, _, _, _ = integer_form(leaf, fracs)
        reach = sum(abs(a) << (VALUE_BITS + fracs[i]) for i, a in ints)
        if reach >= 1 << (RING_BITS - 1):
            raise self.error(f"this HAVING arithmetic is exact only for aggregates below 2^{VALUE_BITS} (~1.2e18), "
                             "and its constants need more precision than the shares carry for that: use fewer "
                             "digits or compare one aggregate at a time", at)

    def linear(self, node: e.Expr) -> tuple[dict[int, Fraction], Fraction]:
        """`node` as sum(coef * aggregate) + const, exact."""
        if isinstance(node, e.Literal):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.error("HAVING compares aggregates with numbers", node)
            return {}, Fraction(repr(v)) if isinstance(v, float) else Fraction(v)
        if isinstance(node, e.Column):
            if node.name not in self.names:
                raise self.error(f"HAVING reads {node.name!r}, which is not an aggregate: a condition on grouping "
                                 "columns belongs in WHERE", node)
            i = self.names[node.name]
            if self.stmt.aggregates[i].func not in FLOATED + ("COUNT", "SUM", "MIN", "MAX", "QUANTILE", "CORR"):
                raise self.error(f"{self.stmt.aggregates[i].func} is not supported in HAVING", node)
            return {i: Fraction(1)}, Fraction(0)
        if isinstance(node, e.Neg):
            terms, const = self.linear(node.inner)
            return {i: -a for i, a in terms.items()}, -const
        if isinstance(node, e.Arith) and node.op in ("+", "-", "*", "/"):
            lt, lc = self.linear(node.left)
            rt, rc = self.linear(node.right)
            if node.op in ("+", "-"):
                sign = 1 if node.op == "+" else -1
                out = dict(lt)
                for i, a in rt.items():
                    out[i] = out.get(i, Fraction(0)) + sign * a
                return out, lc + sign * rc
            if node.op == "*":
                if lt and rt:
                    raise self.error("HAVING multiplies aggregates by constants only (a product of two aggregates "
                                     "is not supported)", node)
                terms, const, k = (rt, rc, lc) if not lt else (lt, lc, rc)
                return {i: a * k for i, a in terms.items()}, const * k
            if rt:
                raise self.error("HAVING divides by constants only", node)
            if rc == 0:
                raise self.error("division by zero in HAVING", node)
            return {i: a / rc for i, a in lt.items()}, lc / rc
        raise self.error("HAVING takes aggregates, numbers, + - * / by constants, and comparisons of them", node)


def stmt_text(stmt: ir.Select) -> str:
    return stmt.text
