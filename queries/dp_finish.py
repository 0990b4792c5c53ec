"""The analyst's side of a DP query: the answer, each number with its noise scale and 95% interval.

Everything here is post-processing of the noisy statistics the parties released
(`queries.dp_release`), so it costs no privacy. Per group, with N the noisy count, S the
noisy sum of a column clamped to [lo, hi], and C, C2 the noisy sums of (clamped - m) and of
its square, m = (lo + hi) / 2:

    COUNT     N (an integer: the noise is integer)       SUM   S
    AVG       m + C / N, clamped to [lo, hi]; NULL when N < 1
    VAR       (C2 - C^2 / N) / (N - 1), clamped to [0, (hi - lo)^2 / 4 . N / (N - 1)]; NULL when N < 2
    STDDEV    the square root of VAR
    QUANTILE  from the noisy histogram H of the clamped values (bins of width w over [lo, hi]),
              the bin where the cumulative count first reaches q . sum H, interpolated linearly
              inside it; NULL when sum H <= 0 (MEDIAN: q = 0.5); its interval is widened by one
              bin width on each side, for the binning
    CROSSTAB  the noisy cells; margins and total their sums; statistics (chi-square, OR, RR, RD)
              from the cells rounded up to 0 (their CIs count sampling error, not the noise)

Each number carries `noise_sd` (the standard deviation of the noise in it) and a 95%
interval for the value before noise (`ci_low`, `ci_high`): for a noisy statistic itself,
exact — the smallest k with P(|Z| > k) <= 0.05 for discrete Laplace Z; for AVG, VAR,
STDDEV and the margins, simulated from the known noise distributions around the released
statistics (4000 draws, fixed seed: the same released numbers give the same interval). The
intervals cover the noise only, not the sampling error of the cohort.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from queries import ir
from queries.dp import Noised, Privacy
from queries.epi import crosstab_statistics
from queries.plan import Plan
from queries.result import Result

DRAWS = 4000
_SEED = 20261204


def laplace_q(t: float) -> float:
    """q = exp(-1/t) of the discrete Laplace distribution of scale t."""
    return math.exp(-1.0 / t)


def laplace_sd(t: float) -> float:
    """Standard deviation of discrete Laplace noise of scale t: sqrt(2q) / (1 - q)."""
    q = laplace_q(t)
    return math.sqrt(2.0 * q) / -math.expm1(-1.0 / t)


def laplace_halfwidth(t: float, level: float = 0.95) -> int:
    """The smallest k >= 0 with P(|Z| > k) <= 1 - level: P(|Z| > k) = 2 q^(k + 1) / (1 + q)."""
    q = laplace_q(t)
    if q == 0.0:
        return 0
    k = math.ceil(math.log((1.0 - level) * (1.0 + q) / 2.0) / math.log(q)) - 1
    while k > 0 and 2.0 * q**k / (1.0 + q) <= 1.0 - level:  # guard the float rounding of the closed form
        k -= 1
    while 2.0 * q ** (k + 1) / (1.0 + q) > 1.0 - level:
        k += 1
    return max(k, 0)


def laplace_draws(t: float, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Plain draws of discrete Laplace noise of scale t (G1 - G2, geometric), for simulated intervals."""
    p = -math.expm1(-1.0 / t)
    return (rng.geometric(p, shape) - rng.geometric(p, shape)).astype(np.float64)


def _direct(value: float, noised: Noised) -> dict[str, float]:
    unit = 2.0**-noised.frac
    half = laplace_halfwidth(noised.scale) * unit
    return {"noise_sd": laplace_sd(noised.scale) * unit, "ci_low": value - half, "ci_high": value + half}


