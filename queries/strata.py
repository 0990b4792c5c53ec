"""CROSSTAB exposure BY outcome STRATA s in MPC: Mantel-Haenszel, Robins-Breslow-Greenland, Breslow-Day.

Per stratum i the 2 x 2 table has a = exposed cases, b = exposed non-cases, c = reference
cases, d = reference non-cases (the exposure's and the outcome's second sorted level against
the first, as `queries.epi`), n1 = a + b, n0 = c + d, m1 = a + c, m0 = b + d, n = n1 + n0.
Everything below runs on shares in Z_2^128 (40 fractional bits); only the final statistics
and yes/no bits are opened, as statsmodels' `StratifiedTable` computes them:

1. Each party shares its 2 x 2 x K counts as integers (no message with pairwise seeds);
   the pooled cells are their sum, the margins local sums. Two rounds of integer products
   (exact): ad, bc, a n0, c n1, n1 m1, n1 n0, m1 m0, a c, n^2, then (a + d) ad, (a + d) bc,
   (b + c) ad, (b + c) bc, n1 n0 m1 - a c n, n1 n0 m1 m0.
2. One batched sign and zero test: per stratum [lo <= n < k] (small), [n == 0], [n < 2],
   [n1 n0 m1 m0 == 0] (a zero margin); per cell of every stratum and of the table summed
   over the strata [lo <= x < k]; the total [N >= 2^22] (beyond the range of step 4); the
   zero tests of the sums of ad, bc, a n0, c n1 and n1 n0 m1 m0 (an estimate is undefined
   when its denominator or numerator is 0). The bits "no stratum small", "no cell small",
   "no summed cell small", "no stratum with rows has a zero margin" by a tree of products
   (`queries.crosstab.keep_bits`).
3. Per stratum one batched secure division (`protocols.division.divide`), the denominators
   n, n^2, n (n - 1) made 1 or more where they are 0: R = ad/n, S = bc/n, PR = (a + d) ad/n^2,
   PS, QR, QS likewise, a n0/n, c n1/n, (n1 n0 m1 - a c n)/n^2 (Greenland-Robins), E = n1 m1/n,
   n1 n0/n and m1 m0/(n (n - 1)) (their product is Var(a) under the null), and for
   Breslow-Day n1/n, m1/n, n1 m1/n^2, (d - a)/n, a/n on a stand-in table (1, 1, 1, 1) where
   a stratum has a zero margin (those strata are left out of Breslow-Day).
4. Summed over the strata (local); one round of products; one batched secure division:
   OR = sum R / sum S; 2 Var(log OR) = sum PR / (sum R)^2 + (sum PS + sum QR) / (sum R sum S)
   + sum QS / (sum S)^2 (Robins, Breslow and Greenland 1986); RR = sum a n0/n / sum c n1/n;
   Var(log RR) = sum (n1 n0 m1 - a c n)/n^2 / (sum a n0/n sum c n1/n) (Greenland and Robins
   1985); the Mantel-Haenszel chi2 (sum a - sum E)^2 / sum Var(a), no continuity correction.
5. Breslow-Day (statsmodels' `test_equal_odds`), in units of each stratum's n: with r = OR,
   p = n1/n, q = m1/n, the expected a/n is the root x of (1 - r) x^2 + B x - r p q = 0,
   B = (d - a)/n + r (p + q), taken as x = 2 r p q / (B + sqrt(D)) — the same root as
   statsmodels' (-B + sqrt(D)) / (2 (1 - r)), without its cancellation near r = 1. Every
   coefficient is divided by 1 + r first, with s = 1/(1 + r) = sum S / (sum R + sum S) from
   step 4's division (read at 60 fractional bits: `SHARE_BITS`), so that every number stays
   within a few units whatever the OR. D / (1 + r)^2 is summed as s^2 ((d - a)/n)^2 +
   s (1 - s) (2 n (n1 + m1) - 2 (n1^2 + m1^2))/n^2 + (1 - s)^2 ((b - c)/n)^2, three terms >= 0,
   so a near-double root (a huge or tiny OR) loses no digits. B + sqrt(D) cancels when B < 0
   (which needs r <= 1/2), so the same root is also found through the b cell's quadratic (the
   outcome's levels swapped: r -> 1/r, s -> 1 - s, where it cannot cancel), both side by side,
   and x = (1 - s) x_a + s (p - y_b): each weighted where it keeps its digits. One secure
   square root, one division; T = 1/x + 1/(q - x) + 1/(p - x) + 1/(1 - p - q + x) by one
   batched reciprocal, so that 1/Var(a) = T/n; the statistic sum n (a/n - x)^2 T; Tarone's
   correction (sum a - sum e)^2 / sum n / T by one reciprocal and one division.
6. Release (one round): each statistic times its keep bit (the pooled statistics' bit and
   its own "defined" bit), the per-stratum cells times "no cell small", the number of
   strata with rows; then the bits. The analyst (`queries.strata_result`) takes the square
   roots, CIs and p-values.
"""

