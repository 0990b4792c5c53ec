"""Pooled second moments on shares: centred sums, (co)variances and correlations of a SELECT.

The executor (`queries.executor`) hands over the pooled means and every party's own shares
of its count, local means (and, for CORR, the factors of its centred cross sum) and the summed
local centred sums, at the groups' own scales (`queries.group_scales`); this module combines them by
the parallel-axis rule, divides by n - 1 and forms CORR. Every stage batches all groups and
aggregates into one call of each protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.arith import add_public
from protocols.beaver import mul_many
from protocols.compare import ltz, not_bit
from protocols.normalize import Exponent, ExponentJob
from protocols.products import products
from protocols.reciprocal import Prepared, divide_by, normalise_numerator, prepare
from protocols.roots import rsqrt
from protocols.truncation import truncate_many
from queries import ir
from queries.aggregates import count_key, stages
from queries.scaling import ROOT_BOUND

SUM_BOUND = float(2**44)
"""Largest pooled count the divisions accept (their divisors are counts, below 2^44 by
`queries.scaling.MAX_ROWS`); the quotients (means up to 2^38, scaled variances up to 2^37)
stay below the division's 2^39."""

CORR_SHIFT = 36
"""CORR's inverse roots are of v 2^-36 (scaled variances v <= 2^37), so near 1 and precise."""

ZERO_VARIANCE = 2.0**-10
"""A pooled variance v' at its group's own scale (`queries.group_scales`: the group's largest
|x'| in (2^17, 2^18]) below this counts as zero: CORR is then NULL, as in pandas for a constant
column. v' carries an absolute error of a few units of 2^-40, so above this CORR is within
~1e-8; below it (a variance below 2^-46 .. 2^-44 of the group's largest x^2, an sd below
1.2e-7 .. 2.4e-7 of its largest |x|: near-constant values, whatever the other groups) it is
withheld rather than imprecise."""

Moments = Sequence[tuple[int, ir.Aggregate]]
"""The aggregates with centred sums (VAR, STDDEV, CORR), with their positions in the SELECT."""

CorrParts = tuple[Share, Share, Share, Share, Share]
"""Per CORR: (cov, v_x, v_y, [v_x ~ 0], [v_y ~ 0]), from `spreads`."""


def count_total(per_party: Sequence[Mapping], key: tuple[str, ...]) -> Share:
    """A pooled count as an integer share (frac 0): the sum of every party's own count."""
    total = per_party[0][key]
    for own in per_party[1:]:
        total = total + own[key]
    return total


@dataclass(frozen=True)
class Divisors:
    """Every divisor of a SELECT's divisions, an integer share: the pooled count n of each mean
    (in the executor's order of the means), then n - 1 of each centred sum (in `spreads`' order),
    known before any flag. Where n is 0 (a mean) or below 2 (a spread) the quotient is NULL and
    never released, so the divisor need not be replaced: n = 0 and n - 1 in {-1, 0} give bounded
    quotients (their numerators are sums over no rows) that the release multiplies by 0."""

    y: Share | None
    means: int

    def job(self, ctx: PartyContext) -> ExponentJob | None:
        """Their exponent, to find beside the flags' comparisons (`queries.executor._thresholds`)."""
        return ExponentJob.of(ctx, self.y, SUM_BOUND) if self.y is not None else None


def divisors(ctx: PartyContext, aggs: Moments, per_party: Sequence[Mapping]) -> Divisors:
    """The `Divisors` of the aggregates `aggs` (every aggregate of the SELECT, with its position)."""
    counts = {key: count_total(per_party, key) for key in dict.fromkeys(count_key(agg) for _, agg in aggs)}
    means = [counts[count_key(agg)] for _, agg in aggs for _ in stages(agg).means]
    spread = [add_public(ctx, counts[count_key(agg)], -1.0) for _, agg in aggs for _ in stages(agg).centred]
    if not means and not spread:
        return Divisors(None, 0)
    return Divisors(concat(means + spread), sum(d.size for d in means))