def _simulated(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if finite.size < values.size // 2:
        return {"noise_sd": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    low, high = np.percentile(finite, [2.5, 97.5])
    return {"noise_sd": float(np.std(finite)), "ci_low": float(low), "ci_high": float(high)}


def _avg(n: np.ndarray, c: np.ndarray, lo: float, hi: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= 1, np.clip((lo + hi) / 2 + c / np.maximum(n, 1), lo, hi), np.nan)


def _var(n: np.ndarray, s: np.ndarray, q: np.ndarray, lo: float, hi: float) -> np.ndarray:
    m = np.maximum(n, 2)
    top = (hi - lo) ** 2 / 4 * m / (m - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= 2, np.clip((q - s * s / m) / (m - 1), 0.0, top), np.nan)


def histogram_quantile(hist: np.ndarray, q: float, lo: float, hi: float) -> np.ndarray:
    """The q-quantile read from noisy bin counts (last axis: the bins over [lo, hi]); NaN when empty.

    The cumulative counts are summed from the noisy counts as they are (unbiased: rounding the
    many empty bins' noise up to 0 would add phantom rows in the tails); only the interpolation
    inside the bin found reads its count as at least 0."""
    counts = np.asarray(hist, dtype=np.float64)
    bins = counts.shape[-1]
    cum = np.cumsum(counts, axis=-1)
    total = cum[..., -1]
    target = q * total
    at = np.minimum((cum < target[..., None]).sum(axis=-1), bins - 1)
    before = np.where(at > 0, np.take_along_axis(cum, np.maximum(at - 1, 0)[..., None], -1)[..., 0], 0.0)
    inside = np.maximum(np.take_along_axis(counts, at[..., None], -1)[..., 0], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.where(inside > 0, np.clip((target - before) / inside, 0.0, 1.0), 0.5)
    return np.where(total > 0, lo + (at + part) * (hi - lo) / bins, np.nan)


def finish(plan: Plan, decoded: list[np.ndarray]) -> Result:
    """The analyst's table from the decoded noisy statistics (one array per `Privacy.noised`, per group)."""
    privacy = plan.privacy
    assert privacy is not None
    if isinstance(plan.statement, ir.Crosstab):
        return _crosstab(plan, privacy, decoded[0])
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    rng = np.random.default_rng(_SEED)
    columns = list(plan.group_columns) + [a.name for a in stmt.aggregates]
    rows, noise = [], []
    for g, key in enumerate(plan.group_keys):
        row: list[Any] = list(key)
        info: list[dict[str, float] | None] = [None] * len(key)
        for agg in stmt.aggregates:
            value, about = _aggregate(agg, privacy, decoded, g, rng)
            row.append(value)
            info.append(about)
        rows.append(row)
        noise.append(info)
    result = Result(columns, rows, [False] * len(rows), {"privacy": summary(privacy)})
    result.noise = noise
    return result


def _aggregate(agg: ir.Aggregate, privacy: Privacy, decoded: list[np.ndarray], g: int,
               rng: np.random.Generator) -> tuple[Any, dict[str, float] | None]:
    """One aggregate's released value in group g, and its noise facts."""
    def stat(op: str) -> tuple[float, Noised]:
        i = privacy.index(("rows",) if agg.column is None else (op, agg.column))
        return float(decoded[i][g]), privacy.noised[i]

    if agg.func in ("COUNT", "SUM"):
        value, noised = stat("n" if agg.func == "COUNT" else "s")
        shown: Any = int(round(value)) if agg.func == "COUNT" else value
        return shown, _direct(value, noised)
    assert agg.column is not None
    lo, hi = privacy.bound(agg.column)
    if agg.func == "QUANTILE":
        assert agg.q is not None
        h = privacy.noised[privacy.index(("h", agg.column))]
        hist = np.asarray(decoded[privacy.index(("h", agg.column))], dtype=np.float64).reshape(h.bins, -1)[:, g]
        value = float(histogram_quantile(hist, agg.q, lo, hi))
        sims = histogram_quantile(hist - laplace_draws(h.scale, (DRAWS, h.bins), rng), agg.q, lo, hi)
        if not math.isfinite(value):
            return None, None
        about, width = _simulated(sims), (hi - lo) / h.bins  # the binning may move it by up to a bin
        return value, {**about, "ci_low": about["ci_low"] - width, "ci_high": about["ci_high"] + width}
    (n, tn), (s, ts) = stat("n"), stat("c")
    sims_n = n - laplace_draws(tn.scale, (DRAWS,), rng)
    sims_s = s - laplace_draws(ts.scale, (DRAWS,), rng) * 2.0**-ts.frac
    if agg.func == "AVG":
        value = float(_avg(np.array(n), np.array(s), lo, hi))
        sims = _avg(sims_n, sims_s, lo, hi)
    else:
        q, tq = stat("c2")
        sims_q = q - laplace_draws(tq.scale, (DRAWS,), rng) * 2.0**-tq.frac
        value = float(_var(np.array(n), np.array(s), np.array(q), lo, hi))
        sims = _var(sims_n, sims_s, sims_q, lo, hi)
        if agg.func == "STDDEV":
            value, sims = math.sqrt(value) if math.isfinite(value) else value, np.sqrt(sims)
    if not math.isfinite(value):
        return None, None
    return value, _simulated(sims)


def summary(privacy: Privacy) -> dict[str, Any]:
    """extra["privacy"]: the query's epsilon, its accounting and each noised statistic's terms."""
    return {
        "disclosure": "dp",
        "epsilon": privacy.epsilon,
        "accounting": f"basic composition: epsilon {privacy.epsilon:g} split equally over "
                      f"{len(privacy.noised)} noised statistic(s); groups and cells hold disjoint rows",
        "noised": [{"statistic": n.label(), "epsilon": n.epsilon, "sensitivity": n.sensitivity,
                    "laplace_scale": n.value_scale} for n in privacy.noised],
        "intervals": "95%, of the noise only (not of the cohort's sampling error)",
    }


def _crosstab(plan: Plan, privacy: Privacy, released: np.ndarray) -> Result:
    stmt = plan.statement
    assert isinstance(stmt, ir.Crosstab)
    rows_dom = list(dict.fromkeys(k[0] for k in plan.group_keys))
    cols_dom = list(dict.fromkeys(k[1] for k in plan.group_keys))
    r, c = len(rows_dom), len(cols_dom)
    cells = np.rint(released).astype(np.int64).reshape(r, c)
    noised = privacy.noised[0]
    rng = np.random.default_rng(_SEED)

    def about(value: int, m: int) -> dict[str, float]:
        if m == 1:
            return _direct(float(value), noised)
        sums = laplace_draws(noised.scale, (DRAWS, m), rng).sum(axis=1)
        half = float(np.percentile(np.abs(sums), 95))
        return {"noise_sd": laplace_sd(noised.scale) * math.sqrt(m), "ci_low": value - half, "ci_high": value + half}

    margin_r, margin_c = about(0, c), about(0, r)
    total_noise = about(0, r * c)

    def shifted(base: dict[str, float], value: int) -> dict[str, float]:
        return {"noise_sd": base["noise_sd"], "ci_low": base["ci_low"] + value, "ci_high": base["ci_high"] + value}

    out_rows, noise = [], []
    for i, rv in enumerate(rows_dom):
        out_rows.append([rv, *(int(v) for v in cells[i]), int(cells[i].sum())])
        noise.append([None, *(_direct(float(v), noised) for v in cells[i]), shifted(margin_r, int(cells[i].sum()))])
    col_m = cells.sum(axis=0)
    out_rows.append(["total", *(int(v) for v in col_m), int(cells.sum())])
    noise.append([None, *(shifted(margin_c, int(v)) for v in col_m), shifted(total_noise, int(cells.sum()))])
    extra: dict[str, Any] = {"exposure": stmt.row, "outcome": stmt.col, "privacy": summary(privacy)}
    extra.update(crosstab_statistics(np.maximum(cells, 0), rows_dom, cols_dom, stmt.row, stmt.col))
    extra.setdefault("notes", []).append("under dp the statistics are computed from the noisy cells (negative ones "
                                         "as 0); their confidence intervals do not include the noise")
    columns = [stmt.row] + [str(v) for v in cols_dom] + ["total"]
    result = Result(columns, out_rows, [False] * len(out_rows), extra, kind="crosstab")
    result.noise = noise
    return result
