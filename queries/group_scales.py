"""Private per-group scales for VAR and STDDEV: each group at its own power of two, none opened.

A column's public scale 2^s (`queries.scaling`, s = e - 18 with 2^e above the column's largest
|x|) follows the largest value over all groups, so fixed point at that scale would leave a
group of small values only the column's absolute resolution. Instead every group g is brought
to its own scale 2^(s - C_g), C_g in 0..D, where 2^(e - C_g) is the power of two above the
group's largest |x| over all parties (a group below 2^(e - D) shares the scale of 2^(e - D)).
No party learns C_g, nor any party's own exponent:

1. Locally, party p takes c_p = e - a_p (clamped to 0..D; D without a value), a_p the least
   integer with its largest |x| in g at most 2^a_p. It inputs the bits [c_p <= j] for j < D
   and, for every candidate j <= c_p, its sum, mean and centred sum of squares of x 2^-(s - j)
   (exact in float64; each |x 2^-(s - j)| <= 2^18), zeros for j > c_p: in the partials' round.
2. T(j) = sum_p [c_p <= j] and z(j) = [T(j) == 0] = [C_g > j] with C_g = min_p c_p, in the
   suppression flags' batched zero test (`queries.executor._thresholds`; no round of its own).
   The one-hot u(j) = [C_g == j] = z(j - 1) - z(j) (z(-1) = 1, z(D) = 0) and C_g = sum_j z(j)
   are local.
3. Aligned values v = sum_j u(j) V(j), one product per candidate, exact (u is an integer bit),
   in the round of the NULL denominators' products; sums and centred sums are added over the
   parties first, the means (for the parallel-axis rule) stay per party.
4. The group's largest |x| is now in (2^17, 2^18]: the parallel-axis rule and the divisions
   run as before (`queries.moments`), with an absolute resolution relative to the group's own
   values, and the released exponents add s - C_g (STDDEV) or 2 (s - C_g) (VAR) where the
   value is nonzero (`queries.floats.settle`).
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
from queries.table import numeric

SPAN = 63
"""D: groups get their own scale down to 2^-63 (~1e-19) of the column's largest |x|."""

KINDS = ("s", "mean", "m2")
"""The values each party inputs per candidate scale: its sum, mean and centred sum of squares."""


def columns(plan: Plan) -> dict[str, tuple[str, ...]]:
    """The columns of the plan's AVG, VAR and STDDEV, each with the kinds of values it needs:
    the sum for a mean, the sum, means and centred sum for a variance."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    out: dict[str, tuple[str, ...]] = {}
    for agg in stmt.aggregates:
        release = stages(agg).release
        if release and agg.column:
            wanted = KINDS if release != "mean" else ("s",)
            out[agg.column] = tuple(k for k in KINDS if k in wanted or k in out.get(agg.column, ()))
    return dict(sorted(out.items()))


def _exponent(largest: float) -> int:
    """The least integer a with largest <= 2^a (largest > 0)."""
    mantissa, a = np.frexp(largest)
    return int(a) - 1 if mantissa == 0.5 else int(a)


def local_inputs(plan: Plan, local: LocalData, scales: dict[tuple[str, str], int]) -> tuple[np.ndarray, np.ndarray]:
    """This party's bits (D rows per column) and candidate values (D + 1 rows per column and kind), per group.

    See the module docstring, step 1; `scales[("one", col)]` is the column's public s.
    """
    bits, values = [], []
    groups = local.groups
    for col, kinds in columns(plan).items():
        s = scales[("one", col)]
        x = numeric(local.frame, col)
        present = ~np.isnan(x)
        cand = np.zeros((len(KINDS), SPAN + 1, groups))
        lowest = np.full(groups, SPAN)
        for g in range(groups):
            v = x[present & (local.group == g)]
            if not len(v) or not np.abs(v).max() > 0:
                continue  # no value or only zeros: every candidate is 0, and c_p = D
            c = min(max(s + HEADROOM - _exponent(float(np.abs(v).max())), 0), SPAN)
            lowest[g] = c
            mean = v.sum() / len(v)
            own = (v.sum(), mean, float(np.sum((v - mean) ** 2)))
            for j in range(c + 1):
                for k, (kind, value) in enumerate(zip(KINDS, own)):
                    cand[k, j, g] = np.ldexp(value, -(2 if kind == "m2" else 1) * (s - j))
        bits.append((lowest[None, :] <= np.arange(SPAN)[:, None]).astype(np.int64))
        values.append(cand[[KINDS.index(k) for k in kinds]].reshape(len(kinds) * (SPAN + 1), groups))
    g_shape = (0, groups)
    return (np.concatenate(bits) if bits else np.zeros(g_shape, dtype=np.int64),
            np.concatenate(values) if values else np.zeros(g_shape))


@dataclass(frozen=True)
class Shared:
    """The candidates' shares: per column, T(j) (D, G), and each kind's (D + 1, G) candidates,
    summed over the parties for "s" and "m2", per party for "mean"."""

    counts: dict[str, Share]
    sums: dict[tuple[str, str], Share]
    means: dict[str, list[Share]]


def gather(plan: Plan, bits: list[Share], values: list[Share]) -> Shared:
    """Every party's shared inputs (by owner) into `Shared` (local)."""
    counts: dict[str, Share] = {}
    sums: dict[tuple[str, str], Share] = {}
    means: dict[str, list[Share]] = {}
    width, start = SPAN + 1, 0
    for c, (col, kinds) in enumerate(columns(plan).items()):
        counts[col] = _total([b[c * SPAN : (c + 1) * SPAN] for b in bits])
        means[col] = []
        for kind in kinds:
            parts = [v[start : start + width] for v in values]
            start += width
            if kind == "mean":
                means[col] = parts
            else:
                sums[(kind, col)] = _total(parts)
    return Shared(counts, sums, means)


