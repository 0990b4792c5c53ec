"""LINEAR with WEIGHT w [ROBUST]: weighted least squares on shared weighted moments.

Each party adds its weighted moments X'WX, X'Wy, y'Wy, 1'Wy and sum(w) in shares (one secure
sum, as unweighted LINEAR does), on columns divided by public powers of two (the weights too:
2^e_w at or above their pooled maximum, which cancels from every released quantity). The solve
is `protocols.regression.ols`. With ROBUST the parties also add the moments of the HC0 meat,
sum w^2 (y - x'b)^2 x x', expanded in b (`protocols.regression.meat`: sums of w^2 y^2 z,
w^2 y x_k z and w^2 x_k x_l z, z the pairwise products), so the meat and the sandwich
(X'WX)^-1 M (X'WX)^-1 are formed in shares from p-sized tables: the cost does not grow with
the rows, and only the diagonal of the sandwich is released.

Released, in shares: coefficients, diag (X'WX)^-1, the weighted RSS and TSS, the contributors
n, sum(w), and with ROBUST the sandwich's diagonal. The analyst's table (`finish`):
* frequency weights: statsmodels OLS on the rows repeated w times (t, df = sum(w) - p);
* ROBUST: statsmodels WLS(weights=w).fit(cov_type="HC0") (z and the normal distribution).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mpc.context import PartyContext
from mpc.share import Share
from protocols.logistic import pairwise_products
from protocols.regression import meat, ols, pooled_moments, sandwich_diag, total_sum_of_squares
from queries.errors import Collinear


def _robust_moments(xs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """This party's a0 (q), a1 (p x q) and a2 (q x q) of `protocols.regression.meat`, flattened."""
    z = pairwise_products(xs)
    w2 = ws * ws
    a0 = (w2 * ys * ys) @ z
    a1 = (xs * (w2 * ys)[:, None]).T @ z
    a2 = (z * w2[:, None]).T @ z
    return np.concatenate([a0, a1.ravel(), a2.ravel()])


def fit(
    ctx: PartyContext, x: np.ndarray, y: np.ndarray, w: np.ndarray, n: Share, centered: bool, robust: bool,
    exps: np.ndarray,
) -> tuple[list[Share], dict[str, Any]]:
    """Shares of [coef, diag (X'WX)^-1, RSS_w, TSS_w, n, sum w (, diag of the sandwich)] on the scaled
    columns; `exps`: the public exponents of the design columns, the outcome and the weight, in that order."""
    p = x.shape[1]
    xs, ys, ws = x / np.exp2(exps[:p]), y / np.exp2(exps[p]), w / np.exp2(exps[p + 1])
    public = {"scales": [int(e) for e in exps[:p]], "outcome_scale": int(exps[p]), "weight_scale": int(exps[p + 1])}
    xw = xs * ws[:, None]
    local = [(xw.T @ xs).ravel(), xw.T @ ys, [ys @ (ws * ys), ws @ ys, ws.sum()]]
    if robust:
        local.append(_robust_moments(xs, ys, ws))
    total = pooled_moments(ctx, np.concatenate(local), "weighted-moments")
    base = p * p + p + 3
    xtx, xty = total[: p * p].reshape(p, p), total[p * p : p * p + p]
    yty, sy, sw = total[p * p + p : p * p + p + 1], total[base - 2 : base - 1], total[base - 1 : base]
    ols_fit = ols(ctx, xtx, xty, yty)
    if not ols_fit.converged:
        refusal = Collinear("the covariates are collinear (X'WX is singular)")
        return [], {**public, "refused": str(refusal), "refusal": refusal.reason}
    tss = total_sum_of_squares(ctx, yty, sy, sw, centered)
    shares = [ols_fit.coef, ols_fit.inverse_diag, ols_fit.rss, tss, n, sw]
    if robust:
        q = p * (p + 1) // 2
        a0 = total[base : base + q]
        a1 = total[base + q : base + q + p * q].reshape(p, q)
        a2 = total[base + q + p * q :].reshape(q, q)
        assert ols_fit.inverse is not None and ols_fit.jacobi is not None
        shares.append(sandwich_diag(ctx, ols_fit.inverse, ols_fit.jacobi, meat(ctx, ols_fit.coef, a0, a1, a2)))
    return shares, public


def finish(
    names: list[str], opened: list[np.ndarray], public: dict[str, Any], robust: bool, about: dict[str, Any]
) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    """The coefficient table's columns, rows and model block from the released values."""
    from scipy import stats

    p = len(names)
    scale = np.exp2(np.array(public["scales"], dtype=np.float64))
    out = 2.0 ** int(public["outcome_scale"])
    wscale = 2.0 ** int(public["weight_scale"])
    coef, idiag, rss, tss, n, sw = opened[:6]
    coef = coef * out / scale
    idiag = idiag / wscale / scale**2
    rss_w, tss_w = float(rss[0]) * out**2 * wscale, float(tss[0]) * out**2 * wscale
    rows_used = int(round(float(n[0])))
    total_w = float(sw[0]) * wscale
    model: dict[str, Any] = {"n": rows_used, "sum_weights": total_w, "r_squared": 1 - rss_w / tss_w, **about}
    if robust:
        df = rows_used - p  # statsmodels WLS: the rows, not the weights
        se = np.sqrt(np.clip(opened[6], 0, None)) * out / scale
        model.update(weights="inverse-probability", cov_type="HC0", df_resid=df,
                     residual_std_error=math.sqrt(rss_w / df))
        stat = coef / se
        pvals = 2 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.ppf(0.975)
        columns = ["term", "coef", "std_err", "z", "p_value", "ci_low", "ci_high"]
    else:
        df_w = total_w - p  # the rows repeated w times
        sigma2 = rss_w / df_w
        se = np.sqrt(sigma2 * np.clip(idiag, 0, None))
        model.update(weights="frequency", df_resid=df_w, residual_std_error=math.sqrt(sigma2))
        stat = coef / se
        pvals = 2 * stats.t.sf(np.abs(stat), df_w)
        crit = stats.t.ppf(0.975, df_w)
        columns = ["term", "coef", "std_err", "t", "p_value", "ci_low", "ci_high"]
    rows = [[names[j], coef[j], se[j], stat[j], pvals[j], coef[j] - crit * se[j], coef[j] + crit * se[j]]
            for j in range(p)]
    return columns, rows, model
