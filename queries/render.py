"""How a `Result` is written out: the table text a person reads and the CSV a program reads.

Table text (`table_text`): the values as pandas prints them, a withheld value as
"suppressed" and a NULL as "NULL"; then, by kind of result:
- CROSSTAB: the chi-square named by its kind, Fisher's exact p, and each OR, RR, RD with
  the levels it compares and its 95% CI, 4 significant digits;
- LINEAR / LOGISTIC / POISSON: a header block as statsmodels prints one (outcome, method, n,
  iterations, log-likelihood or R-squared, converged, POISSON's Pearson chi2 and chi2 / df, and
  any other key of extra["model"]), then the coefficient table, 4 significant digits;
- EXPLAIN: the plan's lines as they are, left-aligned.
Under differential privacy (`Result.noise`), both the text and the CSV show every noisy
column followed by its noise_sd, ci95_low and ci95_high columns (`with_noise_columns`), and
the privacy terms (epsilon, accounting, each noised statistic's scale) as statistics lines.

CSV (`csv_text`): the result table with integers as integers and floats at full precision,
an empty field for a NULL or a withheld value, and a last column `suppressed` naming the
withheld values of each row, separated by ";" (empty when none; the name gets a trailing
"_" while it collides with a result column). The statistics follow as comment lines: each
is "# " then a CSV row statistic,value,ci_low,ci_high — `pandas.read_csv(f, comment="#")`
reads the table alone. EXPLAIN's CSV is one column `plan`, one line of the plan per row.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from queries.result import Result

SKIPPED = ("plan", "cost")
"""extra keys that are not statistics of the answer (EXPLAIN's plan, the measured MPC cost)."""

MODEL_LABELS = {
    "outcome": "Dep. Variable",
    "method": "Method",
    "n": "No. Observations",
    "df_resid": "Df Residuals",
    "iterations": "Iterations",
    "converged": "Converged",
    "log_likelihood": "Log-Likelihood",
    "r_squared": "R-squared",
    "residual_std_error": "Residual Std. Error",
    "pearson_chi2": "Pearson chi2",
    "dispersion": "Pearson chi2 / df",
}
"""extra["model"] keys in the order and with the names of the header block; other keys follow as they are."""


NOISE_COLUMNS = ("noise_sd", "ci95_low", "ci95_high")
"""Under differential privacy, the columns that follow each noisy value column (`with_noise_columns`)."""


def with_noise_columns(result: Result) -> Result:
    """A DP result with every noisy column followed by NAME_noise_sd, NAME_ci95_low, NAME_ci95_high
    (its values' noise standard deviation and 95% interval); other results as they are."""
    from queries.result import Result

    if not result.noise:
        return result
    noisy = [c for c in range(len(result.columns)) if any(row[c] is not None for row in result.noise)]
    columns: list[str] = []
    rows: list[list[Any]] = [[] for _ in result.rows]
    flags: list[list[bool]] = [[] for _ in result.rows]
    cells = result.cell_flags()
    for c, name in enumerate(result.columns):
        columns.append(name)
        for r, row in enumerate(result.rows):
            rows[r].append(row[c])
            flags[r].append(cells[r][c])
        if c not in noisy:
            continue
        columns += [f"{name}_{suffix}" for suffix in NOISE_COLUMNS]
        for r, about in enumerate(result.noise):
            facts = about[c] or {}
            rows[r] += [facts.get(k) for k in ("noise_sd", "ci_low", "ci_high")]
            flags[r] += [False] * 3
    return Result(columns, rows, list(result.suppressed), dict(result.extra), flags, result.kind)


def sig(v: Any, digits: int = 4) -> str:
    """A float to `digits` significant digits, trailing zeros kept (ints and non-numbers as they are)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{v:#.{digits}g}" if math.isfinite(v) else str(v)


def table_text(result: Result) -> str:
    if result.kind == "plan":
        return "\n".join(str(row[0]) for row in result.rows)
    model = result.extra.get("model")
    if isinstance(model, dict) and "refused" in model:
        return f"model refused: {model['refused']}\nnothing is released"
    if isinstance(model, dict):
        return _model_text(result)
    text = _values_text(result, digits=None)
    lines = [text] + _suppression_lines(result)
    if result.kind == "crosstab":
        lines += _crosstab_lines(result.extra)
    else:
        lines += [f"{key}: {_plain_text(value)}" for key, value in result.extra.items()
                  if key not in SKIPPED and key not in ("privacy", "notes")]
        lines += [f"note: {n}" for n in result.extra.get("notes", [])]
        lines += _privacy_lines(result.extra["privacy"]) if "privacy" in result.extra else []
    return "\n".join(lines)


def _values_text(result: Result, digits: int | None) -> str:
    """The rows as pandas' to_string prints them; floats by pandas (or to `digits` significant digits)."""
    flags = result.cell_flags()
    columns = []
    for c in range(len(result.columns)):
        values = [row[c] for row in result.rows]
        floats = [v for v in values if isinstance(v, float)]
        shown = _pandas_floats(values) if floats and digits is None else [sig(v, digits or 4) for v in values]
        columns.append(["suppressed" if flags[r][c] else "NULL" if v is None else s
                        for r, (v, s) in enumerate(zip(values, shown))])
    frame = pd.DataFrame(dict(enumerate(columns)), dtype=object)
    frame.columns = result.columns
    if not result.rows:
        return pd.DataFrame(columns=result.columns).to_string(index=False)
    return frame.to_string(index=False)


def _pandas_floats(values: list[Any]) -> list[str]:
    """Each value's text in pandas' rendering of the column (its float format, common decimals)."""
    series = pd.Series([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
                        for v in values], dtype=float)
    texts = series.to_string(index=False, header=False).splitlines()
    return [t.strip() if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
            for v, t in zip(values, texts)]


def _suppression_lines(result: Result) -> list[str]:
    if result.kind == "crosstab" and "suppressed_parts" in result.extra:
        return [f"suppressed: {', '.join(result.extra['suppressed_parts'])} (the crosstab rule: a count below the "
                "minimum cell size hides every cell and statistic, and the margins that would reveal it)"]
    count = sum(sum(f) for f in result.cell_suppressed)
    if count:
        return [f"({count} value(s) suppressed: fewer contributing rows than the minimum cell size)"]
    if any(result.suppressed):
        return [f"({sum(result.suppressed)} group(s) suppressed: fewer than the minimum cell size)"]
    return []


def _crosstab_lines(extra: dict[str, Any]) -> list[str]:
    lines = []
    if "chi2" in extra:
        lines.append(f"{extra['chi2_test']}: chi2 = {sig(extra['chi2'])}, df = {extra['df']}, "
                     f"p = {sig(extra['p_value'])}")
    if "fisher_exact_p" in extra:
        lines.append(f"Fisher's exact test (two-sided): p = {sig(extra['fisher_exact_p'])}")
    for m in extra.get("measures", []):
        if m["estimate"] is None:
            lines.append(f"{m['label']}: {m['note']}")
        elif m["ci_low"] is None:
            lines.append(f"{m['label']}: {sig(m['estimate'])} ({m['note']})")
        else:
            lines.append(f"{m['label']}: {sig(m['estimate'])} (95% CI {sig(m['ci_low'])} to {sig(m['ci_high'])}, "
                         f"{m['ci_method']})")
    lines += [f"note: {n}" for n in extra.get("notes", [])]
    if "privacy" in extra:
        lines += _privacy_lines(extra["privacy"])
    if "statistics" in extra:
        lines.append(f"statistics: {extra['statistics']}")
    return lines


def _privacy_lines(privacy: dict[str, Any]) -> list[str]:
    """The DP terms of a result, as a person reads them."""
    lines = [f"differential privacy: epsilon {sig(privacy['epsilon'])} ({privacy['accounting']}); "
             f"intervals {privacy['intervals']}"]
    lines += [f"  {n['statistic']}: epsilon {sig(n['epsilon'])}, sensitivity {sig(n['sensitivity'])}, "
              f"Laplace scale {sig(n['laplace_scale'])}" for n in privacy["noised"]]
    return lines


def _model_text(result: Result) -> str:
    model: dict[str, Any] = result.extra["model"]
    keys = [k for k in MODEL_LABELS if k in model] + [k for k in model if k not in MODEL_LABELS]
    pairs = [(MODEL_LABELS.get(k, k) + ":", sig(model[k])) for k in keys]
    halves = [pairs[0::2], pairs[1::2]]  # two columns, left to right, as statsmodels lays them out
    widths = [(max((len(a) for a, _ in h), default=0), max((len(b) for _, b in h), default=0)) for h in halves]
    header = []
    for i in range(0, len(pairs), 2):
        cells = [f"{a:<{widths[j][0]}} {b:>{widths[j][1]}}" for j, (a, b) in enumerate(pairs[i : i + 2])]
        header.append("   ".join(cells))
    table = _values_text(result, digits=4)
    rule = "=" * max(len(line) for line in header + table.splitlines())
    return "\n".join([*header, rule, table, rule])


def _plain_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain_text(v) for v in value)
    return sig(value)