def _total(parts: list[Share]) -> Share:
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out


def zero_tests(shared: Shared) -> list[Share]:
    """The shares whose zero test step 2 needs: T(j) per column."""
    return list(shared.counts.values())


@dataclass(frozen=True)
class Aligned:
    """Per column at the group scales: the pooled sum ("s", col) and centred sum ("m2", col)
    (a variance's), each party's mean (a variance's), and C_g (an integer share per group)."""

    totals: dict[tuple[str, str], Share]
    means: dict[str, list[Share]]
    shifts: dict[str, Share]


def align_pairs(ctx: PartyContext, shared: Shared, zeros: list[Share]) -> tuple[list[tuple[Share, Share]], dict]:
    """Step 3's products u(j) V(j) (for one batched `mul_many`), and what `aligned` needs to finish."""
    pairs: list[tuple[Share, Share]] = []
    shifts = {}
    for col, z in zip(shared.counts, zeros):
        ring = z.ring
        one = not_bit(ctx, z[:1])  # u(0) = 1 - z(0)
        last = z[SPAN - 1 :]  # u(D) = z(D - 1)
        u = Share(np.concatenate([one.data, ring.sub(z.data[:-1], z.data[1:]), last.data]), ring, 0)
        shifts[col] = Share(ring.sum(z.data, axis=0), ring, 0)
        pairs += [(u, shared.sums[key]) for key in _summed(shared, col)]
        pairs += [(u, m) for m in shared.means[col]]
    return pairs, shifts


def _summed(shared: Shared, col: str) -> list[tuple[str, str]]:
    return [(kind, col) for kind in KINDS if (kind, col) in shared.sums]


def aligned(shared: Shared, products: list[Share], shifts: dict[str, Share]) -> Aligned:
    """Step 3's sums over the candidates (local)."""
    totals: dict[tuple[str, str], Share] = {}
    means: dict[str, list[Share]] = {}
    pos = 0
    for col in shared.counts:
        keys = _summed(shared, col)
        count = len(keys) + len(shared.means[col])
        picked = [Share(p.ring.sum(p.data, axis=0), p.ring, p.frac) for p in products[pos : pos + count]]
        totals.update(zip(keys, picked))
        means[col] = picked[len(keys) :]
        pos += count
    return Aligned(totals, means, shifts)
