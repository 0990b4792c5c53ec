"""The MPC half of a plan: from every party's local partials to shares of the released values.

Every party runs `execute` with its own `LocalData`; the returned shares go to the analyst,
who alone reconstructs them (`queries.result.finish`). All arithmetic on the totals runs
in the precise ring (Z_2^128, 40 fractional bits); each stage batches every group and
every aggregate into one call of each protocol, so the number of rounds does not grow with
the number of groups or aggregates of a kind.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.arith import add_public
from protocols.beaver import PendingMul, mul_many
from protocols.boolean import lanes, pack_lanes
from protocols.compare import MaskedJob, not_bit, signs_zeros_and_jobs
from protocols.normalize import table_pairs
from protocols.opening import open_arith
from protocols.products import PendingProducts, products
from protocols.reciprocal import table_spec
from protocols.sharing import share_inputs, share_words
from queries import dp_release, group_scales, ir
from queries.aggregates import count_key, stages
from queries.crosstab import crosstab
from queries.errors import QueryError
from queries.extreme_tree import extreme_inputs, extreme_pairs, tree_extremes
from queries.floats import releases, settle
from queries.having_gate import Having
from queries.local import COUNT_OPS, PER_PARTY_OPS, LocalData, encode_private, partials
from queries.moments import centred_sums, correlations, divisors, first_divisions, spreads
from queries.plan import Plan
from queries.pushdown_partials import sum_columns
from queries.quantiles import quantiles, rank_input
from queries.scaling import ROOT_BOUND, exact_sums, exponents


def _share_partials(
    ctx: PartyContext, plan: Plan, local: LocalData, scales: dict[tuple[str, str], int]
) -> tuple[dict, list[dict], dict, group_scales.Shared]:
    """Every party's partials, shared in one round: the totals of summed measures, each
    party's own shares of its counts and local means (for the parallel-axis rule), the
    exact pooled SUM of each summed column (an integer column's at frac 0, so exact at any size),
    and the candidates of the AVG, VAR, STDDEV and CORR columns' group scales with their bits
    (`queries.group_scales`; the bits XOR-shared from the pairwise seeds, no message).

    Columns in `scales` enter the moment partials as x 2^-s (`queries.scaling`). Counts are
    input as integers (frac 0) and lifted exactly to the fixed-point scale for the totals,
    so a party's count can multiply a fixed-point value without truncation. The SUMs are
    sum round(x 2^40) computed exactly (`queries.scaling.exact_sums`), read at 40 bits.
    """
    fp = ctx.precise
    mine = partials(plan, local, scales)
    counts = [j for j, m in enumerate(plan.measures) if m[0] in COUNT_OPS]
    encoded = encode_private(fp, mine)
    if counts:
        encoded[counts] = encode_private(fp, np.rint(mine[counts]).astype(np.int64), 0)
    summed = [("s", c) for c in sum_columns(plan) if ("s", c) in plan.measures]  # SUM's exact values
    limit = 1 << (fp.ring.bits - 3)
    exact = []
    for _, column in summed:
        row = exact_sums(local, column, _sum_frac(plan, column, fp.frac))
        if any(abs(v) * ctx.n >= limit for v in row):
            raise QueryError(f"SUM({column}): a site's sum is beyond the supported range")
        exact.append(fp.ring.reduce(np.array(row, dtype=object)))
    if exact:
        encoded = np.concatenate([encoded, np.stack(exact).astype(encoded.dtype)])
    bits, candidates = group_scales.local_inputs(plan, local, scales)
    rows = [len(encoded), len(encoded) + len(candidates)]
    if len(candidates):
        encoded = np.concatenate([encoded, encode_private(fp, candidates).astype(encoded.dtype)])
    inputs = share_inputs(ctx, encoded, fp.ring, 0, "partials")
    words = share_words(ctx, pack_lanes(bits), [(lanes(bits.size),)] * ctx.n, "scale-bits") if bits.size else []
    ring = fp.ring
    per_party: list[dict] = []
    for share in inputs:
        own = {}
        for j, m in enumerate(plan.measures):
            own[m] = Share(share.data[j], ring, 0 if m[0] in COUNT_OPS else fp.frac)
        per_party.append(own)
    totals: dict = {}
    for m in plan.measures:
        if m[0] in PER_PARTY_OPS:
            continue
        total = per_party[0][m]
        for own in per_party[1:]:
            total = total + own[m]
        totals[m] = _as_fixed(ctx, total) if m[0] in COUNT_OPS else total
    sums: dict = {}
    base = len(plan.measures)
    for j, m in enumerate(summed):
        parts = [Share(share.data[base + j], ring, _sum_frac(plan, m[1], fp.frac)) for share in inputs]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        sums[m] = total
    groups = group_scales.gather(
        plan, words, [Share(share.data[rows[0] : rows[1]], ring, fp.frac) for share in inputs], plan.groups
    )
    return totals, per_party, sums, groups


def _sum_frac(plan: Plan, column: str, frac: int) -> int:
    """Fractional bits of a column's exact SUM: 0 for an integer column (released as an exact
    integer), else the precise scale."""
    return 0 if column in plan.integer_columns else frac


def _flags(
    ctx: PartyContext, below: list[tuple[Share, float]], zero: list[Share], scaled: group_scales.Shared,
    bits_of: tuple[Share, list[int]] | None, jobs: list[MaskedJob],
) -> tuple[list[Share], list[Share], Share, Share | None, list[Share]]:
    """[x < c] for each (x, c) and [x == 0] for each x, each kind batched and both kinds side by
    side in the same rounds (`protocols.compare.signs_zeros_and_jobs`); those rounds also run the group
    scales' AND tree (`queries.group_scales`, step 2) and the bit decomposition of `bits_of`
    (the quantiles' ranks: `queries.quantiles.rank_input`) and the `jobs` (the divisors' exponent:
    `queries.moments.Divisors`)."""
    shifted = [add_public(ctx, x, -c) for x, c in below]
    same = concat([z.with_frac(zero[0].frac) for z in zero])  # a zero test reads no scale
    rows = scaled.rows if scaled.count else None
    value, wanted = bits_of if bits_of else (None, [])
    lt, eq, above, bits, done = signs_zeros_and_jobs(ctx, concat(shifted), same, rows, scaled.count, value, wanted,
                                                     jobs)
    if above is None:
        above = Share(same.ring.zeros((0,)), same.ring, 0)
    return split_like(lt, shifted), split_like(eq, zero), above, bits, done


def _as_fixed(ctx: PartyContext, bit: Share) -> Share:
    """A 0/1 integer share at the precise scale (exact)."""
    f = ctx.precise.frac
    return Share(bit.ring.lshift(bit.data, f), bit.ring, f)


def execute(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """This party's shares of the released values, in the order `finish` expects."""
    if plan.privacy is not None:  # differential privacy: noisy statistics instead (`queries.dp_release`)
        return dp_release.release(ctx, plan, local)
    if isinstance(plan.statement, ir.Crosstab):
        return crosstab(ctx, plan, local)
    return _select(ctx, plan, local)


