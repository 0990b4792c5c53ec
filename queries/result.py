"""Result tables: what the analyst sees, built from the reconstructed released values.

`finish` turns the opened outputs of `queries.executor.execute` into a `Result`: columns,
rows, suppression flags per row and per value, and for a CROSSTAB its statistics
(`queries.epi`: chi-square, Fisher's exact test, OR, RR and RD with 95% CIs) — computed
here, in plaintext, from counts already released; for a SELECT's AVG_CI, PROPORTION and RATE,
their estimates and 95% CIs, from aggregates already released (`queries.intervals`).
`explain_result` is EXPLAIN's answer.
How a Result is printed as a table or CSV: `queries.render`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from queries import intervals, ir, render
from queries.epi import crosstab_statistics
from queries.plan import Plan


@dataclass
class Result:
    """The analyst's table. `suppressed[r]`: some value of row r is withheld by the disclosure
    rule; `cell_suppressed[r][c]` (when given): which ones — a withheld value is None in `rows`,
    like a NULL, and only this flag tells the two apart. `kind`: "select", "crosstab", "model"
    or "plan" (EXPLAIN: one line of the plan per row). `noise`: a DP result's noise per value."""

    columns: list[str]
    rows: list[list[Any]]
    suppressed: list[bool]
    extra: dict[str, Any] = field(default_factory=dict)
    cell_suppressed: list[list[bool]] = field(default_factory=list)
    kind: str = "select"
    noise: list[list[dict[str, float] | None]] = field(default_factory=list)
    """Under differential privacy: per row, per column, the value's noise_sd, ci_low and ci_high
    (None for a key or an exact value); empty otherwise (`queries.dp_finish`)."""

    def cell_flags(self) -> list[list[bool]]:
        """Per row, per column: is the value withheld. Without per-value detail, a flagged row
        flags its None values."""
        if self.cell_suppressed:
            return [list(flags) for flags in self.cell_suppressed]
        return [[flag and v is None for v in row] for row, flag in zip(self.rows, self.suppressed)]

    def to_pandas(self) -> pd.DataFrame:
        """The table as a DataFrame: integer columns stay integers (pandas' nullable Int64 when a
        value is missing); attrs hold `extra`, "suppressed" (per row) and "suppressed_cells" (per
        row, per column, the frame's shape), and under DP "noise" (`noise`). `suppressed_mask()` is
        "suppressed_cells" as a DataFrame."""
        frame = pd.DataFrame(self.rows, columns=self.columns)
        for c, name in enumerate(self.columns):
            values = [row[c] for row in self.rows if row[c] is not None]
            if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
                frame[name] = pd.array([row[c] for row in self.rows], dtype="Int64")
        frame.attrs.update(self.extra)
        frame.attrs["suppressed"] = list(self.suppressed)
        frame.attrs["suppressed_cells"] = self.cell_flags()
        if self.noise:
            frame.attrs["noise"] = [list(row) for row in self.noise]
        return frame

    def suppressed_mask(self) -> pd.DataFrame:
        """True where a value is withheld by the disclosure rule (same shape and columns as `to_pandas()`)."""
        return pd.DataFrame(self.cell_flags(), columns=self.columns, dtype=bool)

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "columns": self.columns,
            "rows": [[_json_value(v) for v in r] for r in self.rows],
            "suppressed": self.suppressed,
            "suppressed_cells": self.cell_flags(),
        }
        if self.noise:
            body["noise"] = [[_json_tree(v) for v in r] for r in self.noise]
        body.update({k: _json_tree(v) for k, v in self.extra.items()})
        return json.dumps(body)

    def to_csv(self) -> str:
        """CSV with a `suppressed` column and the statistics as trailing "# " comment lines (`queries.render`);
        under DP each value column is followed by its noise_sd, ci95_low and ci95_high columns."""
        return render.csv_text(render.with_noise_columns(self))

    def to_table(self) -> str:
        """The text a person reads (`queries.render`); under DP with the noise columns, as the CSV."""
        return render.table_text(render.with_noise_columns(self))


def explain_result(plan: Plan) -> Result:
    """EXPLAIN's answer: the plan's text, one line per row, and its predicted cost in extra["cost"]."""
    lines = plan.text().splitlines()
    return Result(["plan"], [[line] for line in lines], [False] * len(lines), {"cost": plan.cost}, kind="plan")


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


def finish(plan: Plan, opened: list[np.ndarray], yates: bool = False) -> Result:
    """Build the analyst's result from the decoded outputs of `execute` (floats, by output).

    `yates`: a CROSSTAB's chi-square with Yates' continuity correction (1 degree of freedom)."""
    if isinstance(plan.statement, ir.Crosstab):
        return _finish_crosstab(plan, opened, yates)
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    m = len(stmt.aggregates)
    empty = opened[0]
    values, nulls, hidden = opened[1 : 1 + m], opened[1 + m : 1 + 2 * m], opened[1 + 2 * m : 1 + 3 * m]
    columns = list(plan.group_columns) + [a.name for a in stmt.aggregates]
    columns += [f"{i.name}{suffix}" for i in stmt.intervals for suffix in intervals.SUFFIXES]
    rows, flags, cells = [], [], []
    for gi, key in enumerate(plan.group_keys):
        if round(empty[gi]) == 1 and (plan.group_columns or stmt.having is not None):
            continue  # pandas' groupby shows no empty groups; HAVING's dropped groups are absent
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
        intervals.append(stmt, row, withheld, len(key))  # AVG_CI, PROPORTION, RATE: from the values above
        rows.append(row)
        flags.append(any(withheld))
        cells.append(withheld)
    extra: dict[str, Any] = {}
    if stmt.weight:
        from queries.weights_select import spread_notes

        notes = spread_notes(stmt, rows, len(plan.group_columns))
        if notes:
            extra["notes"] = notes
    return Result(columns, rows, flags, extra, cell_suppressed=cells)


def _finish_crosstab(plan: Plan, opened: list[np.ndarray], yates: bool) -> Result:
    """The table with margins: suppressed parts (`queries.crosstab_rule`) are None, flagged per
    value, named in extra["suppressed_parts"]; no statistic when the cells are suppressed."""
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
        hidden = {part: False for part in hidden}
        row_m, col_m, total = cells.sum(axis=1), cells.sum(axis=0), cells.sum()
    columns = [stmt.row] + [str(v) for v in cols_dom] + ["total"]
    out_rows, out_flags, out_cells = [], [], []
    for i, rv in enumerate(rows_dom):
        row: list[Any] = [rv] + [None if hidden["cells"] else int(v) for v in cells[i]]
        row.append(None if hidden["row margins"] else int(row_m[i]))
        out_rows.append(row)
        out_cells.append([False] + [bool(hidden["cells"])] * c + [bool(hidden["row margins"])])
    total_row: list[Any] = ["total"] + [None if hidden["column margins"] else int(v) for v in col_m]
    total_row.append(None if hidden["total"] else int(total))
    out_rows.append(total_row)
    out_cells.append([False] + [bool(hidden["column margins"])] * c + [bool(hidden["total"])])
    out_flags = [any(flags) for flags in out_cells]
    extra: dict[str, Any] = {"exposure": stmt.row, "outcome": stmt.col}
    if hidden["cells"]:
        extra["suppressed_parts"] = [part for part, h in hidden.items() if h]
        extra["statistics"] = "withheld: an interior cell is below the minimum cell size"
    else:
        extra.update(crosstab_statistics(cells, rows_dom, cols_dom, stmt.row, stmt.col, yates))
    return Result(columns, out_rows, out_flags, extra, out_cells, kind="crosstab")
