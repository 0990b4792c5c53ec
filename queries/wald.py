"""A GLM's or Cox model's coefficient table: Wald z tests and 95% CIs, with each coefficient's exp.

LOGISTIC's odds ratios, POISSON's incidence rate ratios and COX's hazard ratios are exp(coef)
with the CI's bounds exponentiated, as statsmodels reports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def wald_table(names: Sequence[str], coef: np.ndarray, se: np.ndarray, ratio: str,
               short: str) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows): term, coef, std_err, z, p_value, ci_low, ci_high, then `ratio` = exp(coef) and
    its CI as `{short}_ci_low`, `{short}_ci_high` (e.g. "odds_ratio", "or")."""
    from scipy import stats  # p-values: only where a model's table is made

    stat = coef / se
    pvals = 2 * stats.norm.sf(np.abs(stat))
    crit = float(stats.norm.ppf(0.975))
    columns = ["term", "coef", "std_err", "z", "p_value", "ci_low", "ci_high", ratio, f"{short}_ci_low",
               f"{short}_ci_high"]
    rows: list[list[Any]] = []
    for j, name in enumerate(names):
        lo, hi = coef[j] - crit * se[j], coef[j] + crit * se[j]
        rows.append([name] + [float(v) for v in (coef[j], se[j], stat[j], pvals[j], lo, hi, math.exp(coef[j]),
                                                 math.exp(lo), math.exp(hi))])
    return columns, rows
