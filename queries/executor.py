"""The MPC half of a plan: from every party's local partials to shares of the released values.

Every party runs `execute` with its own `LocalData`; the returned shares go to the analyst,
who alone reconstructs them (`queries.result.finish`). All arithmetic on the totals runs
in the precise ring (Z_2^128, 40 fractional bits); each stage batches every group and
every aggregate into one call of each protocol, so the number of rounds does not grow with
the number of groups or aggregates of a kind.
"""

from __future__ import annotations

import numpy as np

from mpc.context import PartyContext
from mpc.errors import EncodingError
from mpc.fixedpoint import FixedPoint
from mpc.share import Share, concat, split_like
from protocols.arith import add_public
from protocols.beaver import mul_many
from protocols.compare import is_zero, ltz, not_bit
from protocols.division import divide
from protocols.roots import rsqrt
from protocols.select import minimum
from protocols.sharing import share_inputs
from protocols.truncation import truncate_many
from queries import ir
from queries.crosstab import crosstab
from queries.errors import QueryError
from queries.floats import floated, releases
from queries.local import COUNT_OPS, PER_PARTY_OPS, LocalData, extremes, partials
from queries.plan import Plan
from queries.quantiles import quantiles
from queries.scaling import ROOT_BOUND, exact_sums, exponents

SUM_BOUND = float(2**44)
"""Largest pooled count the divisions accept (their divisors are counts, below 2^44 by
`queries.scaling.MAX_ROWS`); the quotients (means up to 2^38, scaled variances up to 2^37)
stay below the division's 2^39."""


def _encode(fixed: FixedPoint, values: np.ndarray, frac: int | None = None) -> np.ndarray:
    """A party's private values in fixed point; a value out of range fails the query with a
    message that names no value (EncodingError's own message quotes the largest one, and a
    failure's message reaches the analyst and the peers)."""
    try:
        return fixed.encode(values, frac)
    except EncodingError:
        bound = 2.0 ** (fixed.ring.bits - 3 - (fixed.frac if frac is None else frac))
        raise QueryError(
            f"a value or partial sum at this party is NaN, infinite or beyond the supported range (±{bound:.3g})"
        ) from None


def _share_partials(
    ctx: PartyContext, plan: Plan, local: LocalData, scales: dict[tuple[str, str], int]
) -> tuple[dict, list[dict], dict]:
    """Every party's partials, shared in one round: the totals of summed measures, each
    party's own shares of its counts and local means (for the parallel-axis rule), and the
    exact pooled SUM of each summed column (an integer column's at frac 0, so exact at any size).

    Columns in `scales` enter the moment partials as x 2^-s (`queries.scaling`). Counts are
    input as integers (frac 0) and lifted exactly to the fixed-point scale for the totals,
    so a party's count can multiply a fixed-point value without truncation. The SUMs are
    sum round(x 2^40) computed exactly (`queries.scaling.exact_sums`), read at 40 bits.
    """
    fp = ctx.precise
    mine = partials(plan, local, scales)
    counts = [j for j, m in enumerate(plan.measures) if m[0] in COUNT_OPS]
    encoded = _encode(fp, mine)
    if counts:
        encoded[counts] = _encode(fp, np.rint(mine[counts]).astype(np.int64), 0)
    summed = [m for m in plan.measures if m[0] == "s"]
    limit = 1 << (fp.ring.bits - 3)
    exact = []
    for m in summed:
        row = exact_sums(local, m[1], _sum_frac(plan, m[1], fp.frac))
        if any(abs(v) * ctx.n >= limit for v in row):
            raise QueryError(f"SUM({m[1]}): a site's sum is beyond the supported range")
        exact.append(fp.ring.reduce(np.array(row, dtype=object)))
    if exact:
        encoded = np.concatenate([encoded, np.stack(exact).astype(encoded.dtype)])
    inputs = share_inputs(ctx, encoded, fp.ring, 0, "partials")
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
    return totals, per_party, sums


def _sum_frac(plan: Plan, column: str, frac: int) -> int:
    """Fractional bits of a column's exact SUM: 0 for an integer column (released as an exact
    integer), else the precise scale."""
    return 0 if column in plan.integer_columns else frac


