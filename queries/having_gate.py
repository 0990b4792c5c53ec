"""HAVING inside MPC: which groups are released, decided on shares, nothing opened but masked values.

`gate` runs at the executor's release (`queries.executor._select`), when every aggregate's
value is at hand as a share and before any is gated. For the condition compiled by
`queries.having` it computes, per group, shared bits T (the condition is true) and F (false);
neither is opened. With W = [some aggregate the condition reads is withheld by the disclosure
rule] and U = 1 - T - F (unknown: a NULL or a withheld aggregate decides it):

1. Every leaf's comparisons, for all groups, in one batched sign test (`protocols.compare.ltz`):
   a `Fixed` leaf compares the integer sum A_i X_i of the values' encodings with its bounds
   (`queries.having.integer_form`); a `Floated` leaf v = m 2^E against c = m_c 2^e_c takes the
   sign of v ([m < +-1/4]), [E < e_c + d] for d in -W..W+1 and [m < c 2^-(e_c + d)] for |d| <= W
   (`_floated`).
2. Products of bits, level by level (every product of a level in one round, `Bits`): a leaf is
   known where none of its aggregates is NULL or withheld, nor (GROUP BY, zeros released) its
   group empty, k = prod(1 - bad_i); T = k cmp, F = k - T (a floating leaf's k joins its first
   products: `_floated`); three-valued (Kleene) AND: T = T1 T2, F = F1 + F2 - F1 F2; OR the dual;
   NOT swaps T and F. An empty group is thus unknown, and absent (SQL has no empty groups).
3. The release (`queries.executor._select`) gates aggregate i by T (1 - null_i) with null_i =
   [withheld or NULL] (the product it already takes), so a dropped group's values and NULL flags
   are zero, and a withheld value's NULL flag says nothing beyond its suppression flag.
4. In the release's last round, beside the gated values: S = W U (the group is shown with every
   value withheld: its outcome is undecided without a withheld value, so nothing about that
   value shows) and h_i T per aggregate. Released: h_i T + S as i's suppression flag and
   1 - T - S as `empty` (absent). A group the condition drops is released exactly as an empty
   one, all zeros but for that flag, whatever its values.
Rounds: the comparisons (none of their own when the condition reads COUNTs and SUMs only,
`Having.inputs`) and the products of step 2; steps 3 and 4 ride in rounds the release has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.beaver import mul_many
from protocols.compare import ltz
from queries import having, ir
from queries.aggregates import count_key, stages
from queries.floats import Floating
from queries.plan import Plan


@dataclass(eq=False)
class Bit:
    """A shared 0/1 value per group, possibly not computed yet: a share, a product of two bits,
    or a linear combination of bits with integer coefficients and a constant."""

    depth: int
    share: Share | None = None
    product: tuple[Bit, Bit] | None = None
    terms: tuple[tuple[int, Bit], ...] = ()
    const: int = 0

    def __mul__(self, other: Bit) -> Bit:
        return Bit(max(self.depth, other.depth) + 1, product=(self, other))

    def __add__(self, other: Bit | int) -> Bit:
        return _lin([(1, self), (1, other)] if isinstance(other, Bit) else [(1, self)], 0 if isinstance(other, Bit)
                    else other)

    def __sub__(self, other: Bit | int) -> Bit:
        return _lin([(1, self), (-1, other)] if isinstance(other, Bit) else [(1, self)], 0 if isinstance(other, Bit)
                    else -other)

    def __rsub__(self, k: int) -> Bit:
        return _lin([(-1, self)], k)


def _lin(terms: list[tuple[int, Bit]], const: int) -> Bit:
    return Bit(max(b.depth for _, b in terms), terms=tuple(terms), const=const)


@dataclass
class Bits:
    """Evaluates `Bit`s: each level of products in one round (`mul_many`), all groups and leaves together."""

    ctx: PartyContext
    like: Share
    done: dict[int, Share] = field(default_factory=dict)

    def of(self, share: Share) -> Bit:
        return Bit(0, share=share.with_frac(0))

    def evaluate(self, outputs: list[Bit]) -> list[Share]:
        products: dict[int, Bit] = {}
        self._collect(outputs, products, set())
        for depth in sorted({b.depth for b in products.values()}):
            level = [b for b in products.values() if b.depth == depth]
            pairs = [(self.value(b.product[0]), self.value(b.product[1])) for b in level]  # type: ignore[index]
            for b, out in zip(level, mul_many(self.ctx, pairs)):
                b.share = out
        return [self.value(b) for b in outputs]

    def _collect(self, bits: list[Bit], products: dict[int, Bit], seen: set[int]) -> None:
        for b in bits:
            if id(b) in seen or b.share is not None:
                continue
            seen.add(id(b))
            if b.product is not None:
                products[id(b)] = b
                self._collect(list(b.product), products, seen)
            else:
                self._collect([t for _, t in b.terms], products, seen)

    def value(self, b: Bit) -> Share:
        if b.share is not None:
            return b.share
        if id(b) in self.done:
            return self.done[id(b)]
        ring = self.like.ring
        out = Share(ring.zeros(self.like.shape), ring, 0)
        for k, t in b.terms:
            out = out + self.value(t).scale_int(k)
        out = _plus(self.ctx, out, b.const)
        self.done[id(b)] = out
        return out


def _plus(ctx: PartyContext, x: Share, k: int) -> Share:
    """[x] + k for a public integer k (read in x's ring elements)."""
    if not ctx.is_leader or not k:
        return x
    return Share(x.ring.add(x.data, x.ring.constant(k)), x.ring, x.frac)


class _Signs:
    """Sign tests asked for by the leaves, run in one batch: `ask` returns a placeholder Bit."""

    def __init__(self, ctx: PartyContext) -> None:
        self.ctx = ctx
        self.inputs: list[Share] = []
        self.bits: list[Bit] = []

    def ask(self, x: Share, minus: int) -> Bit:
        """[x - minus < 0], x's ring elements read as integers."""
        self.inputs.append(_plus(self.ctx, x.with_frac(0), -minus))
        self.bits.append(Bit(0))
        return self.bits[-1]

    def run(self) -> None:
        if not self.inputs:
            return
        out = ltz(self.ctx, concat(self.inputs))
        for bit, share in zip(self.bits, split_like(out, self.inputs)):
            bit.share = share


def _encoded(x: Fraction | float, frac: int) -> int:
    return math.floor(Fraction(x) * (1 << frac))


class Having:
    """A SELECT's HAVING at one party, from the partials' round to the release.

    Its exact comparisons of COUNTs and SUMs (known from the partials' round) ride in the
    disclosure flags' batched comparison (`inputs`, answered by `receive`); the rest run in
    `gate`'s own batch. Without HAVING it asks for nothing."""

    def __init__(self, ctx: PartyContext, plan: Plan, counts: dict, sums: dict) -> None:
        self.ctx = ctx
        self.plan = plan
        stmt = plan.statement
        assert isinstance(stmt, ir.Select)
        self.stmt = stmt
        self.tree = having.condition(stmt) if stmt.having is not None else None
        self.early = _Signs(ctx)
        self.early_leaves: dict[int, tuple[Bit | None, Bit | None]] = {}
        self.pairs = []
        for leaf in having.leaves(self.tree) if self.tree is not None else []:
            if isinstance(leaf, having.Fixed) and having.early_leaf(stmt, leaf):
                known = {i: _early_value(stmt.aggregates[i], counts, sums) for i, _ in leaf.terms}
                self.early_leaves[id(leaf)] = _fixed_tests(self.early, leaf, known)

    @property
    def inputs(self) -> list[Share]:
        """The sign tests to run with the disclosure flags ([x < 0] each)."""
        return self.early.inputs

    def receive(self, bits: list[Share]) -> None:
        """The answers to `inputs`, in order."""
        for bit, share in zip(self.early.bits, bits):
            bit.share = share

    def gate(
        self, values: list[Share], floats: dict[int, Floating], hidden: dict[int, Share], null_of: dict[int, Share],
        empty: Share,
    ) -> tuple[dict[int, Share], dict[int, Share]]:
        """Steps 1-3 (module docstring): (keep_i, null_i) for the release, keep_i = T for every aggregate
        and null_i = [withheld or NULL], so that the release's products T (1 - null_i) gate each value;
        the products of step 4 wait in `pairs` for the release's last round. `floats`: the AVG, VAR and
        STDDEV values before their pending products."""
        assert self.tree is not None
        ctx, plan, tree = self.ctx, self.plan, self.tree
        bits = Bits(ctx, empty)
        signs = _Signs(ctx)
        rows = bits.of(empty) if plan.group_columns and plan.release_zero else None
        m = len(values)
        bad = {i: self._bad(bits, i, hidden, null_of) for i in range(m)}
        leaf_bits = {}
        for leaf in having.leaves(tree):
            if isinstance(leaf, having.NullTest):
                leaf_bits[id(leaf)] = _null_test(bits, leaf, hidden, null_of, rows)
                continue
            read = [i for i, _ in leaf.terms] if isinstance(leaf, having.Fixed) else [leaf.agg]
            known = 1 - self._unknown(bad[read[0]], read[0], null_of, rows)
            for i in read[1:]:
                known = known * (1 - self._unknown(bad[i], i, null_of, rows))
            if isinstance(leaf, having.Fixed):
                tests = self.early_leaves.get(id(leaf)) or _fixed_tests(signs, leaf, values)
                t = _fixed_cmp(leaf, values, *tests) * known
            else:
                t = _floated(signs, leaf, floats[leaf.agg], known)
            leaf_bits[id(leaf)] = (t, known - t)
        signs.run()
        t, f = _kleene(tree, leaf_bits)
        withheld = [bits.of(hidden[i]) for i in having.aggregates_read(tree)]
        while len(withheld) > 1:  # OR, as a tree
            pairs = zip(withheld[::2], withheld[1::2])
            withheld = [a + b - a * b for a, b in pairs] + withheld[len(withheld) // 2 * 2 :]
        out = bits.evaluate([t, 1 - t - f, withheld[0], *(bad[i] for i in range(m))])
        self.true, unknown, some_withheld, flags = out[0], out[1], out[2], out[3:]
        self.pairs = [(hidden[i].with_frac(0), self.true) for i in range(m)] + [(some_withheld, unknown)]
        return {i: self.true for i in range(m)}, dict(enumerate(flags))

    pairs: list[tuple[Share, Share]]
    """Step 4's products h_i T and W U, for the release's last round (none without HAVING)."""

    def outputs(self, empty: Share, hidden: dict[int, Share], products: list[Share]) -> tuple[Share, dict[int, Share]]:
        """(absent, shown hidden_i) from `pairs`' products (module docstring, step 4); without HAVING,
        `empty` and `hidden` as they are."""
        if self.tree is None:
            return empty, hidden
        *ht, shown = products
        absent = _plus(self.ctx, -(self.true + shown), 1)
        return absent, {i: h + shown for i, h in enumerate(ht)}

    def _bad(self, bits: Bits, i: int, hidden: dict[int, Share], null_of: dict[int, Share]) -> Bit:
        """[aggregate i is withheld or NULL], exclusive cases added without a product: an "empty"
        rule's NULL ([count == 0]) is released with zeros (h = 0) and withheld without them."""
        h = bits.of(hidden[i])
        if i not in null_of:
            return h
        n = bits.of(null_of[i])
        if stages(self.stmt.aggregates[i]).null == "empty" and i not in self._updated():
            return h + n if self.plan.release_zero else h
        return h + n - h * n

    def _unknown(self, bad: Bit, i: int, null_of: dict[int, Share], rows: Bit | None) -> Bit:
        """`bad`, or the group is empty (rows: GROUP BY with zeros released, where an empty group's
        counts are released, h = 0; an aggregate with a NULL rule is NULL there already)."""
        return bad + rows if rows is not None and i not in null_of else bad

    def _updated(self) -> set[int]:
        """Aggregates whose NULL flag gains a test of its own after the disclosure flags (CORR's flat variance)."""
        return {i for i, a in enumerate(self.stmt.aggregates) if a.func == "CORR"}


def _early_value(agg: ir.Aggregate, counts: dict, sums: dict) -> Share:
    return counts[count_key(agg)] if agg.func == "COUNT" else sums[("s", agg.column)]


def _fixed_tests(signs: _Signs, leaf: having.Fixed, values: dict[int, Share] | list[Share]
                 ) -> tuple[Bit | None, Bit | None]:
    """The sign tests of a `Fixed` leaf: ([Y < lo], [Y < hi]), each asked only if its operator needs it."""
    fracs = {i: values[i].frac for i, _ in leaf.terms}
    ints, lo, hi, op = having.integer_form(leaf, fracs)
    first = values[ints[0][0]]
    y = Share(first.ring.zeros(first.shape), first.ring, 0)
    for i, a in ints:
        y = y + values[i].with_frac(0).scale_int(a)
    lt = signs.ask(y, lo) if op in ("<", ">=", "=", "!=") else None
    le = signs.ask(y, hi) if op in ("<=", ">", "=", "!=") else None
    return lt, le


def _fixed_cmp(leaf: having.Fixed, values: list[Share], lt: Bit | None, le: Bit | None) -> Bit:
    op = having.integer_form(leaf, {i: values[i].frac for i, _ in leaf.terms})[3]
    if op in ("<", ">="):
        assert lt is not None
        return lt if op == "<" else 1 - lt
    assert le is not None
    if op in ("<=", ">"):
        return le if op == "<=" else 1 - le
    assert lt is not None
    return le - lt if op == "=" else 1 - le + lt


def _null_test(bits: Bits, leaf: having.NullTest, hidden: dict[int, Share], null_of: dict[int, Share],
               rows: Bit | None) -> tuple[Bit, Bit]:
    """(T, F) of `v IS [NOT] NULL`: unknown where v is withheld (or its group empty)."""
    known = 1 - bits.of(hidden[leaf.agg])
    if rows is not None:
        known = known - rows  # an empty group's counts are released (not withheld): exclusive
    if leaf.agg not in null_of:
        t, f = known - known, known
    else:
        t = known * bits.of(null_of[leaf.agg])
        f = known - t
    return (f, t) if leaf.negated else (t, f)


def _zero(like: Bit) -> Bit:
    return like - like


WINDOW = 2
"""Exponents within +-WINDOW of c's are decided by the mantissa: a released mantissa lies in [1/8, 4) in
magnitude whatever its kind (means and variances [1/2, 1), roots [2^-1/2, 2^1/2), variances beside
a root [1/2, 2)), so beyond the window the exponent alone decides."""


def _floated(signs: _Signs, leaf: having.Floated, value: Floating, known: Bit) -> Bit:
    """T = known [v < c] (or known [v >= c]) for v = m 2^E (`queries.floats`), E the exponent with the group's
    scale added (the pending product's shift, unconditionally: a zero value is told by m), and
    c = m_c 2^e_c (m_c in [1/2, 1)): for c > 0, v < c = [v <= 0] + [v > 0]([E < e_c - W] +
    sum_d [E = e_c + d][m < c 2^-(e_c + d)]) over |d| <= W (`WINDOW`); for c < 0,
    [v < 0]([E > e_c + W] + the same sum); for c = 0, [v < 0]. `known` enters the first products
    (known [v <= 0], known [v < 0]), so that T costs no level beyond [v < c]."""
    m = value.mantissa
    shift = value.pending[0][0] if value.pending else None
    e = value.exponent if shift is None else value.exponent + shift.with_frac(value.exponent.frac)
    c = Fraction(leaf.c)
    quarter = _encoded(Fraction(1, 4), m.frac)
    if c == 0:
        t = known * signs.ask(m, -quarter)
    else:
        ec = int(np.frexp(leaf.c)[1])
        below = [signs.ask(e, (ec + d) << e.frac) for d in range(-WINDOW, WINDOW + 2)]  # [E < e_c + d]
        window = below[0] - below[0]
        for j, d in enumerate(range(-WINDOW, WINDOW + 1)):
            at = below[j + 1] - below[j]  # [E = e_c + d]
            window = window + at * signs.ask(m, _encoded(c / Fraction(2) ** (ec + d), m.frac))
        if c > 0:
            known_non_positive = known * signs.ask(m, quarter)
            t = known_non_positive + (known - known_non_positive) * (below[0] + window)
        else:
            t = (known * signs.ask(m, -quarter)) * ((1 - below[-1]) + window)
    return t if leaf.below else known - t


def _kleene(tree: having.Tree, leaf_bits: dict[int, tuple[Bit, Bit]]) -> tuple[Bit, Bit]:
    if not isinstance(tree, tuple):
        return leaf_bits[id(tree)]
    if tree[0] == "not":
        t, f = _kleene(tree[1], leaf_bits)
        return f, t
    (t1, f1), (t2, f2) = _kleene(tree[1], leaf_bits), _kleene(tree[2], leaf_bits)
    if tree[0] == "and":
        return t1 * t2, f1 + f2 - f1 * f2
    return t1 + t2 - t1 * t2, f1 * f2
