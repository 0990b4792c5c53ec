"""The generated "Benchmark results" section of docs/benchmarks.md, written from a run's report.

`python -m benchmarks` calls `write_docs` at the end of a run; `python -m benchmarks.report_docs
RESULTS_JSON [--doc docs/benchmarks.md] [--also OTHER_JSON ...]` regenerates the same section from
a saved results.json without measuring again (to change the wording, or after editing a row by
hand); `--also` adds the rows of other runs (a suite run on its own), each named with its command,
date and machine (`merge`).

The section (under `benchmarks.framework.RESULTS_HEADING`) holds the exact command, the
date and machine, one table per suite the report contains (`benchmarks.report_tables`:
micro operations against the peers, queries against the network RTT and pandas, logistic
regression against CrypTen and statsmodels, scaling), plots (`benchmarks.report_plots`;
skipped with a note when matplotlib is missing), and a "Targets" list computed from the
rows, so that the claims in the docs cannot drift from the numbers beside them. Only that
section of the doc is rewritten; the rest of the file stays byte-identical.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks import report_plots
from benchmarks.framework import DEFAULT_DOC, RESULTS_HEADING, Row, load_report, write_section
from benchmarks.report_models import models, regression_wan
from benchmarks.report_tables import Check, micro, pushdown, queries, regression, scale, targets


def _machine(report: dict[str, Any]) -> str:
    m = report.get("machine") or {}
    load = " ".join(str(x) for x in m.get("load_average") or []) or "unknown"
    versions = ", ".join(f"{k} {m[k]}" for k in ("python", "numpy", "grpcio") if k in m)
    return (f"{m.get('nproc', '?')} cores, {m.get('cpu', 'unknown CPU')}; 1/5/15-minute load average at the start: "
            f"{load}; {versions}; {m.get('platform', '')}").rstrip("; ")


def _list(values: Any) -> str:
    if isinstance(values, list | tuple):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    return str(values)


def _rel(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


def markdown(report: dict[str, Any], doc: Path, out: Path, images: dict[str, str], plot_note: str = "") -> str:
    """The whole section, from its heading to a final newline; `images` maps plot names to markdown embeds."""
    rows = rows_of(report)
    options = report.get("options") or {}
    lines = [RESULTS_HEADING, "",
             f"Generated from [results.json]({_rel(out / 'results.json', doc.parent)}) by `python -m benchmarks` "
             "(rewrite without measuring: `python -m benchmarks.report_docs RESULTS_JSON`); "
             "edits here are overwritten.",
             "", f"Command: `{report.get('command', '')}`", "",
             f"Date: {report.get('date', 'unknown')}. Machine: {_machine(report)}.", ""]
    for other in report.get("also", []):
        lines += [f"Also, for the suite(s) {_list(other.get('suites', []))}: `{other.get('command', '')}`, "
                  f"{other.get('date', 'unknown')}; machine: {_machine(other)}.", ""]
    if options:
        lines += [f"Options: parties {_list(options.get('parties'))}; RTT {_list(options.get('wan_rtt_ms'))} ms; "
                  f"{options.get('repeat')} timed repetitions per case; "
                  f"peers {'on' if options.get('peers') else 'off'}.",
                  ""]
    if options.get("quick"):
        lines += ["**`--quick`: a smoke run on small sizes, not a measurement. Do not quote these numbers.**", ""]
    if plot_note:
        lines += [plot_note, ""]
    checks: list[Check] = []
    suites = {r.suite for r in rows}
    for suite, title, build in (("micro", "Micro operations", micro), ("queries", "Queries", queries),
                                ("regression", "Logistic regression", regression),
                                ("models", "Models: 3 × 10,000 rows, 6 parameters", models),
                                ("pushdown", "Large sites: local pushdown", pushdown)):
        if suite not in suites:
            continue
        table, found = build([r for r in rows if r.suite == suite])
        checks += found
        lines += [f"### {title}", "", *table, ""]
        if suite == "regression" and any(r.rtt_ms for r in rows if r.suite == suite):
            far, found = regression_wan([r for r in rows if r.suite == suite])
            checks += found
            lines += ["At an emulated RTT (`benchmarks.wan.DelayRelay`), Pooled alone:", "", *far, ""]
        name = {"micro": "micro_peers", "queries": "queries_rtt"}.get(suite)
        if name in images:
            lines += [images[name], ""]
    if "scale" in suites:
        lines += ["### Scale", "", *scale([r for r in rows if r.suite == "scale"], images)]
    lines += ["### Targets", "", *targets(checks), ""]
    return "\n".join(lines)


def merge(report: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """`report` with the rows of `others` (runs of other suites, or of a suite at other RTTs) added,
    the earlier rows of the same suite and RTT replaced; each other run's command, date and machine
    listed under "also"."""
    out = dict(report)
    rows = rows_of(report)
    also = list(report.get("also", []))
    for other in others:
        theirs = rows_of(other)
        suites = sorted({r.suite for r in theirs})
        measured = {(r.suite, r.rtt_ms) for r in theirs}
        rows = [r for r in rows if (r.suite, r.rtt_ms) not in measured] + theirs
        also.append({"suites": suites, "command": other.get("command", ""), "date": other.get("date", ""),
                     "machine": other.get("machine", {})})
    out["rows"], out["also"] = rows, also
    return out


def rows_of(report: dict[str, Any]) -> list[Row]:
    """The report's rows as `Row`s, whether they are dicts (`Recorder.report`) or rows (`load_report`)."""
    return [r if isinstance(r, Row) else Row(**r) for r in report.get("rows", [])]


def write_docs(report: dict[str, Any], doc: Path, out: Path) -> list[Path]:
    """Rewrite the benchmark results section of `doc` and its plots in `doc.parent / 'img'`; the paths written."""
    images: dict[str, str] = {}
    written: list[Path] = []
    note = ""
    if report_plots.available():
        for name, (path, alt) in report_plots.draw_all(rows_of(report), doc.parent / "img").items():
            images[name] = f"![{alt}]({_rel(path, doc.parent)})"
            written.append(path)
    else:
        note = "Plots skipped: matplotlib is not installed here (`pip install -e '.[bench]'`)."
    doc.parent.mkdir(parents=True, exist_ok=True)
    write_section(doc, markdown(report, doc, out, images, note))
    return [doc, *written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_docs", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results.json written by python -m benchmarks")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="markdown file whose section is rewritten")
    parser.add_argument("--also", type=Path, nargs="+", default=[], metavar="RESULTS_JSON",
                        help="results.json files of other runs whose rows (by suite) are added")
    args = parser.parse_args(argv)
    report = merge(load_report(args.results), [load_report(p) for p in args.also])
    for path in write_docs(report, args.doc, args.results.parent):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
