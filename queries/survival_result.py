"""SURVIVAL at the analyst: the curve table and the log-rank test from the released values.

The released values (`queries.survival`, step 5) are, per group and grid point, the released
bit and at risk n, events d, log S, Greenwood's sum V and the dead flag (all 0 where not
released); per group its patients and events (None when suppressed); and with BY chi2 and its
withheld bit. From them, as lifelines' KaplanMeierFitter does:
    S = exp(log S) (0 once dead),
    95% CI (exponential Greenwood, log(-log)): exp(-exp(log(-log S) -/+ z sqrt(V) / log S)),
and the log-rank p-value is the chi-square tail of chi2 with (groups with patients - 1) degrees
of freedom, as lifelines' multivariate_logrank_test.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from queries import ir
from queries.errors import refusal_error
from queries.plan import Plan
from queries.result import Result

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile (lifelines' z for alpha = 0.05)."""


def interval(log_s: float, greenwood: float) -> tuple[float, float]:
    """lifelines' 95% confidence interval of S = exp(log_s) (its `_bounds`; (1, 1) where log S = 0)."""
    if log_s == 0.0:
        return 1.0, 1.0
    spread = Z95 * math.sqrt(max(greenwood, 0.0)) / log_s
    base = math.log(-log_s)
    return math.exp(-math.exp(base - spread)), math.exp(-math.exp(base + spread))


def finish(plan: Plan, opened: list[np.ndarray], public: dict[str, Any]) -> Result:
    """The table: one row per released step (group, time, at_risk, events, survival, ci_lower,
    ci_upper); extra holds the groups' counts, the log-rank test and the rule."""
    from scipy import stats  # the p-value: only where the table is made

    stmt = plan.statement
    assert isinstance(stmt, ir.Survival)
    if "refused" in public:
        raise refusal_error(str(public.get("refusal", "")), str(public["refused"]))
    grid = int(public["grid"])
    groups = plan.groups
    released, at_risk, events, log_s, green, dead, patients, counted, hid_p, hid_e = (
        np.asarray(v).reshape(groups, -1) if i < 6 else np.asarray(v).reshape(groups)
        for i, v in enumerate(opened[:10]))
    rows, flags = [], []
    for g, key in enumerate(plan.group_keys):
        for j in range(grid):
            if round(float(released[g, j])) != 1:
                continue
            time = j if stmt.every == 1.0 else j * stmt.every
            if round(float(dead[g, j])) >= 1:
                s, low, high = 0.0, 0.0, 0.0
            else:
                s = math.exp(float(log_s[g, j]))
                low, high = interval(float(log_s[g, j]), float(green[g, j]))
            rows.append([*key, time, int(round(float(at_risk[g, j]))), int(round(float(events[g, j]))), s, low, high])
            flags.append(False)
    columns = ([stmt.group] if stmt.group else []) + ["time", "at_risk", "events", "survival", "ci_lower", "ci_upper"]
    summary = []
    for g, key in enumerate(plan.group_keys):
        hidden_p, hidden_e = round(float(hid_p[g])) == 1, round(float(hid_e[g])) == 1
        entry: dict[str, Any] = {"group": key[0]} if stmt.group else {}
        entry["patients"] = None if hidden_p else int(round(float(patients[g])))
        entry["events"] = None if hidden_e else int(round(float(counted[g])))
        summary.append(entry)
    extra: dict[str, Any] = {"survival": f"Kaplan-Meier of {stmt.event} over {stmt.time}, grid width {stmt.every:g} "
                                         f"({grid} points)", "groups": summary}
    if stmt.group:
        extra.update(_logrank(opened[10:], summary, stats))
    extra["rule"] = ("every step with an event is shown" if plan.min_cell == 1 else
                     f"steps with fewer than {plan.min_cell} events are not shown (their events are in S at the next "
                     "shown step)")
    return Result(columns, rows, flags, extra, kind="survival")


def _logrank(opened: list[np.ndarray], summary: list[dict[str, Any]], stats: Any) -> dict[str, Any]:
    chi2, withheld = float(np.asarray(opened[0]).ravel()[0]), round(float(np.asarray(opened[1]).ravel()[0])) == 1
    if withheld:
        return {"logrank": "withheld: a group has fewer patients or events than the minimum cell size"}
    present = sum(1 for entry in summary if entry["patients"])
    if present < 2:
        return {"logrank": "no test: fewer than two groups have patients"}
    df = present - 1
    return {"logrank_chi2": chi2, "logrank_df": df, "logrank_p": float(stats.chi2.sf(chi2, df))}