from __future__ import annotations

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.arith import add_public, rescale_up
from protocols.beaver import mul_many
from protocols.compare import not_bit, signs_and_zeros
from protocols.division import divide, reciprocal
from protocols.roots import sqrt
from protocols.sharing import share_inputs
from protocols.truncation import truncate_each
from queries.crosstab import keep_bits
from queries.crosstab_rule import thresholds
from queries.local import LocalData, partials
from queries.plan import Plan

BOUND = float(2**44)
"""The divisions' and the square root's bound on their divisors (real units)."""

SHARE_BITS = 20
"""s = 1/(1 + OR) is divided out as s 2^20 (read at 60 fractional bits), so that a small s keeps its relative
precision: Breslow-Day's a - e is about s, and is squared."""

MAX_ROWS = 1 << 22
"""Rows in all (summed over the strata) that step 4's squares of sums keep below `BOUND`."""

STATISTICS = ("or", "or_var2", "rr", "rr_var", "mh_chi2", "bd_chi2", "bd_tarone")
"""The released statistics, in order (`or_var2`: twice the variance of log OR)."""

BITS = ("small_stratum", "small_cell", "cells_hidden", "or_ok", "rr_ok", "mh_ok", "bd_ok", "too_many_rows")
"""The released bits, in order."""


def _total(x: Share) -> Share:
    return Share(x.ring.sum(x.data).reshape(1), x.ring, x.frac)


def _spread(x: Share, size: int) -> Share:
    return Share(np.repeat(x.data, size), x.ring, x.frac)


def _lift(ctx: PartyContext, bit: Share) -> Share:
    """An integer share at the precise scale (exact)."""
    return rescale_up(bit, ctx.precise.frac)


def _fixed_products(ctx: PartyContext, pairs: list[tuple[Share, Share]], fracs: list[int] | None = None) -> list[Share]:
    """Products of fixed-point pairs, truncated back to the precise scale or to `fracs` (two rounds);
    a pair with an integer factor is exact and is not truncated."""
    prods = mul_many(ctx, pairs)
    keep = fracs or [ctx.precise.frac] * len(prods)
    cut = [max(p.frac - f, 0) for p, f in zip(prods, keep)]
    done = truncate_each(ctx, [(p.with_frac(c), c) for p, c in zip(prods, cut)])  # same cut, same scale
    return [t.with_frac(p.frac - c) for t, p, c in zip(done, prods, cut)]


