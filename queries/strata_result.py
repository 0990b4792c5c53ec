"""CROSSTAB ... STRATA at the analyst: the pooled statistics' table from the released values.

From what `queries.strata` releases (OR, 2 Var(log OR), RR, Var(log RR), the Mantel-Haenszel
chi2, Breslow-Day's chi2 with and without Tarone's correction, the strata with rows, the
cells if released, and the bits), as statsmodels' `StratifiedTable` reports them:
    95% CI of the OR: exp(log OR -/+ z sqrt(Var(log OR))) (`oddsratio_pooled_confint`);
    95% CI of the RR: exp(log RR -/+ z sqrt(Var(log RR))) (Greenland-Robins; statsmodels has none);
    p-values: chi-square tails with 1 degree of freedom (Mantel-Haenszel) and with the strata
    with rows - 1 (Breslow-Day, `test_equal_odds`).
A refused query (a small stratum or summed cell, too many rows) raises its `ModelRefused`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from queries import ir
from queries import strata as mpc_part
from queries.epi import Z95
from queries.errors import OutOfRange, SmallStratum
from queries.plan import Plan
from queries.result import Result
from queries.strata import BITS, STATISTICS

COLUMNS = ["statistic", "estimate", "ci_low", "ci_high", "df", "p_value"]


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def finish(plan: Plan, opened: list[np.ndarray]) -> Result:
    """One row per pooled statistic (None where a zero leaves it undefined, with a note in extra);
    extra holds the levels compared, the strata with rows, the standard errors and the tables if released."""
    from scipy import stats  # the p-values: only where the table is made

    stmt = plan.statement
    assert isinstance(stmt, ir.Crosstab) and stmt.strata
    cells, values, count, bits = (np.asarray(v, dtype=float).ravel() for v in opened)
    bit = {name: round(float(v)) == 1 for name, v in zip(BITS, bits)}
    value = dict(zip(STATISTICS, (float(v) for v in values)))
    lo = 1 if plan.release_zero else 0
    if bit["too_many_rows"]:
        raise OutOfRange(f"the stratified table has more than {mpc_part.MAX_ROWS} rows in all; nothing is released")
    if bit["small_stratum"]:
        raise SmallStratum(f"a stratum of {stmt.strata!r} has {lo}..{plan.min_cell - 1} rows (the minimum cell size "
                           f"is {plan.min_cell}); nothing is released")
    if bit["small_cell"]:
        raise SmallStratum(f"a cell of the table summed over the strata of {stmt.strata!r} has {lo}.."
                           f"{plan.min_cell - 1} rows (the minimum cell size is {plan.min_cell}); nothing is released")
    rows_dom = list(dict.fromkeys(key[0] for key in plan.group_keys))
    cols_dom = list(dict.fromkeys(key[1] for key in plan.group_keys))
    strata = list(dict.fromkeys(key[2] for key in plan.group_keys))
    used = int(round(float(count[0])))
    notes: list[str] = []
    out: list[list[Any]] = []

    def ratio(name: str, est: float, var: float, ok: bool, why: str) -> None:
        if not ok:
            out.append([name, None, None, None, None, None])
            notes.append(f"{name}: not estimable: {why}")
            return
        se = math.sqrt(max(var, 0.0))
        out.append([name, est, est * math.exp(-Z95 * se), est * math.exp(Z95 * se), None, None])

    def test(name: str, chi2: float, df: int, ok: bool, why: str) -> None:
        if not ok:
            out.append([name, None, None, None, None, None])
            notes.append(f"{name}: not computed: {why}")
            return
        out.append([name, chi2, None, None, df, float(stats.chi2.sf(max(chi2, 0.0), df))])

    ratio("OR (Mantel-Haenszel)", value["or"], value["or_var2"] / 2, bit["or_ok"],
          "every stratum has a = 0 or d = 0, or every stratum has b = 0 or c = 0")
    ratio("RR (Mantel-Haenszel)", value["rr"], value["rr_var"], bit["rr_ok"],
          "every stratum has a = 0 or no unexposed, or every stratum has c = 0 or no exposed")
    test("Mantel-Haenszel chi2", value["mh_chi2"], 1, bit["mh_ok"], "every stratum has a zero margin")
    bd_ok = bit["bd_ok"] and used >= 2
    why = ("needs at least two strata with rows" if bit["bd_ok"] else
           "a stratum with rows has a zero margin (no exposed, unexposed, cases or non-cases), or the OR is undefined")
    test("Breslow-Day chi2", value["bd_chi2"], used - 1, bd_ok, why)
    test("Breslow-Day chi2 (Tarone)", value["bd_tarone"], used - 1, bd_ok, why)
    extra: dict[str, Any] = {
        "exposure": stmt.row, "outcome": stmt.col, "strata": stmt.strata,
        "exposed": _plain(rows_dom[1]), "reference": _plain(rows_dom[0]), "outcome_level": _plain(cols_dom[1]),
        "strata_with_rows": used,
        "log_or_se": math.sqrt(max(value["or_var2"] / 2, 0.0)) if bit["or_ok"] else None,
        "log_rr_se": math.sqrt(max(value["rr_var"], 0.0)) if bit["rr_ok"] else None,
        "ci_methods": "OR: Robins-Breslow-Greenland; RR: Greenland-Robins (95%, on the log scale)",
    }
    k = len(strata)
    if bit["cells_hidden"]:
        extra["tables"] = (f"withheld: a cell of some stratum has {lo}..{plan.min_cell - 1} rows; only the pooled "
                           "statistics are released")
    else:
        grid = np.rint(cells).astype(np.int64).reshape(2, 2, k)
        extra["tables"] = [{"stratum": _plain(s), "cells": [[int(grid[i, j, si]) for j in range(2)] for i in range(2)]}
                           for si, s in enumerate(strata)]
        extra["table_layout"] = (f"rows {stmt.row} = {_plain(rows_dom[0])}, {_plain(rows_dom[1])}; columns "
                                 f"{stmt.col} = {_plain(cols_dom[0])}, {_plain(cols_dom[1])}")
    if notes:
        extra["notes"] = notes
    flags = [[False] * len(COLUMNS) for _ in out]
    return Result(COLUMNS, out, [False] * len(out), extra, flags, kind="stratified")
