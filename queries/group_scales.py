"""Private per-group scales for AVG, VAR, STDDEV and CORR: each group at its own power of two, none opened.

A column's public scale 2^s (`queries.scaling`, s = e - 18 with 2^e above the column's largest
|x|) follows the largest value over all groups, so fixed point at that scale would leave a
group of small values only the column's absolute resolution. Instead every group g is brought
to its own scale 2^(s - C_g), C_g in 0..D, where 2^(e - C_g) is the power of two above the
group's largest |x| over all parties (a group below 2^(e - D) shares the scale of 2^(e - D)).
A *scaled set* is one column over some rows: an AVG's, VAR's or STDDEV's column over its
non-null rows, or each column of a CORR(x, y) over the rows where both are present. No party
learns C_g, nor any party's own exponent:

1. Locally, party p takes c_p = e - a_p (clamped to 0..D; D without a value), a_p the least
   integer with its largest |x| in g at most 2^a_p. It XOR-shares the bits [c_p > j] for j < D
   (from the pairwise seeds: no message) and inputs, for every candidate j <= c_p, its values
   of x 2^-(s - j) (exact in float64; each |x 2^-(s - j)| <= 2^18), zeros for j > c_p, in the
   partials' round: its sum ("s"), mean ("mean") and centred sum of squares ("m2"), and for
   CORR the factors of its centred cross product, r_p sd_x,p for x and sd_y,p for y ("sd":
   population sd and correlation, so that n_p r_p sd_x,p sd_y,p is its centred cross sum).
2. z(j) = AND_p [c_p > j] = [C_g > j] with C_g = min_p c_p: an AND tree over the parties,
   side by side with the suppression flags' tests (`protocols.compare.signs_zeros_and_jobs`;
   no round of its own, 2 (n - 1) + 1 bits per candidate and peer). The one-hot
   u(j) = [C_g == j] = z(j - 1) - z(j) (z(-1) = 1, z(D) = 0) and C_g = sum_j z(j) are local.
3. Aligned values v = sum_j u(j) V(j), one product per candidate, exact (u is an integer bit),
   in the round of the NULL denominators' products, u(j) opened once for all of its products
   (`protocols.products`); sums and centred sums are added over the parties first, the means
   and sd factors (for the parallel-axis rule) stay per party.
4. The group's largest |x| is now in (2^17, 2^18]: the parallel-axis rule and the divisions
   run as before (`queries.moments`), with an absolute resolution relative to the group's own
   values; the released exponents of AVG, VAR and STDDEV add s - C_g or 2 (s - C_g) where the
   value is nonzero (`queries.floats.settle`); CORR is scale-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from protocols.compare import not_bit
from queries import ir
from queries.aggregates import stages
from queries.local import LocalData
from queries.plan import Plan
from queries.scaling import HEADROOM

SPAN = 63
"""D: groups get their own scale down to 2^-63 (~1e-19) of the column's largest |x|."""

KINDS = ("s", "mean", "m2", "sd")
"""The values each party inputs per candidate scale: its sum, mean, centred sum of squares and
(CORR) its cross-product factor."""

SUMMED = frozenset({"s", "m2"})
"""Kinds added over the parties before they are aligned; the others stay per party."""

_KEYS = {
    "": {"s": "s", "mean": "mean", "m2": "m2"},
    "x": {"s": "px", "mean": "pmx", "m2": "pm2x", "sd": "rsx"},
    "y": {"s": "py", "mean": "pmy", "m2": "pm2y", "sd": "sy"},
}
"""Each side's kinds as measure names (`queries.plan`; "rsx" r_p sd_x,p and "sy" sd_y,p are CORR's own)."""


@dataclass(frozen=True)
class Scaled:
    """One scaled set: `column` over its non-null rows (pair None), or over the rows where both
    of CORR's (x, y) are present, as its `side` "x" or "y"; `kinds` are what each party inputs."""

    column: str
    kinds: tuple[str, ...]
    pair: tuple[str, str] | None = None
    side: str = ""

    def key(self, kind: str) -> tuple[str, ...]:
        """The measure key the aligned value stands for in the executor."""
        name = _KEYS[self.side][kind]
        return (name, self.column) if self.pair is None else (name, *self.pair)