def csv_text(result: Result) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if result.kind == "plan":
        writer.writerow(["plan"])
        writer.writerows([[row[0]] for row in result.rows])
        return out.getvalue()
    flag_name = "suppressed"
    while flag_name in result.columns:
        flag_name += "_"
    writer.writerow([*result.columns, flag_name])
    for row, flags in zip(result.rows, result.cell_flags()):
        withheld = ";".join(name for name, f in zip(result.columns, flags) if f)
        writer.writerow([_csv_value(v) for v in row] + [withheld])
    stats = statistics_rows(result.extra)
    if stats:
        body = io.StringIO()
        csv.writer(body, lineterminator="\n").writerows([["statistic", "value", "ci_low", "ci_high"], *stats])
        out.write("".join(f"# {line}\n" for line in body.getvalue().splitlines()))
    return out.getvalue()


def _csv_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def statistics_rows(extra: dict[str, Any]) -> list[list[str]]:
    """[statistic, value, ci_low, ci_high] rows (full precision) for every statistic in `extra`."""
    rows: list[list[str]] = []
    for key, value in extra.items():
        if key in SKIPPED:
            continue
        if key == "measures":
            for m in value:
                rows.append([m["label"], *(_csv_value(m[k]) for k in ("estimate", "ci_low", "ci_high"))])
                if "note" in m:
                    rows.append([f"{m['label']} note", m["note"], "", ""])
        elif key == "model" and isinstance(value, dict):
            rows += [[k, _csv_scalar(v), "", ""] for k, v in value.items()]
        elif key == "privacy" and isinstance(value, dict):
            rows += [[f"privacy {k}", _csv_scalar(v), "", ""] for k, v in value.items() if k != "noised"]
            rows += [[f"laplace scale of {n['statistic']}", _csv_value(n["laplace_scale"]), "", ""]
                     for n in value.get("noised", [])]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            rows += [[key, v, "", ""] for v in value]
        else:
            rows.append([key, _csv_scalar(value), "", ""])
    return rows


def _csv_scalar(v: Any) -> str:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return _csv_value(v)