def _quantile_floor(q: float, k: int) -> float:
    """The pooled count n below which QUANTILE(x, q) is suppressed: it needs q n >= k and (1 - q) n >= k,
    so that at least k contributing values lie at or below the released value and k at or above it.
    QUANTILE(x, 0) and (x, 1) are MIN and MAX (refused unless a site allows extremes): they need n >= k."""
    side = min(q, 1.0 - q)
    return float(k) if side <= 0 else min(k / side, float(2**60))


class Flags(NamedTuple):
    """What `_thresholds` computes."""

    empty: Share
    """[rows == 0] per group (zeros when zeros are not released)"""
    hidden: dict[int, Share]
    """per aggregate: suppressed"""
    null: dict[int, Share]
    """per aggregate with a null rule: NULL (before the variances' own test)"""
    quantile_hidden: dict[tuple[str, float], Share]
    """the quantile search's flag per (column, q)"""
    scales: Share
    """the group scales' z(j) (`queries.group_scales`, step 2)"""
    signs: list[Share]
    """[x < 0] per x of the `signs` asked for"""
    rank_bits: Share | None
    """the quantiles' rank bits (`queries.quantiles.rank_input`), None without quantiles"""
    jobs: list[Share]
    """the converted rows of each of `_thresholds`' jobs"""