def execute(ctx: PartyContext, plan: Plan, local: LocalData) -> list[Share]:
    """This party's shares of [cells, statistics, strata with rows, bits] (`STATISTICS`, `BITS`)."""
    ring = ctx.precise.ring
    k = plan.groups // 4
    mine = np.rint(partials(plan, local)[0]).astype(np.int64)
    sharings = share_inputs(ctx, mine, ring, 0, "strata-cells")
    cells = sharings[0]
    for other in sharings[1:]:
        cells = cells + other
    d, c, b, a = (cells[j * k : (j + 1) * k] for j in range(4))
    n1, n0, m1, m0 = a + b, c + d, a + c, b + d
    n = n1 + n0

    # 1. Integer products (exact).
    ad, bc, an0, cn1, n1m1, n1n0, m1m0, ac, nn, n1sq, m1sq, m0sq, nsum, nsum0, n1m0 = mul_many(
        ctx, [(a, d), (b, c), (a, n0), (c, n1), (n1, m1), (n1, n0), (m1, m0), (a, c), (n, n), (n1, n1), (m1, m1),
              (m0, m0), (n, n1 + m1), (n, n1 + m0), (n1, m0)])
    mid_a, mid_b = (nsum - n1sq - m1sq).scale_int(2), (nsum0 - n1sq - m0sq).scale_int(2)
    apd, bpc = a + d, b + c
    prn, psn, qrn, qsn, n1n0m1, acn, marg = mul_many(
        ctx, [(apd, ad), (apd, bc), (bpc, ad), (bpc, bc), (n1n0, m1), (ac, n), (n1n0, m1m0)])

    # 2. Disclosure and definedness bits.
    lo, min_cell, _ = thresholds(plan.min_cell, plan.release_zero)
    summed = Share(ring.sum(cells.data.reshape(4, k), axis=1), ring, 0)
    tested = [add_public(ctx, n, -min_cell), add_public(ctx, cells, -min_cell), add_public(ctx, summed, -min_cell),
              add_public(ctx, n, -2), add_public(ctx, _total(n), -MAX_ROWS)]
    zeros = [n, cells, summed, marg] + [_total(s) for s in (ad, bc, an0, cn1, marg)]
    lt, eq = signs_and_zeros(ctx, concat(tested), concat(zeros))
    lt_n, lt_cells, lt_summed, n_lt2, small_total = split_like(lt, tested)
    z_n, z_cells, z_summed, zm, z_ad, z_bc, z_an0, z_cn1, z_marg = split_like(eq, zeros)

    def small(below: Share, zero: Share) -> Share:
        return below - zero if lo else below

    strata_ok, cells_ok, summed_ok, margins_ok = keep_bits(
        ctx, [small(lt_n, z_n), small(lt_cells, z_cells), small(lt_summed, z_summed), zm - z_n])
    big = not_bit(ctx, small_total)
    dma = d - a
    guards = [(not_bit(ctx, z_ad), not_bit(ctx, z_bc)), (not_bit(ctx, z_an0), not_bit(ctx, z_cn1)),
              (strata_ok, summed_ok), (margins_ok, not_bit(ctx, big))]
    guards += [(zm, add_public(ctx, -x, v)) for x, v in ((n1, 2), (m1, 2), (n, 4), (a, 1), (n1m1, 4), (nn, 16))]
    guards += [(zm, dma), (zm, n)]
    guards += [(zm, add_public(ctx, -x, v)) for x, v in ((mid_a, 16), (mid_b, 16), (n1m0, 4))] + [(zm, c - b)]
    or_def, rr_def, ok0, margins_big, *fixes = mul_many(ctx, guards)
    g_n1, g_m1, g_n, g_a, g_n1m1, g_nn = (x + fix for x, fix in zip((n1, m1, n, a, n1m1, nn), fixes))
    g_dma, n_bd = dma - fixes[6], n - fixes[7]
    g_mid_a, g_mid_b, g_n1m0 = (x + fix for x, fix in zip((mid_a, mid_b, n1m0), fixes[8:11]))
    g_cmb = c - b - fixes[11]
    fits = not_bit(ctx, big)
    ok, or_bd, cells_big = mul_many(ctx, [(ok0, fits), (or_def, margins_big), (cells_ok, fits)])

    # 3. Per-stratum quotients.
    n_safe, nn_safe = n + z_n, nn + z_n
    nn1_safe = nn - n + n_lt2 + z_n  # n (n - 1), 1 or 2 where n < 2
    quotients = [(ad, n_safe), (bc, n_safe), (prn, nn_safe), (psn, nn_safe), (qrn, nn_safe), (qsn, nn_safe),
                 (an0, n_safe), (cn1, n_safe), (n1n0m1 - acn, nn_safe), (n1m1, n_safe), (n1n0, n_safe),
                 (m1m0, nn1_safe), (g_n1, g_n), (g_m1, g_n), (g_n1m1, g_nn), (g_dma, g_n), (g_a, g_n),
                 (g_n1m0, g_nn), (g_cmb, g_n), (g_mid_a, g_nn), (g_mid_b, g_nn)]
    nums = concat([x for x, _ in quotients])
    dens = concat([y for _, y in quotients])
    parts = split_like(divide(ctx, nums, dens, BOUND), [x for x, _ in quotients])
    r_i, s_i, pr, ps, qr, qs, rrn, rrd, gr, e0, u, w, p, q, pq, dman, ahat, pq_b, cmb, md_a, md_b = parts
    sr, ss, srrn, srrd = _total(r_i), _total(s_i), _total(rrn), _total(rrd)

    # 4. Pooled estimates.
    diff = _lift(ctx, _total(a)) - _total(e0)
    uw, r2, rs, s2, rrnd, diff2, ok_or, ok_rr, ok_mh, ok_bd = _fixed_products(
        ctx, [(u, w), (sr, sr), (sr, ss), (ss, ss), (srrn, srrd), (diff, diff), (ok, or_def), (ok, rr_def),
              (ok, not_bit(ctx, z_marg)), (ok, or_bd)])
    no_or, no_rr = _lift(ctx, not_bit(ctx, or_def)), _lift(ctx, not_bit(ctx, rr_def))
    pooled = [(sr, ss + no_or), (_total(pr), r2 + no_or), (_total(ps) + _total(qr), rs + no_or),
              (_total(qs), s2 + no_or), (srrn, srrd + no_rr), (_total(gr), rrnd + no_rr),
              (diff2, _total(uw) + _lift(ctx, z_marg)),
              (rescale_up(ss, SHARE_BITS).with_frac(ss.frac), sr + ss + no_or)]
    odds, v1, v2, v3, risk, rr_var, mh, share = split_like(
        divide(ctx, concat([x for x, _ in pooled]), concat([y for _, y in pooled]), BOUND), [x for x, _ in pooled])

    # 5. Breslow-Day, each stratum in units of its n, the quadratic divided by 1 + r (s = 1 / (1 + r)).
    s = _spread(share, k).with_frac(share.frac + SHARE_BITS)  # s at 2^-60: its digits even for a huge OR
    one_s = add_public(ctx, -s, 1.0)  # r / (1 + r)
    # Side by side: the a-cell's quadratic (s) and the b-cell's (the outcome's levels swapped: OR -> 1/OR, s -> 1 - s).
    s2, one_s2 = concat([s, one_s]), concat([one_s, s])
    bb = concat([dman, cmb])
    pm = concat([-cmb, -dman])  # (b - c)/n, (a - d)/n
    sums = concat([p + q, add_public(ctx, p - q, 1.0)])
    f = ctx.precise.frac
    sd, rsp, t1, t2, ss1 = _fixed_products(
        ctx, [(s2, bb), (one_s2, pm), (one_s2, sums), (one_s2, concat([pq, pq_b])), (s2, one_s2)],
        [f, f, f, f, f + SHARE_BITS])
    sd2, rsp2, mid = _fixed_products(ctx, [(sd, sd), (rsp, rsp), (ss1, concat([md_a, md_b]))])
    root = sqrt(ctx, sd2 + mid + rsp2, BOUND)  # three terms >= 0: no cancellation
    xy = divide(ctx, t2.scale_int(2), sd + t1 + root, BOUND)
    x_a, x_b = _fixed_products(ctx, [(one_s, xy[:k]), (s, p - xy[k:])])
    x = x_a + x_b  # each root weighted where it has its digits
    tails = [x, q - x, p - x, add_public(ctx, x - p - q, 1.0)]
    inv = split_like(reciprocal(ctx, concat(tails), BOUND), tails)
    t = inv[0] + inv[1] + inv[2] + inv[3]
    gap = ahat - x
    w1, w2 = _fixed_products(ctx, [(n_bd, gap), (gap, t)])
    inv_t = reciprocal(ctx, t, BOUND)
    term, var_a, dd = _fixed_products(ctx, [(w1, w2), (n_bd, inv_t), (_total(w1), _total(w1))])
    bd = _total(term)
    no_bd = _lift(ctx, not_bit(ctx, or_bd))
    tarone = bd - divide(ctx, dd, _total(var_a) + no_bd, BOUND)

    # 6. Release.
    stats = [odds, v1 + v2 + v3, risk, rr_var, mh, bd, tarone]
    gates = [ok_or, ok_or, ok_rr, ok_rr, ok_mh, ok_bd, ok_bd]
    strata_with_rows = _total(not_bit(ctx, z_n))
    released = mul_many(ctx, [(cells, _spread(cells_big, 4 * k)), (concat(stats), concat(gates)),
                              (strata_with_rows, ok)])
    bits = [not_bit(ctx, strata_ok), not_bit(ctx, summed_ok), not_bit(ctx, cells_big), ok_or, ok_rr, ok_mh, ok_bd,
            big]
    return [*released, concat(bits)]
