"""Result tables: what the analyst sees, built from the reconstructed released values.

`finish` turns the opened outputs of `queries.executor.execute` into a `Result`: columns,
rows, a suppression flag per row, and for a CROSSTAB Pearson's chi-square with its degrees
of freedom and p-value and, for 2 x 2 tables, the odds ratio and relative risk with 95%
confidence intervals — computed here, in plaintext, from counts already released.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from queries import ir
from queries.plan import Plan


@dataclass
class Result:
    """The analyst's table. `suppressed[r]`: some value of row r is withheld by the disclosure
    rule; `cell_suppressed[r][c]` (when given): which ones — a withheld value is None in `rows`,
    like a NULL, and only this flag tells the two apart."""

    columns: list[str]
    rows: list[list[Any]]
    suppressed: list[bool]
    extra: dict[str, Any] = field(default_factory=dict)
    cell_suppressed: list[list[bool]] = field(default_factory=list)

    def to_pandas(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=self.columns)
        frame.attrs.update(self.extra)
        return frame

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "columns": self.columns,
            "rows": [[_json_value(v) for v in r] for r in self.rows],
            "suppressed": self.suppressed,
        }
        if self.cell_suppressed:
            body["suppressed_cells"] = self.cell_suppressed
        body.update({k: _json_tree(v) for k, v in self.extra.items()})
        return json.dumps(body)

    def to_csv(self) -> str:
        return self.to_pandas().to_csv(index=False)

    def to_table(self) -> str:
        frame = self.to_pandas().astype(object).where(lambda d: d.notna(), "NULL")
        for r, flags in enumerate(self.cell_suppressed):
            for c, flag in enumerate(flags):
                if flag:
                    frame.iat[r, c] = "suppressed"
        text = frame.to_string(index=False)
        if self.cell_suppressed and any(any(f) for f in self.cell_suppressed):
            count = sum(sum(f) for f in self.cell_suppressed)
            text += f"\n({count} value(s) suppressed: fewer contributing rows than the minimum cell size)"
        elif any(self.suppressed):
            text += f"\n({sum(self.suppressed)} group(s) suppressed: fewer than the minimum cell size)"
        for key, value in self.extra.items():
            if key not in ("plan", "cost"):
                text += f"\n{key}: {_json_tree(value)}"
        return text


def _json_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _json_tree(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _json_tree(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_tree(x) for x in v]
    return _json_value(v)


def finish(plan: Plan, opened: list[np.ndarray]) -> Result:
    """Build the analyst's result from the decoded outputs of `execute` (floats, by output)."""
    if isinstance(plan.statement, ir.Crosstab):
        return _finish_crosstab(plan, opened)
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    m = len(stmt.aggregates)
    empty = opened[0]
    values, nulls, hidden = opened[1 : 1 + m], opened[1 + m : 1 + 2 * m], opened[1 + 2 * m : 1 + 3 * m]
    columns = list(plan.group_columns) + [a.name for a in stmt.aggregates]
    rows, flags, cells = [], [], []
    for gi, key in enumerate(plan.group_keys):
        if round(empty[gi]) == 1 and plan.group_columns:
            continue  # pandas' groupby shows no empty groups
        row: list[Any] = list(key)
        withheld = [False] * len(key)
        for agg, val, null, hide in zip(stmt.aggregates, values, nulls, hidden):
            gone = round(hide[gi]) == 1
            withheld.append(gone)
            if gone or round(null[gi]) == 1 or (round(empty[gi]) == 1 and agg.func not in ("COUNT", "SUM")):
                row.append(None)
            elif agg.func == "COUNT" or (agg.func in ("SUM", "MIN", "MAX") and agg.column in plan.integer_columns):
                row.append(int(round(val[gi])))  # as pandas: integer columns' sums and extremes are integers
            else:
                row.append(float(val[gi]))
        rows.append(row)
        flags.append(any(withheld))
        cells.append(withheld)
    return Result(columns, rows, flags, cell_suppressed=cells)


def _finish_crosstab(plan: Plan, opened: list[np.ndarray]) -> Result:
    """The table with margins: suppressed parts (`queries.crosstab_rule`) are NULL, named in
    extra["suppressed_parts"], and their rows flagged; no statistic when the cells are suppressed."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Crosstab)
    released, hidden_bits = opened
    rows_dom = list(dict.fromkeys(k[0] for k in plan.group_keys))
    cols_dom = list(dict.fromkeys(k[1] for k in plan.group_keys))
    r, c = len(rows_dom), len(cols_dom)
    counts = np.rint(released).astype(np.int64)
    hidden = dict(zip(("cells", "row margins", "column margins", "total"), np.rint(hidden_bits).astype(bool)))
    cells = counts[: r * c].reshape(r, c)
    if hidden["cells"]:
        row_m, col_m, total = counts[r * c : r * c + r], counts[r * c + r : r * c + r + c], counts[-1]
    else:  # every cell released: the margins are their sums (the margin bits are then no secret)
        hidden = dict.fromkeys(hidden, False)
        row_m, col_m, total = cells.sum(axis=1), cells.sum(axis=0), cells.sum()
    columns = [stmt.row] + [str(v) for v in cols_dom] + ["total"]
    out_rows, out_flags = [], []
    for i, rv in enumerate(rows_dom):
        row: list[Any] = [rv] + [None if hidden["cells"] else int(v) for v in cells[i]]
        row.append(None if hidden["row margins"] else int(row_m[i]))
        out_rows.append(row)
        out_flags.append(hidden["cells"] or hidden["row margins"])
    total_row: list[Any] = ["total"] + [None if hidden["column margins"] else int(v) for v in col_m]
    total_row.append(None if hidden["total"] else int(total))
    out_rows.append(total_row)
    out_flags.append(hidden["column margins"] or hidden["total"])
    extra: dict[str, Any] = {}
    if hidden["cells"]:
        extra["suppressed_parts"] = [part for part, h in hidden.items() if h]
        extra["statistics"] = "withheld: an interior cell is below the minimum cell size"
    else:
        extra.update(crosstab_statistics(cells))
    return Result(columns, out_rows, out_flags, extra)


def crosstab_statistics(cells: np.ndarray) -> dict[str, Any]:
    """Pearson's chi-square (no continuity correction) and, for 2 x 2, OR and RR with 95% CIs."""
    out: dict[str, Any] = {}
    live = cells[cells.sum(axis=1) > 0][:, cells.sum(axis=0) > 0]
    if live.shape[0] >= 2 and live.shape[1] >= 2:
        chi2, p, dof, _ = stats.chi2_contingency(live, correction=False)
        out["chi2"] = float(chi2)
        out["df"] = int(dof)
        out["p_value"] = float(p)
    if cells.shape == (2, 2):
        a, b, c, d = (float(v) for v in cells.ravel())
        z = stats.norm.ppf(0.975)
        if min(a, b, c, d) > 0:
            odds = a * d / (b * c)
            se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
            out["odds_ratio"] = {
                "estimate": odds,
                "ci_low": odds * math.exp(-z * se),
                "ci_high": odds * math.exp(z * se),
            }
        if a > 0 and c > 0:
            rr = (a / (a + b)) / (c / (c + d))
            se = math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
            out["relative_risk"] = {"estimate": rr, "ci_low": rr * math.exp(-z * se), "ci_high": rr * math.exp(z * se)}
    return out