def sets(plan: Plan) -> tuple[Scaled, ...]:
    """The plan's scaled sets: each AVG, VAR and STDDEV column with the kinds it needs (the sum
    for a mean, all but "sd" for a variance), and each CORR's two columns over their common rows."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    one: dict[str, set[str]] = {}
    pairs: set[tuple[str, str]] = set()
    for agg in stmt.aggregates:
        rule = stages(agg)
        if rule.pairwise and agg.column and agg.column2:
            pairs.add((agg.column, agg.column2))
        elif rule.release and agg.column:
            one.setdefault(agg.column, set()).update({"s"} if rule.release == "mean" else {"s", "mean", "m2"})
    out = [Scaled(col, tuple(k for k in KINDS if k in kinds)) for col, kinds in sorted(one.items())]
    for x, y in sorted(pairs):
        out += [Scaled(x, KINDS, (x, y), "x"), Scaled(y, KINDS, (x, y), "y")]
    return tuple(out)


def _exponent(largest: float) -> int:
    """The least integer a with largest <= 2^a (largest > 0)."""
    mantissa, a = np.frexp(largest)
    return int(a) - 1 if mantissa == 0.5 else int(a)


def _moments(local: LocalData, scaled: Scaled) -> dict[str, np.ndarray]:
    """Per group, over the set's rows: count "n", largest |x| "amax", and each kind's own value
    (see `local_inputs`), from the party's per-group aggregates (`queries.pushdown_partials`)."""
    st, col = local.stats, scaled.column
    if scaled.pair is None:
        n, largest, total = st[("n", col)], st[("amax", col)], st[("sum", col)]
        m2 = st.get(("m2", col), np.zeros(local.groups))
        other_m2 = cross = np.zeros(local.groups)
    else:
        other = scaled.pair[1] if scaled.side == "x" else scaled.pair[0]
        n, largest = st[("pn", *scaled.pair)], st[("pamax", col, other)]
        total, m2, other_m2 = st[("psum", col, other)], st[("pm2", col, other)], st[("pm2", other, col)]
        cross = st[("pcross", *scaled.pair)]
    rows = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    sd_other = np.sqrt(other_m2 / rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd_x = np.where(sd_other > 0, cross / rows / sd_other, 0.0)  # r_p sd_x,p (`_KEYS`)
    sd = np.sqrt(m2 / rows) if scaled.side == "y" else sd_x
    return {"n": np.asarray(n), "amax": np.asarray(largest, dtype=np.float64), "s": np.asarray(total),
            "mean": total / rows, "m2": np.asarray(m2), "sd": sd}


def local_inputs(plan: Plan, local: LocalData, scales: dict[tuple[str, str], int]) -> tuple[np.ndarray, np.ndarray]:
    """This party's bits [c_p > j] (flat: set, j < D, group) and candidate values (D + 1 rows per
    set and kind, one column per group). See the module docstring, step 1; `scales` holds the
    columns' public s (`queries.scaling.exponents`)."""
    bits, values = [], []
    groups = local.groups
    for scaled in sets(plan):
        own = _moments(local, scaled)
        s = scales[("one" if scaled.pair is None else "pair", scaled.column)]
        cand = np.zeros((len(scaled.kinds), SPAN + 1, groups))
        lowest = np.full(groups, SPAN)
        for g in range(groups):
            if not own["n"][g] or not own["amax"][g] > 0:
                continue  # no value or only zeros: every candidate is 0, and c_p = D
            c = min(max(s + HEADROOM - _exponent(float(own["amax"][g])), 0), SPAN)
            lowest[g] = c
            for k, kind in enumerate(scaled.kinds):
                value = float(own[kind][g])
                for j in range(c + 1):
                    cand[k, j, g] = np.ldexp(value, -(2 if kind == "m2" else 1) * (s - j))
        bits.append(lowest[None, :] > np.arange(SPAN)[:, None])
        values.append(cand.reshape(len(scaled.kinds) * (SPAN + 1), groups))
    return (np.concatenate(bits).ravel() if bits else np.zeros(0, dtype=bool),
            np.concatenate(values) if values else np.zeros((0, groups)))


@dataclass(frozen=True)
class Shared:
    """The candidates' shares: the XOR-shared bits [c_p > j] as one row per party (`rows`, of
    `count` elements: set, j, group), and per (set, kind) the (D + 1, G) candidates, summed over
    the parties for "s" and "m2" (`totals`), per party for "mean" and "sd" (`per_party`)."""

    sets: tuple[Scaled, ...]
    rows: np.ndarray
    count: int
    totals: dict[tuple[int, str], Share]
    per_party: dict[tuple[int, str], list[Share]]


def gather(plan: Plan, words: list[np.ndarray], values: list[Share], groups: int) -> Shared:
    """Every party's shared inputs (by owner) into `Shared` (local)."""
    scaled = sets(plan)
    totals: dict[tuple[int, str], Share] = {}
    per_party: dict[tuple[int, str], list[Share]] = {}
    width, start = SPAN + 1, 0
    for i, one in enumerate(scaled):
        for kind in one.kinds:
            parts = [v[start : start + width] for v in values]
            start += width
            if kind in SUMMED:
                totals[(i, kind)] = _total(parts)
            else:
                per_party[(i, kind)] = parts
    rows = np.stack(words) if words else np.zeros((0, 0), dtype=np.uint64)
    return Shared(scaled, rows, len(scaled) * SPAN * groups, totals, per_party)


def _total(parts: list[Share]) -> Share:
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out


@dataclass(frozen=True)
class Aligned:
    """At the group scales, by measure key (`Scaled.key`): the pooled sums and centred sums
    (`totals`) and every party's means and sd factors (`per_party`); and C_g per AVG, VAR and
    STDDEV column (an integer share per group, `shifts`)."""

    totals: dict[tuple[str, ...], Share]
    per_party: list[dict[tuple[str, ...], Share]]
    shifts: dict[str, Share]


def align_pairs(
    ctx: PartyContext, shared: Shared, z: Share, groups: int
) -> tuple[list[tuple[Share, Share]], dict[int, Share]]:
    """Step 3's products u(j) V(j) from z(j) (`count` elements, in `Shared.rows`' order), each
    u passed as one Share object so that it is opened once (`protocols.products`); and C_g per set."""
    pairs: list[tuple[Share, Share]] = []
    shifts = {}
    ring = z.ring
    for i, scaled in enumerate(shared.sets):
        zs = Share(z.data[i * SPAN * groups : (i + 1) * SPAN * groups].reshape(SPAN, groups), ring, 0)
        first = not_bit(ctx, zs[:1])  # u(0) = 1 - z(0)
        u = Share(np.concatenate([first.data, ring.sub(zs.data[:-1], zs.data[1:]), zs.data[SPAN - 1 :]]), ring, 0)
        shifts[i] = Share(ring.sum(zs.data, axis=0), ring, 0)
        for kind in scaled.kinds:
            parts = [shared.totals[(i, kind)]] if kind in SUMMED else shared.per_party[(i, kind)]
            pairs += [(u, v) for v in parts]
    return pairs, shifts


def aligned(shared: Shared, products: list[Share], shifts: dict[int, Share], parties: int) -> Aligned:
    """Step 3's sums over the candidates (local)."""
    totals: dict[tuple[str, ...], Share] = {}
    per_party: list[dict[tuple[str, ...], Share]] = [{} for _ in range(parties)]
    picked = iter(Share(p.ring.sum(p.data, axis=0), p.ring, p.frac) for p in products)
    for scaled in shared.sets:
        for kind in scaled.kinds:
            if kind in SUMMED:
                totals[scaled.key(kind)] = next(picked)
            else:
                for own in per_party:
                    own[scaled.key(kind)] = next(picked)
    one = {scaled.column: shifts[i] for i, scaled in enumerate(shared.sets) if scaled.pair is None}
    return Aligned(totals, per_party, one)