def _thresholds(
    ctx: PartyContext, plan: Plan, t: dict, scaled: group_scales.Shared, signs: list[Share],
    bits_of: tuple[Share, list[int]] | None, jobs: list[MaskedJob],
) -> Flags:
    """Every disclosure flag of a SELECT, from one batched comparison and one batched zero test run side by side
    (which also gives the group scales' z(j): `queries.group_scales`, step 2).

    Per aggregate i with contributing count c_i (`queries.aggregates.count_key`), k the minimum
    cell size and z = 1 if zeros are released:
    1. small_i = [c_i < k], zero_i = [c_i == 0]; QUANTILE(x, q): small_i = [min(q, 1 - q) c_i < k].
    2. hidden_i = small_i - z zero_i: suppressed (1..k-1 contributors, or 0 when zeros are not released).
    3. null_i (before the variances' own test), by the aggregate's null rule: [c_i == 0] ("empty":
       AVG, MIN, MAX, QUANTILE), [c_i < 2] ("single": VAR, STDDEV, CORR, whose flat variance is added later).
    `empty` = [rows == 0] is all zeros when zeros are not released, so that an empty group looks
    like a suppressed one. Other steps' independent tests ride in the same rounds: the sign tests
    of `signs` (at the precise ring) join the batched comparison, and `bits_of`'s bits are
    decomposed beside it, and `jobs` run beside it (`_flags`).
    """
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    k = plan.min_cell
    keys = list(dict.fromkeys([("rows",)] + [count_key(a) for a in stmt.aggregates]))
    below: list[tuple[Share, float]] = [(t[key], float(k)) for key in keys]
    spots: dict[int, int] = {}
    for i, agg in enumerate(stmt.aggregates):
        if stages(agg).quantile:
            assert agg.q is not None
            spots[i] = len(below)
            below.append((t[count_key(agg)], _quantile_floor(agg.q, k)))
        elif stages(agg).null == "single":
            spots[i] = len(below)
            below.append((t[count_key(agg)], 1.5))
    extra = len(below)
    below += [(x.with_frac(t[("rows",)].frac), 0.0) for x in signs]
    lts, eqs, more, bits, done = _flags(ctx, below, [t[key] for key in keys], scaled, bits_of, jobs)
    lts, extra_signs = lts[:extra], lts[extra:]
    small = dict(zip(keys, lts))
    zero = dict(zip(keys, eqs))

    def hide(bit: Share, key: tuple[str, ...]) -> Share:
        return bit - zero[key] if plan.release_zero else bit

    hidden: dict[int, Share] = {}
    null: dict[int, Share] = {}
    quantile_hidden: dict[tuple[str, float], Share] = {}
    for i, agg in enumerate(stmt.aggregates):
        key, rule = count_key(agg), stages(agg)
        if rule.quantile:
            assert agg.column is not None and agg.q is not None
            hidden[i] = hide(lts[spots[i]], key)
            quantile_hidden[(agg.column, agg.q)] = lts[spots[i]]
        else:
            hidden[i] = hide(small[key], key)
        if rule.null == "empty":
            null[i] = zero[key]
        elif rule.null == "single":
            null[i] = lts[spots[i]]
    rows = ("rows",)
    g = plan.groups
    empty = zero[rows] if plan.release_zero else Share(t[rows].ring.zeros((g,)), t[rows].ring, 0)
    return Flags(empty, hidden, null, quantile_hidden, more, extra_signs, bits, done)