def _flags(ctx: PartyContext, below: list[tuple[Share, float]], zero: list[Share]) -> tuple[list[Share], list[Share]]:
    """[x < c] for each (x, c) and [x == 0] for each x, each kind in one batched call."""
    lt_out: list[Share] = []
    if below:
        shifted = [add_public(ctx, x, -c) for x, c in below]
        lt_out = split_like(ltz(ctx, concat(shifted)), shifted)
    eq_out: list[Share] = []
    if zero:
        eq_out = split_like(is_zero(ctx, concat(zero)), zero)
    return lt_out, eq_out


def _as_fixed(ctx: PartyContext, bit: Share) -> Share:
    """A 0/1 integer share at the precise scale (exact)."""
    f = ctx.precise.frac
    return Share(bit.ring.lshift(bit.data, f), bit.ring, f)


def _fmul(ctx: PartyContext, pairs: list[tuple[Share, Share]]) -> list[Share]:
    """Fixed-point products at the precise scale, batched (two rounds)."""
    if not pairs:
        return []
    return truncate_many(ctx, mul_many(ctx, pairs), ctx.precise.frac)


def execute(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """This party's shares of the released values, in the order `finish` expects."""
    if isinstance(plan.statement, ir.Crosstab):
        return crosstab(ctx, plan, local)
    return _select(ctx, plan, local)


def _count_key(agg: ir.Aggregate) -> tuple[str, ...]:
    """The measure that counts an aggregate's contributing rows: its own non-null count."""
    if agg.column is None:
        return ("rows",)
    if agg.func == "CORR":
        return ("pn", agg.column, agg.column2 or "")
    return ("n", agg.column)


def _quantile_floor(q: float, k: int) -> float:
    """The pooled count n below which QUANTILE(x, q) is suppressed: it needs q n >= k and (1 - q) n >= k,
    so that at least k contributing values lie at or below the released value and k at or above it.
    QUANTILE(x, 0) and (x, 1) are MIN and MAX (refused unless a site allows extremes): they need n >= k."""
    side = min(q, 1.0 - q)
    return float(k) if side <= 0 else min(k / side, float(2**60))


def _thresholds(
    ctx: PartyContext, plan: Plan, t: dict
) -> tuple[Share, dict[int, Share], dict[int, Share], dict[tuple[str, float], Share]]:
    """Every disclosure flag of a SELECT, from one batched comparison and one batched zero test.

    Per aggregate i with contributing count c_i (its own non-null count; COUNT(*): the rows;
    CORR: the rows with both values), k the minimum cell size and z = 1 if zeros are released:
    1. small_i = [c_i < k], zero_i = [c_i == 0]; QUANTILE(x, q): small_i = [min(q, 1 - q) c_i < k].
    2. hidden_i = small_i - z zero_i: suppressed (1..k-1 contributors, or 0 when zeros are not released).
    3. null_i (before the variances' own test): [c_i == 0] for AVG, MIN, MAX and QUANTILE; [c_i < 2]
       for VAR and STDDEV; [c_i < 2] for CORR (a flat variance is added later).
    Returns (empty, hidden, null, quantile_hidden): `empty` = [rows == 0] (all zeros when zeros are
    not released, so an empty group looks like a suppressed one), and the search's flag per (column, q).
    """
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    k = plan.min_cell
    keys = list(dict.fromkeys([("rows",)] + [_count_key(a) for a in stmt.aggregates]))
    below: list[tuple[Share, float]] = [(t[key], float(k)) for key in keys]
    spots: dict[tuple[str, int], int] = {}
    for i, agg in enumerate(stmt.aggregates):
        if agg.func == "QUANTILE":
            assert agg.q is not None
            spots[("q", i)] = len(below)
            below.append((t[_count_key(agg)], _quantile_floor(agg.q, k)))
        elif agg.func in ("VAR", "STDDEV", "CORR"):
            spots[("two", i)] = len(below)
            below.append((t[_count_key(agg)], 1.5))
    lts, eqs = _flags(ctx, below, [t[key] for key in keys])
    small = dict(zip(keys, lts))
    zero = dict(zip(keys, eqs))

    def hide(bit: Share, key: tuple[str, ...]) -> Share:
        return bit - zero[key] if plan.release_zero else bit

    hidden: dict[int, Share] = {}
    null: dict[int, Share] = {}
    quantile_hidden: dict[tuple[str, float], Share] = {}
    for i, agg in enumerate(stmt.aggregates):
        key = _count_key(agg)
        if agg.func == "QUANTILE":
            assert agg.column is not None and agg.q is not None
            hidden[i] = hide(lts[spots[("q", i)]], key)
            quantile_hidden[(agg.column, agg.q)] = lts[spots[("q", i)]]
        else:
            hidden[i] = hide(small[key], key)
        if agg.func in ("AVG", "MIN", "MAX", "QUANTILE"):
            null[i] = zero[key]
        elif agg.func in ("VAR", "STDDEV", "CORR"):
            null[i] = lts[spots[("two", i)]]
    rows = ("rows",)
    g = plan.groups
    empty = zero[rows] if plan.release_zero else Share(t[rows].ring.zeros((g,)), t[rows].ring, 0)
    return empty, hidden, null, quantile_hidden


def _select(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """Shares of [empty, value_1..m, null_1..m, hidden_1..m, exponents] per group (`queries.result.finish`):
    AVG, VAR and STDDEV values are mantissas, their exponents follow in order (`queries.floats`).

    Each released number is kept only if it has at least k contributing rows (`_thresholds`);
    a suppressed or NULL value is multiplied by zero in MPC, and a NULL flag is released only
    for values that are not suppressed.
    """
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    scales = exponents(ctx, plan, local)
    t, per_party, sums = _share_partials(ctx, plan, local, scales)
    rows = t[("rows",)]
    empty, hidden, null_of, quantile_hidden = _thresholds(ctx, plan, t)

    # Denominators: where an aggregate is NULL its count n is replaced, so every division is
    # defined: n + z for AVG (z = [n == 0]); n + z (2 - n) for VAR, STDDEV, CORR (z = [n < 2]),
    # so that n - 1 >= 1. Exact (z is an integer bit), one batched round of products.
    moments = [(i, agg) for i, agg in enumerate(stmt.aggregates) if agg.func in ("VAR", "STDDEV", "CORR")]
    count_of = {
        i: t[("pn", agg.column, agg.column2)] if agg.func == "CORR" else t[("n", agg.column)] for i, agg in moments
    }
    fixes = mul_many(ctx, [(null_of[i], add_public(ctx, -count_of[i], 2.0)) for i, _ in moments])
    safe = {i: count_of[i] + fix for (i, _), fix in zip(moments, fixes)}

    # Stage 2: first divisions (means).
    nums, dens, owners = [], [], []
    for i, agg in enumerate(stmt.aggregates):
        x, y = agg.column, agg.column2
        if agg.func == "AVG" and scales[("avg", x or "")] == 0:
            exact = sums[("s", x)]  # the exact sum: the mean keeps the absolute resolution 2^-40
            nums.append(exact if exact.frac else _as_fixed(ctx, exact))
            dens.append(t[("n", x)] + _as_fixed(ctx, null_of[i]))
            owners.append((i, "mean"))
        elif agg.func in ("AVG", "VAR", "STDDEV"):
            nums.append(t[("s", x)])
            dens.append(t[("n", x)] + _as_fixed(ctx, null_of[i]) if agg.func == "AVG" else safe[i])
            owners.append((i, "mean"))
        elif agg.func == "CORR":
            nums += [t[("px", x, y)], t[("py", x, y)]]
            dens += [safe[i], safe[i]]
            owners += [(i, "mx"), (i, "my")]
    q1 = _divide_all(ctx, nums, dens)
    first = {owner: q for owner, q in zip(owners, q1)}

    # Stage 3: pooled centred sums by the parallel-axis rule (Chan, Golub & LeVeque, 1979):
    # M = sum_p M_p + sum_p n_p (m_p - m)^2 (and the same for cross products), from every
    # party p's local mean m_p and local centred sum M_p. Unlike sum x^2 - (sum x)^2 / n, this
    # keeps its precision when the mean is large against the spread. Three rounds: squares,
    # their truncation, and the product with each party's integer count.
    pairs, keys = [], []
    for i, agg in moments:
        x, y = agg.column, agg.column2
        for own in per_party:
            if agg.func == "CORR":
                dx = own[("pmx", x, y)] - first[(i, "mx")]
                dy = own[("pmy", x, y)] - first[(i, "my")]
                pairs += [(dx, dx), (dy, dy), (dx, dy)]
                keys += [(i, name, own[("pn", x, y)]) for name in ("sxx", "syy", "sxy")]
            else:
                d = own[("mean", x)] - first[(i, "mean")]
                pairs.append((d, d))
                keys.append((i, "ss", own[("n", x)]))
    weighted = mul_many(ctx, [(n_p, sq) for (_, _, n_p), sq in zip(keys, _fmul(ctx, pairs))])
    centred: dict[tuple[int, str], Share] = {}
    for i, agg in moments:
        x, y = agg.column, agg.column2
        if agg.func == "CORR":
            for name, op in (("sxx", "pm2x"), ("syy", "pm2y"), ("sxy", "pcxy")):
                centred[(i, name)] = t[(op, x, y)]
        else:
            centred[(i, "ss")] = t[("m2", x)]
    for (i, name, _), w in zip(keys, weighted):
        centred[(i, name)] = centred[(i, name)] + w

    # Stage 4: (co)variances (divide by n - 1), then square roots and inverse square roots.
    # CORR = cov / (sd_x sd_y) from the variances rather than the centred sums, so that its
    # range limit (variances below SUM_BOUND) does not shrink as the rows grow.
    nums, dens, owners = [], [], []
    for i, agg in moments:
        n_minus_1 = add_public(ctx, safe[i], -1.0)
        for name in ("sxx", "syy", "sxy") if agg.func == "CORR" else ("ss",):
            nums.append(centred[(i, name)])
            dens.append(n_minus_1)
            owners.append((i, name))
    scaled = dict(zip(owners, _divide_all(ctx, nums, dens)))
    fp_frac = ctx.precise.frac
    var_i = [i for i, agg in moments if agg.func != "CORR"]
    rs_in = [(i, name) for i, agg in moments if agg.func == "CORR" for name in ("sxx", "syy")]
    nonneg, flat = _relu_all(ctx, [scaled[(i, "ss")] for i in var_i] + [scaled[k] for k in rs_in], len(var_i))
    variances = dict(zip(var_i, nonneg[: len(var_i)]))
    # AVG, VAR and STDDEV as (mantissa, exponent), their scales 2^s, 4^s and 2^s added to the
    # exponents (`queries.floats`): relative precision at any magnitude, nothing opened.
    avg_i = [i for i, agg in enumerate(stmt.aggregates) if agg.func == "AVG"]
    is_root = [stmt.aggregates[i].func == "STDDEV" for i in var_i]
    col = [stmt.aggregates[i].column or "" for i in range(len(stmt.aggregates))]
    mean_items = [(first[(i, "mean")], scales[("avg", col[i])]) for i in avg_i]
    var_items = [(variances[i], scales[("one", col[i])]) for i in var_i]  # v 4^s, sd 2^s
    mean_out, var_out = releases(ctx, mean_items, var_items, is_root, ROOT_BOUND)
    floats = dict(zip(avg_i + var_i, mean_out + var_out))
    # The inverse roots are taken of v 2^-CORR_SHIFT (the same shares read with more fractional
    # bits), so that they are near 1 where their resolution is relative; the product below
    # takes the 2^-CORR_SHIFT back in its last truncation.
    shifted = [_plus_tiny(ctx, v).with_frac(fp_frac + CORR_SHIFT) for v in nonneg[len(var_i) :]]
    inv = dict(zip(rs_in, _batched(ctx, rsqrt, shifted, ROOT_BOUND / 2.0**CORR_SHIFT)))
    # corr = cov / (sd_x sd_y); as in pandas it is NULL where either variance is zero, so the
    # NULL flag becomes 1 - (1 - [n < 2])(1 - [v_x ~ 0])(1 - [v_y ~ 0]), its products batched
    # into the rounds of the two products of the formula.
    corr_i = [i for i, agg in enumerate(stmt.aggregates) if agg.func == "CORR"]
    flat_x = [not_bit(ctx, z) for z in flat[0::2]]
    flat_y = [not_bit(ctx, z) for z in flat[1::2]]
    first_round = mul_many(
        ctx, [(scaled[(i, "sxy")], inv[(i, "sxx")]) for i in corr_i] + list(zip(flat_x, flat_y))
    )
    half = truncate_many(ctx, first_round[: len(corr_i)], fp_frac) if corr_i else []
    second_round = mul_many(
        ctx,
        [(h, inv[(i, "syy")]) for h, i in zip(half, corr_i)]
        + [(not_bit(ctx, null_of[i]), a) for i, a in zip(corr_i, first_round[len(corr_i) :])],
    )
    corr_prods = [p.with_frac(p.frac + CORR_SHIFT) for p in second_round[: len(corr_i)]]
    corr = dict(zip(corr_i, truncate_many(ctx, corr_prods, fp_frac + CORR_SHIFT) if corr_i else []))
    for i, defined in zip(corr_i, second_round[len(corr_i) :]):
        null_of[i] = not_bit(ctx, defined)

    # Stage 5: extremes and quantiles.
    ext = _extremes(ctx, plan, local)
    counts = {col: t[("n", col)] for col, _ in plan.quantiles}
    quant = quantiles(ctx, plan, local, counts, quantile_hidden)

    # Release: value x (1 - hidden)(1 - null), an integer bit, so exact; two batched product rounds.
    values: list[Share] = []
    for i, agg in enumerate(stmt.aggregates):
        if agg.func == "COUNT":
            values.append(t[("n", agg.column)] if agg.column else rows)
        elif agg.func == "SUM":
            values.append(sums[("s", agg.column)])
        elif agg.func in ("AVG", "VAR", "STDDEV"):
            values.append(floats[i][0])  # the mantissa; the exponent follows the hidden flags
        elif agg.func == "CORR":
            values.append(corr[i])
        elif agg.func in ("MIN", "MAX"):
            assert agg.column is not None
            values.append(ext[(agg.func.lower(), agg.column)])
        else:
            assert agg.column is not None and agg.q is not None
            values.append(quant[(agg.column, agg.q)])
    floats_i = [i for i, agg in enumerate(stmt.aggregates) if floated(agg.func)]
    keep = {i: not_bit(ctx, hidden[i]) for i in range(len(values))}
    with_null = sorted(null_of)
    both = dict(zip(with_null, mul_many(ctx, [(keep[i], not_bit(ctx, null_of[i])) for i in with_null])))
    gated = [(v, both.get(i, keep[i])) for i, v in enumerate(values)]
    gated += [(floats[i][1], both.get(i, keep[i])) for i in floats_i]
    released = mul_many(ctx, gated)
    zeros = Share(rows.ring.zeros((plan.groups,)), rows.ring, 0)
    nulls = [keep[i] - both[i] if i in both else zeros for i in range(len(values))]  # null and not hidden
    m = len(values)
    return [empty, *released[:m], *nulls, *(hidden[i] for i in range(m)), *released[m:]]


def _divide_all(ctx: PartyContext, nums: list[Share], dens: list[Share]) -> list[Share]:
    if not nums:
        return []
    out = divide(ctx, concat(nums), concat(dens), y_bound=SUM_BOUND)
    return split_like(out, nums)


def _batched(ctx: PartyContext, fn: object, xs: list[Share], bound: float = ROOT_BOUND) -> list[Share]:
    if not xs:
        return []
    out = fn(ctx, concat(xs), y_bound=bound)  # type: ignore[operator]
    return split_like(out, xs)


CORR_SHIFT = 36
"""CORR's inverse roots are of v 2^-36 (scaled variances v <= 2^37), so near 1 and precise."""

ZERO_VARIANCE = 2.0**-10
"""A scaled pooled variance v' (`queries.scaling`: max |x'| in (2^17, 2^18]) below this counts as
zero: CORR is then NULL, as in pandas for a constant column. v' carries an absolute error of a
few units of 2^-40, so above this CORR is within ~1e-8; below it (a variance below ~2^-45 max
x^2, sd below ~1.7e-7 max |x|) it is withheld rather than imprecise."""


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


def _extremes(ctx: PartyContext, plan: Plan, local: LocalData) -> dict[tuple[str, str], Share]:
    """Secure min/max across parties of the local extremes, every (kind, column) batched."""
    if not plan.extremes:
        return {}
    fp = ctx.precise
    rows = [_encode(fp, row if kind == "min" else -row) for row, (kind, _) in zip(extremes(plan, local), plan.extremes)]
    inputs = share_inputs(ctx, np.stack(rows), fp.ring, fp.frac, "extremes")
    while len(inputs) > 1:
        half = len(inputs) // 2
        merged = split_like(minimum(ctx, concat(inputs[:half]), concat(inputs[half : 2 * half])), inputs[:half])
        inputs = merged + inputs[2 * half :]
    best = inputs[0]
    out = {}
    for j, (kind, col) in enumerate(plan.extremes):
        value = best[j]
        out[(kind, col)] = value if kind == "min" else -value
    return out
