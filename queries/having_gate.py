"""HAVING inside MPC: which groups are released, decided on shares, nothing opened but masked values.

`gate` runs at the executor's release (`queries.executor._select`), when every aggregate's
value is at hand as a share and before any is gated. For the condition compiled by
`queries.having` it computes, per group, shared bits T (the condition is true) and F (false);
neither is opened. With W = [some aggregate the condition reads is withheld by the disclosure
rule] and U = 1 - T - F (unknown: a NULL or a withheld aggregate decides it):

1. Every leaf's comparisons, for all groups, in one batched sign test (`protocols.compare.ltz`):
   a `Fixed` leaf compares the integer sum A_i X_i of the values' encodings with its bounds
   (`queries.having.integer_form`); a `Floated` leaf v = m 2^E against c = m_c 2^e_c takes
   [m < +-1/4] (the sign of v), [E < e_c], [E < e_c + 1] and [m < m_c].
2. Products of bits, level by level (every product of a level in one round, `Bits`):
   a floating leaf is v < c = [v <= 0] + [v > 0]([E < e_c] + [E = e_c][m < m_c]) for c > 0,
   [v < 0]([E > e_c] + [E = e_c][m < m_c]) for c < 0; a leaf is known where none of its
   aggregates is NULL or withheld (k = prod(1 - bad_i)), T = cmp k, F = k - T; three-valued
   (Kleene) AND: T = T1 T2, F = F1 + F2 - F1 F2; OR the dual; NOT swaps T and F. With GROUP BY
   and zeros released, the condition is ANDed with [the group has rows] (SQL has no empty groups).
3. S = W U: the group is shown with every value withheld, its outcome undecided without a
   withheld value (so nothing about that value shows). Per aggregate i, h_i T in the same round.
4. The release then gates aggregate i by keep_i = T - h_i T (so a dropped group's values and
   NULL flags are zero), releases h_i T + S as its suppression flag and 1 - T - S as `empty`
   (absent): a group the condition drops is released exactly as an empty one, all zeros but
   for that flag, whatever its values.
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
from queries.floats import Floating


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


def gate(
    ctx: PartyContext, stmt: ir.Select, grouped: bool, values: list[Share], floats: dict[int, Floating],
    hidden: dict[int, Share], null_of: dict[int, Share], empty: Share,
) -> tuple[Share, dict[int, Share], dict[int, Share]]:
    """(absent, keep_i, shown hidden_i) for the release (module docstring, steps 1-4). `floats`: the
    AVG, VAR and STDDEV values before their pending products; `grouped`: GROUP BY with zeros released
    (`empty` is then [rows == 0])."""
    tree = having.condition(stmt)
    bits = Bits(ctx, empty)
    signs = _Signs(ctx)
    bad: dict[int, Bit] = {}
    for i in having.aggregates_read(tree):
        h = bits.of(hidden[i])
        bad[i] = h if i not in null_of else h + bits.of(null_of[i]) - h * bits.of(null_of[i])
    leaf_bits = {id(leaf): _leaf(ctx, bits, signs, leaf, values, floats, hidden, null_of, bad)
                 for leaf in having.leaves(tree)}
    signs.run()
    t, f = _kleene(tree, leaf_bits)
    if grouped:
        rows = bits.of(empty)
        t, f = t * (1 - rows), f + rows - f * rows
    withheld = [bits.of(hidden[i]) for i in having.aggregates_read(tree)]
    while len(withheld) > 1:
        withheld = [a + b - a * b for a, b in zip(withheld[::2], withheld[1::2])] + withheld[len(withheld) // 2 * 2:]
    shown = withheld[0] * (1 - t - f)
    ht = [bits.of(hidden[i]) * t for i in range(len(values))]
    out = bits.evaluate([t, shown, *ht])
    t_s, s_s, ht_s = out[0], out[1], out[2:]
    absent = _plus(ctx, -(t_s + s_s), 1)
    keep = {i: t_s - ht_s[i] for i in range(len(values))}
    flags = {i: ht_s[i] + s_s for i in range(len(values))}
    return absent, keep, flags


def _leaf(
    ctx: PartyContext, bits: Bits, signs: _Signs, leaf: having.Leaf, values: list[Share],
    floats: dict[int, Floating], hidden: dict[int, Share], null_of: dict[int, Share], bad: dict[int, Bit],
) -> tuple[Bit, Bit]:
    """(T, F) of one leaf."""
    if isinstance(leaf, having.NullTest):
        known = 1 - bits.of(hidden[leaf.agg])
        t = known * bits.of(null_of[leaf.agg]) if leaf.agg in null_of else None
        if t is None:
            return (known, _zero(known)) if leaf.negated else (_zero(known), known)
        return (known - t, t) if leaf.negated else (t, known - t)
    if isinstance(leaf, having.Fixed):
        fracs = {i: values[i].frac for i, _ in leaf.terms}
        ints, lo, hi, op = having.integer_form(leaf, fracs)
        y = Share(values[0].ring.zeros(values[0].shape), values[0].ring, 0)
        for i, a in ints:
            y = y + values[i].with_frac(0).scale_int(a)
        lt = signs.ask(y, lo) if op in ("<", ">=", "=", "!=") else None
        le = signs.ask(y, hi) if op in ("<=", ">", "=", "!=") else None
        cmp = {"<": lt, ">=": 1 - lt if lt else None, "<=": le, ">": 1 - le if le else None}.get(op)
        if op in ("=", "!="):
            assert lt is not None and le is not None
            cmp = le - lt if op == "=" else 1 - le + lt
        assert cmp is not None
        read = [i for i, _ in leaf.terms]
    else:
        cmp = _floated(signs, leaf, floats[leaf.agg])
        read = [leaf.agg]
    known = 1 - bad[read[0]]
    for i in read[1:]:
        known = known * (1 - bad[i])
    t = cmp * known
    return t, known - t


def _zero(like: Bit) -> Bit:
    return like - like


def _floated(signs: _Signs, leaf: having.Floated, value: Floating) -> Bit:
    """[v < c] (or its complement) for v = m 2^E (`queries.floats`), E the exponent with the
    group's scale added (the pending product's shift, unconditionally: a zero value is told by m)."""
    m = value.mantissa
    shift = value.pending[0][0] if value.pending else None
    e = value.exponent if shift is None else value.exponent + shift.with_frac(value.exponent.frac)
    c = leaf.c
    if c == 0:
        lt = signs.ask(m, -_encoded(Fraction(1, 4), m.frac))
    else:
        mc, ec = np.frexp(c)
        below_exp = signs.ask(e, int(ec) << e.frac)
        to_next = signs.ask(e, (int(ec) + 1) << e.frac)
        same_exp = to_next - below_exp
        below_mant = signs.ask(m, _encoded(float(mc), m.frac))
        if c > 0:
            non_positive = signs.ask(m, _encoded(Fraction(1, 4), m.frac))
            lt = non_positive + (1 - non_positive) * (below_exp + same_exp * below_mant)
        else:
            negative = signs.ask(m, -_encoded(Fraction(1, 4), m.frac))
            lt = negative * ((1 - to_next) + same_exp * below_mant)
    return lt if leaf.below else 1 - lt


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
