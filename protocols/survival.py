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
    V_gh = sum_j f_j n_gj (delta_gh n_j - n_hj),        chi2 = z' V^+ z,
with V^+ the pseudo-inverse: V 1 = 0 and z' 1 = 0, so z' V^+ z = z' (V + u u')^-1 z for u the
indicator of the non-empty groups; an empty group (no patient) adds 1 on its diagonal and 0 to z,
which leaves the other groups' form unchanged. This equals lifelines' form, which drops the last
group, whenever the non-empty groups' V has rank (groups - 1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share, concat, split_like
from protocols.arith import add_public
from protocols.beaver import mul_many
from protocols.division import reciprocal
from protocols.exp_log import log
from protocols.truncation import truncate_each


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
    2. One reciprocal of [a, b, more] (`protocols.division.reciprocal`) and one log of [a, b]
       (`protocols.exp_log.log`), at the ring's fixed point.
    3. Terms log b - log a and 1/b - 1/a; prefix sums along the grid (local).
    4. dead = prefix sums of gone - empty (a point with n = d > 0); S = 0 from there on, as
       lifelines (which also adds 0 to Greenwood's sum at that point: the caller ignores it).
    """
    a = n + empty
    b = n - d + gone
    ys = [lift(ctx, a), lift(ctx, b)]
    flat = [y.reshape(y.size) for y in ys] + ([lift(ctx, more).reshape(more.size)] if more is not None else [])
    inv = split_like(reciprocal(ctx, concat(flat)), flat)
    inv_a, inv_b = inv[0], inv[1]
    log_a, log_b = split_like(log(ctx, concat(flat[:2])), flat[:2])
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
    """z = O - E (K values) and V + u u' + diag(empty) (K x K) of the log-rank test, fixed point.

    n_g, d_g: (K, G) integer shares; inv_n = 1/n_j and inv_m = 1/(n_j - 1) on the pooled grid
    (any value where n_j <= 1); single = [n_j == 1]; empty_g = [N_g == 0] per group.
    1. One round of products: a_j = d_j / n_j and v_j = (n_j - d_j) / (n_j - 1) (integers
       times fixed point: exact), P_gh = n_gj n_hj for g < h and u_g u_h (integers), the
       lifelines correction c_j = [n_j = 1] d_j, and n_gj d_j (integers).
    2. One round: a_j v_j (then truncated), Q_gh = P_gh / n_j (exact) and
       E_g = sum_j (n_gj d_j) / n_j.
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
    rows = [(n_g[g], n_g[h]) for g, h in pairs]
    first = mul_many(ctx, [(d, inv_n), (n - d, inv_m), (single, d), *rows,
                           *[(u.reshape(k, 1)[g], u.reshape(k, 1)[h]) for g in range(k) for h in range(k)],
                           (n_g, Share(np.broadcast_to(d.data, n_g.shape).copy(), ring, 0))])
    a, v, corr = first[:3]
    products = first[3 : 3 + len(pairs)]
    uu = first[3 + len(pairs) : 3 + len(pairs) + k * k]
    nd = first[-1]
    inv_rows = Share(np.broadcast_to(inv_n.data, n_g.shape).copy(), ring, inv_n.frac)
    inv_pairs = Share(np.broadcast_to(inv_n.data, (len(pairs), inv_n.size)).copy(), ring, inv_n.frac)
    stacked = Share(np.stack([p.data for p in products]), ring, 0) if pairs else None
    second = mul_many(ctx, [(a, v), (nd, inv_rows)] + ([(stacked, inv_pairs)] if stacked is not None else []))
    (av,) = truncate_each(ctx, [(second[0], second[0].frac - f)])
    expected = Share(ring.sum(second[1].data, axis=1), ring, second[1].frac)
    factor = av + lift(ctx, corr)
    sums = None
    if stacked is not None:
        spread = Share(np.broadcast_to(factor.data, (len(pairs), factor.size)).copy(), ring, f)
        (cross,) = mul_many(ctx, [(spread, second[2])])
        (sums,) = truncate_each(ctx, [(Share(ring.sum(cross.data, axis=1), ring, cross.frac), cross.frac - f)])
    observed = lift(ctx, Share(ring.sum(d_g.data, axis=1), ring, 0))
    z = observed - expected
    zero = Share(ring.zeros((1,)), ring, f)
    v_matrix = [[zero for _ in range(k)] for _ in range(k)]
    for i, (g, h) in enumerate(pairs):
        assert sums is not None
        s = sums[i : i + 1]
        v_matrix[g][h] = v_matrix[g][h] - s
        v_matrix[h][g] = v_matrix[h][g] - s
        v_matrix[g][g] = v_matrix[g][g] + s
        v_matrix[h][h] = v_matrix[h][h] + s
    for g in range(k):
        for h in range(k):
            v_matrix[g][h] = v_matrix[g][h] + lift(ctx, uu[g * k + h].reshape(1))
        v_matrix[g][g] = v_matrix[g][g] + lift(ctx, empty_g[g : g + 1])
    return z, v_matrix


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