def _select(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """Shares of [empty, value_1..m, null_1..m, hidden_1..m, exponents] per group (`queries.result.finish`):
    AVG, VAR and STDDEV values are mantissas, their exponents follow in order (`queries.floats`).

    Each released number is kept only if it has at least k contributing rows (`_thresholds`);
    a suppressed or NULL value is multiplied by zero in MPC, and a NULL flag is released only
    for values that are not suppressed. What each aggregate takes part in is its row of
    `queries.aggregates.STAGES`.
    """
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    aggs = list(enumerate(stmt.aggregates))
    scales = exponents(ctx, plan, local)
    t, per_party, sums, candidates = _share_partials(ctx, plan, local, scales)
    rows = t[("rows",)]
    ext_in = extreme_inputs(ctx, plan, local)
    ext_pairs = extreme_pairs(ext_in)  # the first level of the extremes' tree
    counts = {c: t[("n", c)] for c, _ in plan.quantiles}
    having = Having(ctx, plan, t, sums)  # HAVING's tests of COUNTs and SUMs ride with the flags (none without)
    dividing = divisors(ctx, aggs, per_party)  # their exponent is found beside the flags
    job = dividing.job(ctx)
    empty, hidden, null_of, quantile_hidden, zs, ext_lt, rank_bits, done = _thresholds(
        ctx, plan, t, candidates, [a - b for a, b in ext_pairs] + having.inputs, rank_input(ctx, plan, counts),
        [job] if job else [],
    )
    having.receive(ext_lt[len(ext_pairs) :])

    # One batched round of products aligns the AVG, VAR, STDDEV and CORR columns' candidates to
    # their group scales, takes the selections of the extremes' first level (`protocols.select.minimum`)
    # and the release gates (1 - hidden)(1 - null) of the aggregates whose NULL flags are final (not CORR's).
    moments = [(i, agg) for i, agg in aggs if stages(agg).centred]
    keep = {i: not_bit(ctx, hidden[i]) for i in range(len(aggs))}
    early = [i for i in sorted(null_of) if not stages(stmt.aggregates[i]).pairwise and stmt.having is None]
    gates = [(keep[i], not_bit(ctx, null_of[i])) for i in early]
    lead = job.finish(done[0]) if job else None
    gates += table_pairs(lead, [table_spec(lead)]) if lead else []  # the divisors' table S
    align, shifts = group_scales.align_pairs(ctx, candidates, zs, plan.groups)
    ext_picked, picked = _one_round(ctx, gates + [(bit, a - b) for bit, (a, b) in zip(ext_lt, ext_pairs)], align)
    both = dict(zip(early, ext_picked))
    s_tab = ext_picked[len(early)] if lead else None
    ext_picked = ext_picked[len(early) + (1 if lead else 0) :]
    firsts = ext_in[: len(ext_in) // 2]
    ext_level = [s for (a, b), d in zip(ext_pairs, ext_picked) for s in split_like(b + d.with_frac(a.frac), firsts)]
    grouped = group_scales.aligned(candidates, picked, shifts, ctx.n)
    at_group = {**t, **grouped.totals}  # the scaled columns are read at their group scales
    per_group = [{**own, **mine} for own, mine in zip(per_party, grouped.per_party)]

    # First divisions: the means (AVG, VAR, STDDEV and CORR at their group scales), by the counts
    # (`queries.moments.Divisors`: a NULL mean's divisor is not replaced, its value is never released).
    nums, owners = [], []
    for i, agg in aggs:
        x, y, rule = agg.column, agg.column2, stages(agg)
        if rule.pairwise:
            nums += [at_group[("px", x, y)], at_group[("py", x, y)]]
        elif rule.means:
            nums.append(at_group[("s", x)])
        owners += [(i, name) for name in rule.means]
    means, later = first_divisions(ctx, nums, dividing, lead, s_tab)  # n - 1 prepared too
    first = dict(zip(owners, means))

    # Centred sums, (co)variances, and the floating-point release of AVG, VAR and STDDEV with
    # their scales 2^(s - c), 4^(s - c) and 2^(s - c) added to the exponents (`queries.floats`).
    centred = centred_sums(ctx, moments, per_group, at_group, first)
    variances, corr_parts = spreads(ctx, moments, centred, later)
    col = {i: agg.column or "" for i, agg in aggs}
    avg_i = [i for i, agg in aggs if stages(agg).release == "mean"]
    var_i = list(variances)
    is_root = [stages(stmt.aggregates[i]).release == "root" for i in var_i]
    mean_items = [(first[(i, "mean")], scales[("one", col[i])], grouped.shifts[col[i]]) for i in avg_i]
    var_items = [(variances[i], scales[("one", col[i])], grouped.shifts[col[i]]) for i in var_i]
    mean_out, var_out = releases(ctx, mean_items, var_items, is_root, ROOT_BOUND)
    floats = dict(zip(avg_i + var_i, mean_out + var_out))
    corr = correlations(ctx, corr_parts, null_of)

    # Extremes and quantiles.
    ext = tree_extremes(ctx, plan, ext_level + ext_in[2 * len(firsts) :])
    quant = quantiles(ctx, plan, local, rank_bits, quantile_hidden, scales)

    # Release: value x (1 - hidden)(1 - null), an integer bit, so exact; one batched product round (two
    # with CORR or STDDEV: their NULL flags or exponents need one more).
    picks = {
        "count": lambda i, agg: t[count_key(agg)] if agg.column else rows,
        "sum": lambda i, agg: sums[("s", agg.column)],
        "float": lambda i, agg: floats[i].mantissa,  # the exponent follows the hidden flags
        "corr": lambda i, agg: corr[i],
        "extreme": lambda i, agg: ext[(agg.func.lower(), agg.column)],
        "quantile": lambda i, agg: quant[(agg.column, agg.q)],
    }
    values: list[Share] = [picks[stages(agg).value](i, agg) for i, agg in aggs]
    floats_i = [i for i, agg in aggs if stages(agg).release]
    if stmt.having is not None:  # HAVING's outcome gates every value; its flags ride in the last round
        keep, null_of = having.gate(values, floats, hidden, null_of, empty)
    with_null = [i for i in sorted(null_of) if i not in both]  # CORR's: its NULL flag takes the variances
    pending = [(a, b) for i in floats_i for a, b, _ in floats[i].pending]  # `queries.floats.releases`
    first_round = mul_many(ctx, [(keep[i], not_bit(ctx, null_of[i])) for i in with_null] + pending)
    both |= dict(zip(with_null, first_round))
    pos = len(with_null)
    for i in floats_i:
        count = len(floats[i].pending)
        floats[i] = settle(floats[i], first_round[pos : pos + count])
        values[i] = floats[i].mantissa
        pos += count
    gated = [(v, both.get(i, keep[i])) for i, v in enumerate(values)]
    gated += [(floats[i].exponent, both.get(i, keep[i])) for i in floats_i]
    released = mul_many(ctx, gated + having.pairs)
    zeros = Share(rows.ring.zeros((plan.groups,)), rows.ring, 0)
    nulls = [keep[i] - both[i] if i in both else zeros for i in range(len(values))]  # null and not hidden
    m = len(values)
    empty, shown = having.outputs(empty, hidden, released[len(gated) :])  # unchanged without HAVING
    return [empty, *released[:m], *nulls, *(shown[i] for i in range(m)), *released[m : len(gated)]]


def _one_round(
    ctx: PartyContext, pairs: list[tuple[Share, Share]], shared: list[tuple[Share, Share]]
) -> tuple[list[Share], list[Share]]:
    """The products of `pairs` (`mul_many`) and of `shared`, whose operands have one size and
    repeat (`protocols.products`: each distinct operand opened once), in one round."""
    if not shared:
        return mul_many(ctx, pairs), []
    if not pairs:
        return [], products(ctx, shared)
    plain, reused = PendingMul.begin(ctx, pairs), PendingProducts.begin(ctx, shared)
    mine, theirs = plain.shares(), reused.shares()
    opened = open_arith(ctx, mine + theirs, "beaver")
    return plain.finish(ctx, opened[: len(mine)]), reused.finish(ctx, opened[len(mine) :])
