"""Kaplan-Meier terms and the log-rank statistic on shared counts of a public time grid.

The inputs are integer shares (frac 0) of counts per grid point: at risk n_j, events d_j,
and per group g at risk n_gj and events d_gj. Nothing is opened here; the callers decide what
is released (`queries.survival`).

Kaplan-Meier (`kaplan_meier`), as lifelines' KaplanMeierFitter computes it:
    log S(t) = sum_{j <= t} log(n_j - d_j) - log(n_j),    V(t) = sum_{j <= t} d_j / (n_j (n_j - d_j))
with V Greenwood's sum (Var S = S^2 V). d / (n (n - d)) = 1/(n - d) - 1/n, so the two sums need
logs and reciprocals of counts only; both are prefix sums over the grid (local) of per-point terms.

The log-rank test (`logrank_parts`, `quadratic_form`), as lifelines' multivariate_logrank_test:
    O_g = sum_j d_gj,  E_g = sum_j n_gj d_j / n_j,  z = O - E,
    f_j = d_j (n_j - d_j) / ((n_j - 1) n_j^2)   ((n_j - d_j)/(n_j - 1) read as 1 when n_j = 1),
    V_gh = sum_j f_j n_gj (delta_gh n_j - n_hj),        chi2 = z' V^-1 z over the first K - 1 groups,
with the groups that have no patient (a WHERE that removes a level) left out of the form as
lifelines never sees them (`logrank_parts` says how).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.arith import add_public, rescale_up
from protocols.beaver import mul_many
from protocols.division import (
    _refine,
    _start_bits,
    _steps,
    default_bound,
    goldschmidt,
    linear_reciprocal_start,
    reciprocal,
    to_frac,
)
from protocols.normalize import exponent, tables
from protocols.polynomial import chebyshev_power_coefficients, evaluate
from protocols.products import products
from protocols.truncation import truncate_each


def logs_and_reciprocals(ctx: PartyContext, y: Share, logs: int) -> tuple[Share, Share]:
    """([ln y_i] for the first `logs` entries, [1 / y_i] for all) of a flat fixed-point share with
    0 < y < 2^40: `protocols.exp_log.log` and `protocols.division.reciprocal` sharing their
    normalisation, so it runs once.

    1. The exponent p of y (`protocols.normalize.exponent`); the table S(p) = 2^(K - p) (one
       round); y S (one round of products); m = y S / 2^(K + 1) in [1/2, 1), b m for the
       reciprocal's linear start, and its numerator 2^-E (E = p + 1 - f_y) from S, in one round of
       truncations — as `protocols.division._normalised` (with x = None).
    2. Reciprocal: Goldschmidt from w0 = a - b m (`protocols.division.goldschmidt`).
    3. Log, on the first `logs` entries: a Chebyshev polynomial of log m in t = 4m - 3, plus
       (p + 1 - f_y) ln 2 from the exponent's digits (local) — as `protocols.exp_log.log`.
    Errors are those of the two protocols; rounds: theirs less the normalisation's once (about 19).
    """
    ring = y.ring
    f = ctx.precise.frac
    e = exponent(ctx, y, default_bound(ring))
    k_top = e.top - 1
    g = _start_bits(e)
    a, b = linear_reciprocal_start(0.5, 1.0)
    (s_tab,) = tables(ctx, e, [lambda p: 1 << (k_top - p)])
    (ys,) = products(ctx, [(Share(y.data.ravel(), ring, 0), s_tab)])
    h = max(0, e.top - f - y.frac)
    m, bm, n = truncate_each(ctx, to_frac([
        (ys, k_top + 1, f), (ys.scale_int(int(round(b * (1 << g)))), k_top + 1 + g, f),
        (rescale_up(s_tab, f + h + y.frac - e.top).with_frac(0), f + h, f)]))
    inverse = goldschmidt(ctx, n, m, add_public(ctx, -bm, a), _steps(ring), _refine(ring))
    t = add_public(ctx, m[:logs].scale_int(4), -3.0)  # t in [-1, 1)
    log_m = evaluate(ctx, t, chebyshev_power_coefficients("log", 0.5, 1.0, 8 if ring.native else 18))
    e_ln2 = e.linear(ctx, lambda p: int(round((p + 1 - e.y_frac) * math.log(2) * (1 << f)))).with_frac(f)
    return log_m + e_ln2[:logs], inverse


def lift(ctx: PartyContext, x: Share) -> Share:
    """An integer share (frac 0) at the fixed-point scale of its ring (exact)."""
    f = ctx.precise.frac
    return Share(x.ring.lshift(x.data, f), x.ring, f)


def prefix_sums(x: Share) -> Share:
    """Running sums along the last axis (local)."""
    return Share(x.ring.reduce(np.cumsum(x.data, axis=-1)), x.ring, x.frac)


def suffix_sums(x: Share) -> Share:
    """Sums from each position to the end of the last axis (local)."""
    flipped = np.cumsum(x.data[..., ::-1], axis=-1)[..., ::-1]
    return Share(x.ring.reduce(np.ascontiguousarray(flipped)), x.ring, x.frac)


class Curve(NamedTuple):
    """What `kaplan_meier` returns: prefix sums over the grid and the extra reciprocals."""

    log_survival: Share
    """sum_{j <= t} log(n_j - d_j) - log(n_j) (fixed point; meaningless once `dead`)."""
    greenwood: Share
    """sum_{j <= t} d_j / (n_j (n_j - d_j)) (fixed point)."""
    dead: Share
    """Integer share: 1 from the grid point where every patient at risk had the event (S = 0)."""
    reciprocals: Share | None
    """1 / y for the `more` denominators passed in (fixed point), None without them."""


def kaplan_meier(ctx: PartyContext, n: Share, d: Share, empty: Share, gone: Share, more: Share | None) -> Curve:
    """The Kaplan-Meier sums of every row of (n, d) (shape (rows, grid)), and 1/y for `more`.

    `empty` = [n == 0] and `gone` = [n - d == 0] are 0/1 integer shares of n's shape.
    1. Denominators, exact and local: a = n + empty, b = n - d + gone (1 where the count is 0,
       so every log and reciprocal is defined; where n = 0 both are 1 and the terms are 0).
    2. One reciprocal of [a, b, more] and one log of [a, b], sharing their normalisation
       (`logs_and_reciprocals`), at the ring's fixed point.
    3. Terms log b - log a and 1/b - 1/a; prefix sums along the grid (local).
    4. dead = prefix sums of gone - empty (a point with n = d > 0); S = 0 from there on, as
       lifelines (which also adds 0 to Greenwood's sum at that point: the caller ignores it).
    """
    a = n + empty
    b = n - d + gone
    ys = [lift(ctx, a), lift(ctx, b)]
    flat = [y.reshape(y.size) for y in ys] + ([lift(ctx, more).reshape(more.size)] if more is not None else [])
    logs, inverse = logs_and_reciprocals(ctx, concat(flat), a.size + b.size)
    inv = split_like(inverse, flat)
    inv_a, inv_b = inv[0], inv[1]
    log_a, log_b = split_like(logs, flat[:2])
    shape = n.shape
    return Curve(
        prefix_sums((log_b - log_a).reshape(*shape)),
        prefix_sums((inv_b - inv_a).reshape(*shape)),
        prefix_sums((gone - empty).reshape(*shape)),
        inv[2].reshape(*more.shape) if more is not None else None,
    )


def logrank_parts(
    ctx: PartyContext, n_g: Share, d_g: Share, inv_n: Share, inv_m: Share, single: Share, empty_g: Share
) -> tuple[Share, list[list[Share]]]:
    """z and M, with chi2 = z' M^-1 z, of the log-rank test over K groups (fixed point):
    z = (O - E) of the first K - 1 groups, M = V of those groups + diag(e) + e_K u u'.

    n_g, d_g: (K, G) integer shares; inv_n = 1/n_j and inv_m = 1/(n_j - 1) on the pooled grid
    (any value where n_j <= 1); single = [n_j == 1]; empty_g = e = [N_g == 0] per group, u = 1 - e.
    Dropping the last group is lifelines' form. An empty group among the first K - 1 has a zero
    row in V and 0 in z: the 1 on its diagonal leaves the form of the others unchanged. When the
    last group is empty, the first K - 1 hold every group with patients, whose V is singular
    (V 1 = 0, z' 1 = 0): adding u u' there gives z' V^+ z, the same form.
    1. One round of products: a_j = d_j / n_j and v_j = (n_j - d_j) / (n_j - 1) (integers
       times fixed point: exact), P_gh = n_gj n_hj for g < h and u_g u_h (integers), the
       lifelines correction c_j = [n_j = 1] d_j, and n_gj d_j (integers).
    2. One round: a_j v_j (then truncated), Q_gh = P_gh / n_j (exact), E_g = sum_j (n_gj d_j) / n_j
       and e_K u_g u_h.
    3. f'_j = a_j v_j + c_j (so that f_j = f'_j / n_j); one round of products and one of
       truncations: F_gh = sum_j f'_j Q_gh. V_gg = sum_{h != g} F_gh, V_gh = -F_gh.
    """
    k, _ = n_g.shape
    ring = n_g.ring
    f = ctx.precise.frac
    d = Share(ring.sum(d_g.data, axis=0), ring, 0)
    n = Share(ring.sum(n_g.data, axis=0), ring, 0)
    u = add_public(ctx, -empty_g, 1)  # 1 for a group with patients
    pairs = [(g, h) for g in range(k) for h in range(g + 1, k)]
    kept = [(g, h) for g in range(k - 1) for h in range(k - 1)]
    first = mul_many(ctx, [(d, inv_n), (n - d, inv_m), (single, d), *[(n_g[g], n_g[h]) for g, h in pairs],
                           *[(u[g : g + 1], u[h : h + 1]) for g, h in kept],
                           (n_g, Share(np.broadcast_to(d.data, n_g.shape).copy(), ring, 0))])
    a, v, corr = first[:3]
    products = first[3 : 3 + len(pairs)]
    uu = first[3 + len(pairs) : 3 + len(pairs) + len(kept)]
    nd = first[-1]
    inv_rows = Share(np.broadcast_to(inv_n.data, n_g.shape).copy(), ring, inv_n.frac)
    inv_pairs = Share(np.broadcast_to(inv_n.data, (len(pairs), inv_n.size)).copy(), ring, inv_n.frac)
    stacked = Share(np.stack([p.data for p in products]), ring, 0)
    last = empty_g[k - 1 : k]
    second = mul_many(ctx, [(a, v), (nd, inv_rows), (stacked, inv_pairs), *[(last, x) for x in uu]])
    (av,) = truncate_each(ctx, [(second[0], second[0].frac - f)])
    expected = Share(ring.sum(second[1].data, axis=1), ring, second[1].frac)
    factor = av + lift(ctx, corr)
    spread = Share(np.broadcast_to(factor.data, (len(pairs), factor.size)).copy(), ring, f)
    (cross,) = mul_many(ctx, [(spread, second[2])])
    (sums,) = truncate_each(ctx, [(Share(ring.sum(cross.data, axis=1), ring, cross.frac), cross.frac - f)])
    observed = lift(ctx, Share(ring.sum(d_g.data, axis=1), ring, 0))
    z = (observed - expected)[: k - 1]
    zero = Share(ring.zeros((1,)), ring, f)
    full = [[zero for _ in range(k)] for _ in range(k)]
    for i, (g, h) in enumerate(pairs):
        s = sums[i : i + 1]
        full[g][h], full[h][g] = full[g][h] - s, full[h][g] - s
        full[g][g], full[h][h] = full[g][g] + s, full[h][h] + s
    fixes = dict(zip(kept, second[3:]))
    m = [[full[g][h] + lift(ctx, fixes[(g, h)]) for h in range(k - 1)] for g in range(k - 1)]
    for g in range(k - 1):
        m[g][g] = m[g][g] + lift(ctx, empty_g[g : g + 1])
    return z, m


def quadratic_form(ctx: PartyContext, v: list[list[Share]], z: Share) -> Share:
    """[z' V^-1 z] for a shared symmetric positive definite K x K matrix V (fixed point), by
    Gaussian elimination without pivoting (stable for such V).

    For each pivot i = 0 .. K-1:
    1. r = 1 / V_ii (`protocols.division.reciprocal`).
    2. One round of products, one of truncations: w_h = V_hi r and y = z_i r.
    3. One round of products, one of truncations: V_gh -= w_g V_ih and z_h -= w_h z_i for
       g, h > i, and chi2 += z_i y.
    Entries of V and z are shape-(1,) shares. Rounds: K (reciprocal + 4).
    """
    k = len(v)
    f = ctx.precise.frac
    z_items = [z[i : i + 1] for i in range(k)]
    total: Share | None = None
    for i in range(k):
        r = reciprocal(ctx, v[i][i])
        rest = list(range(i + 1, k))
        scaled = mul_many(ctx, [(v[h][i], r) for h in rest] + [(z_items[i], r)])
        scaled = truncate_each(ctx, [(s, s.frac - f) for s in scaled])
        w, y = scaled[:-1], scaled[-1]
        pairs = [(w[a], v[i][h]) for a, _ in enumerate(rest) for h in rest]
        pairs += [(w[a], z_items[i]) for a, _ in enumerate(rest)] + [(z_items[i], y)]
        prods = mul_many(ctx, pairs)
        prods = truncate_each(ctx, [(p, p.frac - f) for p in prods])
        m = len(rest)
        for a, g in enumerate(rest):
            for b, h in enumerate(rest):
                v[g][h] = v[g][h] - prods[a * m + b]
            z_items[g] = z_items[g] - prods[m * m + a]
        total = prods[-1] if total is None else total + prods[-1]
    assert total is not None
    return total