def first_divisions(
    ctx: PartyContext, nums: list[Share], d: Divisors, e: Exponent | None, s_tab: Share | None
) -> tuple[list[Share], Prepared | None]:
    """nums[j] / n (the means), and the divisors n - 1 of `spreads` prepared in the same rounds
    (`protocols.reciprocal.prepare`, from their exponent `e` found beside the flags and its table
    `s_tab` multiplied in the executor's round of products: 13 rounds, then 2 for the means)."""
    if d.y is None:
        return [], None
    y = d.y
    later = y.size - d.means
    xs = [concat(nums + [Share(y.ring.zeros((later,)), y.ring, nums[0].frac)])] if nums else []
    prep, normalised = prepare(ctx, y, SUM_BOUND, xs, e, s_tab)
    rest = prep.part(d.means, y.size) if later else None
    if not nums:
        return [], rest
    quotients = divide_by(ctx, normalised[0][: d.means], prep.part(0, d.means))
    return split_like(quotients, nums), rest


def centred_sums(
    ctx: PartyContext, moments: Moments, per_party: list[dict], t: Mapping, means: Mapping[tuple[int, str], Share]
) -> dict[tuple[int, str], Share]:
    """Pooled centred sums by the parallel-axis rule (Chan, Golub & LeVeque, 1979).

    M = sum_p M_p + sum_p n_p (m_p - m)^2 (and the same for cross products), from every
    party p's local mean m_p and local centred sum M_p. Unlike sum x^2 - (sum x)^2 / n, this
    keeps its precision when the mean is large against the spread. CORR's columns have scales
    of their own per group (`queries.group_scales`), so a party's cross sum M_xy,p, at the
    product of both, enters as n_p a_p b_p with a_p = r_p sd_x,p at x's scale and b_p = sd_y,p
    at y's. Three rounds: the products (each distinct operand opened once), their truncation
    (a_p b_p and dx dy added first), and the product with each party's integer count.
    """
    pairs: list[tuple[Share, Share]] = []
    slots: list[tuple[int, str, int]] = []
    for i, agg in moments:
        x, y = agg.column, agg.column2
        for p, own in enumerate(per_party):
            if stages(agg).pairwise:
                dx = own[("pmx", x, y)] - means[(i, "mx")]
                dy = own[("pmy", x, y)] - means[(i, "my")]
                pairs += [(dx, dx), (dy, dy), (dx, dy), (own[("rsx", x, y)], own[("sy", x, y)])]
                slots += [(i, "sxx", p), (i, "syy", p), (i, "sxy", p), (i, "sxy", p)]
            else:
                d = own[("mean", x)] - means[(i, "mean")]
                pairs.append((d, d))
                slots.append((i, "ss", p))
    raw: dict[tuple[int, str, int], Share] = {}
    for slot, prod in zip(slots, products(ctx, pairs)):
        raw[slot] = raw[slot] + prod if slot in raw else prod
    squares = truncate_many(ctx, list(raw.values()), ctx.precise.frac)
    counts = []
    for i, _, p in raw:
        agg = dict(moments)[i]
        counts.append(per_party[p][("pn", agg.column, agg.column2) if stages(agg).pairwise else ("n", agg.column)])
    weighted = products(ctx, list(zip(counts, squares)))
    centred: dict[tuple[int, str], Share] = {}
    for i, agg in moments:
        x, y = agg.column, agg.column2
        if stages(agg).pairwise:
            centred[(i, "sxx")], centred[(i, "syy")] = t[("pm2x", x, y)], t[("pm2y", x, y)]
        else:
            centred[(i, "ss")] = t[("m2", x)]
    for (i, name, _), w in zip(raw, weighted):
        centred[(i, name)] = centred[(i, name)] + w if (i, name) in centred else w
    return centred


def spreads(
    ctx: PartyContext, moments: Moments, centred: Mapping[tuple[int, str], Share], prep: Prepared | None
) -> tuple[dict[int, Share], dict[int, CorrParts]]:
    """(Co)variances: each centred sum divided by n - 1 (its divisor prepared by `first_divisions`:
    4 rounds), then one batched comparison for max(v, 0) and for CORR's flat-variance test. Without a
    STDDEV among them, a VAR's variance skips max(v, 0): its release floors it at 0 in the rounds of
    its normalisation (`queries.floats.releases`).

    Returns the variance of each VAR and STDDEV, and per CORR (cov, v_x, v_y, [v_x ~ 0], [v_y ~ 0]).
    CORR uses the variances rather than the centred sums, so that its range limit (variances
    below SUM_BOUND) does not shrink as the rows grow.
    """
    nums, owners = [], []
    for i, agg in moments:
        for name in stages(agg).centred:
            nums.append(centred[(i, name)])
            owners.append((i, name))
    if not nums:
        return {}, {}
    assert prep is not None
    stacked = concat(nums)
    scaled = dict(zip(owners, split_like(divide_by(ctx, normalise_numerator(ctx, stacked, prep), prep), nums)))
    var_i = [i for i, agg in moments if not stages(agg).pairwise]
    corr_i = [i for i, agg in moments if stages(agg).pairwise]
    flat_in = [scaled[(i, name)] for i in corr_i for name in ("sxx", "syy")]
    if any(stages(agg).release == "root" for _, agg in moments):
        relu_i = var_i
    else:  # the release's normalisation floors them at 0 (`queries.floats.releases`)
        relu_i = []
    nonneg, flat = _relu_all(ctx, [scaled[(i, "ss")] for i in relu_i] + flat_in, len(relu_i))
    variances = {i: scaled[(i, "ss")] for i in var_i} | dict(zip(relu_i, nonneg[: len(relu_i)]))
    pos = nonneg[len(relu_i) :]
    corr = {
        i: (scaled[(i, "sxy")], pos[2 * j], pos[2 * j + 1], flat[2 * j], flat[2 * j + 1]) for j, i in enumerate(corr_i)
    }
    return variances, corr


