"""A CROSSTAB's statistics, read as an epidemiologist reads a table: rows exposure, columns outcome.

Computed by the analyst, in plaintext, from cell counts already released (only when every
cell is released: the disclosure rule of `queries.crosstab_rule` withholds them otherwise).
For `CROSSTAB row BY col` with sorted levels row_1 .. row_r and col_1 .. col_c:

1. Chi-square test of independence on the table without its empty rows and columns
   (`scipy.stats.chi2_contingency`): Pearson's, uncorrected unless `yates` is asked for;
   Yates' continuity correction applies only with 1 degree of freedom, as in scipy. The
   output names which one it is ("chi2_test").
2. Fisher's exact test (two-sided, `scipy.stats.fisher_exact`) for a 2 x 2 table.
3. For every exposure level row_i (i >= 2) against the reference row_1, with the outcome
   col_c (the last level) against all other columns: a = exposed cases, b = exposed
   non-cases, c = reference cases, d = reference non-cases, n1 = a + b, n0 = c + d.
   - OR = ad / bc, 95% CI exp(log OR +- 1.96 sqrt(1/a + 1/b + 1/c + 1/d)) (Woolf);
   - RR = (a / n1) / (c / n0), 95% CI exp(log RR +- 1.96 sqrt(1/a - 1/n1 + 1/c - 1/n0)) (Katz);
   - RD = a / n1 - c / n0, 95% CI RD +- 1.96 sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0) (Wald).
   Each is labelled with the levels it compares, e.g. "RR (smoking=yes vs no, outcome=1)".
4. A zero cell: no continuity correction is added (no Haldane 0.5). OR is not given when
   a, b, c or d is 0, RR when a or c is 0 (the estimate is 0 or infinite and its log CI
   undefined); the measure is listed with estimate None and a note naming the zero cell.
   RD keeps its estimate; its Wald CI is None when both risks are 0 or 1 (zero width).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975), written out so that importing this module loads no scipy


def crosstab_statistics(
    cells: np.ndarray, rows: Sequence[Any], cols: Sequence[Any], row_name: str, col_name: str, yates: bool = False
) -> dict[str, Any]:
    """chi2, df, p_value, chi2_test; fisher_exact_p (2 x 2); measures (OR, RR, RD per exposure
    level); notes (why a statistic is absent, when one is)."""
    from scipy import stats  # the analyst's side only, when a crosstab is finished

    out: dict[str, Any] = {}
    notes: list[str] = []
    live = cells[cells.sum(axis=1) > 0][:, cells.sum(axis=0) > 0]
    if live.shape[0] >= 2 and live.shape[1] >= 2:
        chi2, p, dof, expected = stats.chi2_contingency(live, correction=yates)
        out.update(chi2=float(chi2), df=int(dof), p_value=float(p), chi2_test=_chi2_name(yates, int(dof)))
        if (expected < 5).any():
            notes.append("chi-square: an expected count is below 5, the approximation is poor; "
                         "Fisher's exact test is exact for 2 x 2")
    else:
        notes.append("chi-square: needs at least two non-empty rows and two non-empty columns")
    if cells.shape == (2, 2):
        out["fisher_exact_p"] = float(stats.fisher_exact(cells).pvalue)
    if len(rows) >= 2 and len(cols) >= 2:
        outcome = cols[-1]
        out["measures"] = [
            m
            for i in range(1, len(rows))
            for m in _measures(cells[i], cells[0], (row_name, rows[i], rows[0]), (col_name, outcome, cols[:-1]))
        ]
    else:
        notes.append("OR, RR, RD: need at least two exposure levels (rows) and two outcome levels (columns)")
    if notes:
        out["notes"] = notes
    return out


def _chi2_name(yates: bool, dof: int) -> str:
    if yates and dof == 1:
        return "Pearson chi-square with Yates' continuity correction"
    if yates:
        return "Pearson chi-square, no continuity correction (Yates' applies only with 1 degree of freedom)"
    return "Pearson chi-square, no continuity correction"


def _measures(
    exposed: np.ndarray, reference: np.ndarray, exposure: tuple[str, Any, Any], outcome: tuple[str, Any, Sequence[Any]]
) -> list[dict[str, Any]]:
    """OR, RR and RD of the outcome's last level (the last entry of each row) in one exposure
    level against the reference level."""
    row_name, level, ref = exposure
    col_name, case, others = outcome
    a, b = int(exposed[-1]), int(exposed[:-1].sum())
    c, d = int(reference[-1]), int(reference[:-1].sum())
    n1, n0 = a + b, c + d
    tag = f"({row_name}={level} vs {ref}, {col_name}={case})"
    facts = {"exposed": _plain(level), "reference": _plain(ref), "outcome_level": _plain(case)}
    other = others[0] if len(others) == 1 else f"not {case}"
    zero = [(lv, oc) for lv, oc, n in ((level, case, a), (level, other, b), (ref, case, c), (ref, other, d)) if n == 0]

    def zeros(found: list[tuple[Any, Any]]) -> str:
        named = " and ".join(f"({row_name}={lv}, {col_name}={oc})" for lv, oc in found)
        return f"not estimable: the cell {named} is 0" if len(found) == 1 else f"not estimable: the cells {named} are 0"

    def entry(name: str, method: str, est: float | None, lo: float | None, hi: float | None, note: str = "") -> dict:
        item = {"measure": name, "label": f"{name} {tag}", "estimate": est, "ci_low": lo, "ci_high": hi,
                "ci_method": method, **facts}
        if note:
            item["note"] = note
        return item

    if n1 == 0 or n0 == 0:
        empty = f"not estimable: no rows with {row_name}={level if n1 == 0 else ref}"
        methods = (("OR", "Woolf"), ("RR", "Katz"), ("RD", "Wald"))
        return [entry(m, method, None, None, None, empty) for m, method in methods]
    out = []
    if min(a, b, c, d) > 0:
        odds = a * d / (b * c)
        se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        out.append(entry("OR", "Woolf", odds, odds * math.exp(-Z95 * se), odds * math.exp(Z95 * se)))
    else:
        out.append(entry("OR", "Woolf", None, None, None, zeros(zero)))
    if a > 0 and c > 0:
        rr = (a / n1) / (c / n0)
        se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
        out.append(entry("RR", "Katz", rr, rr * math.exp(-Z95 * se), rr * math.exp(Z95 * se)))
    else:
        out.append(entry("RR", "Katz", None, None, None, zeros([z for z in zero if z[1] == case])))
    p1, p0 = a / n1, c / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    if se > 0:
        out.append(entry("RD", "Wald", p1 - p0, p1 - p0 - Z95 * se, p1 - p0 + Z95 * se))
    else:
        out.append(entry("RD", "Wald", p1 - p0, None, None, "no Wald CI: every risk is 0 or 1"))
    return out


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