def correlations(
    ctx: PartyContext, parts: Mapping[int, CorrParts], null_of: dict[int, Share]
) -> dict[int, Share]:
    """corr = cov / (sd_x sd_y) per CORR, from `spreads`; its NULL flag updated in `null_of`.

    The inverse roots are taken of v 2^-CORR_SHIFT (the same shares read with more fractional
    bits), so that they are near 1 where their resolution is relative; the product takes the
    2^-CORR_SHIFT back in its last truncation. As in pandas CORR is NULL where either variance
    is zero, so the NULL flag becomes 1 - (1 - [n < 2])(1 - [v_x ~ 0])(1 - [v_y ~ 0]), its
    products batched into the rounds of the two products of the formula.
    """
    if not parts:
        return {}
    fp_frac = ctx.precise.frac
    corr_i = list(parts)
    roots_in = [v for i in corr_i for v in parts[i][1:3]]
    shifted = [_plus_tiny(ctx, v).with_frac(fp_frac + CORR_SHIFT) for v in roots_in]
    inv = _batched(ctx, rsqrt, shifted, ROOT_BOUND / 2.0**CORR_SHIFT)
    flat_x = [not_bit(ctx, parts[i][3]) for i in corr_i]
    flat_y = [not_bit(ctx, parts[i][4]) for i in corr_i]
    first_round = mul_many(ctx, [(parts[i][0], inv[2 * j]) for j, i in enumerate(corr_i)] + list(zip(flat_x, flat_y)))
    half = truncate_many(ctx, first_round[: len(corr_i)], fp_frac)
    second_round = mul_many(
        ctx,
        [(h, inv[2 * j + 1]) for j, h in enumerate(half)]
        + [(not_bit(ctx, null_of[i]), a) for i, a in zip(corr_i, first_round[len(corr_i) :])],
    )
    corr_prods = [p.with_frac(p.frac + CORR_SHIFT) for p in second_round[: len(corr_i)]]
    corr = dict(zip(corr_i, truncate_many(ctx, corr_prods, fp_frac + CORR_SHIFT)))
    for i, defined in zip(corr_i, second_round[len(corr_i) :]):
        null_of[i] = not_bit(ctx, defined)
    return corr


def _batched(ctx: PartyContext, fn: Callable[..., Share], xs: list[Share], bound: float) -> list[Share]:
    if not xs:
        return []
    return split_like(fn(ctx, concat(xs), y_bound=bound), xs)


def _relu_all(ctx: PartyContext, xs: list[Share], skip: int) -> tuple[list[Share], list[Share]]:
    """max(x, 0) for each x (rounding can leave a variance a hair below zero), and
    [x < ZERO_VARIANCE] for each x after the first `skip`, from one batched comparison."""
    if not xs:
        return [], []
    flat = concat(xs)
    tested = [add_public(ctx, x, -ZERO_VARIANCE) for x in xs[skip:]]
    signs = split_like(ltz(ctx, concat([flat, *tested])), [flat, *tested])
    (fixed,) = mul_many(ctx, [(flat, not_bit(ctx, signs[0]))])  # x times an integer bit: exact
    return split_like(fixed, xs), signs[1:]


def _plus_tiny(ctx: PartyContext, x: Share) -> Share:
    """x + 2^-40, so that a zero variance gives a finite inverse root (CORR is then NULL)."""
    return add_public(ctx, x, 2.0**-40)
