"""The plots of the benchmark command's docs section, drawn from result rows with matplotlib.

`benchmarks.report_docs` embeds them in docs/benchmarks.md. Each function draws one
figure from the rows it is given and writes it as a PNG, or writes nothing and returns
None when the rows hold nothing for it: a run of one suite plots only that suite.

matplotlib is an optional, benchmark-only dependency (the `bench` extra); callers check
`available()` first. Figures are built with `matplotlib.figure.Figure` on the Agg canvas
directly, not through `pyplot`, so no global figure registry or interactive backend is
involved and nothing is left open between calls.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.framework import Row

SYSTEM_LABELS = {"pooled": "Pooled", "crypten": "CrypTen-TTP", "mpyc": "MPyC", "pandas": "pandas",
                 "statsmodels": "statsmodels", "duckdb": "DuckDB", "postgresql": "PostgreSQL"}


def available() -> bool:
    """Whether matplotlib can be imported here (without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(ncols: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * ncols, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})  # no version string: reruns differ only by data
    return path


def _series(rows: Iterable[Row], x: Callable[[Row], float | None],
            y: Callable[[Row], float | None]) -> dict[str, list[tuple[float, float]]]:
    """Points (x, y) per case (and system, if not Pooled), sorted by x; rows missing either value skipped."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        xv, yv = x(r), y(r)
        if xv is None or yv is None:
            continue
        label = r.case if r.system == "pooled" else f"{r.case} ({SYSTEM_LABELS.get(r.system, r.system)})"
        out[label].append((float(xv), float(yv)))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _lines(ax: Any, series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str,
           logx: bool = False) -> None:
    for label, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    if logx:
        ax.set_xscale("log")
    _scale_y(ax, [p[1] for pts in series.values() for p in pts])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize="small")


def _scale_y(ax: Any, values: list[float]) -> None:
    """Log y when the values span more than 50× (cases of very different cost on one plot), else y from 0."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)


def _axis(rows: list[Row], axis: str) -> list[Row]:
    return [r for r in rows if r.suite == "scale" and r.extra.get("axis") == axis and not r.extra.get("failed")]


def _mb(r: Row) -> float | None:
    return None if r.bytes_per_party is None else r.bytes_per_party / 1e6


def _two_panels(pts: list[Row], x: Callable[[Row], float | None], xlabel: str, logx: bool,
                panels: tuple[tuple[Callable[[Row], float | None], str], tuple[Callable[[Row], float | None], str]],
                title: str, path: Path) -> Path:
    """One figure, two line plots against the same x: each panel is (y of a row, y label)."""
    fig, axes = _figure(2)
    for ax, (y, ylabel) in zip(axes, panels):
        _lines(ax, _series(pts, x, y), xlabel, ylabel, logx=logx)
        if not logx:
            ax.set_xticks(sorted({v for r in pts if (v := x(r)) is not None}))
    fig.suptitle(title)
    return _save(fig, path)


def scale_rows(rows: list[Row], path: Path) -> Path | None:
    """Seconds and MPC MB per party against rows per party (log x): how the local/MPC split scales."""
    pts = _axis(rows, "rows")
    if not pts:
        return None
    return _two_panels(pts, lambda r: r.size, "rows per party", True,
                       ((lambda r: r.seconds, "seconds"), (_mb, "MPC MB sent per party")),
                       "Scale: rows per party", path)


def scale_parties(rows: list[Row], path: Path) -> Path | None:
    """MB sent per party and seconds against the number of parties."""
    pts = _axis(rows, "parties")
    if not pts:
        return None
    return _two_panels(pts, lambda r: r.parties, "parties", False,
                       ((_mb, "MB sent per party"), (lambda r: r.seconds, "seconds")), "Scale: parties", path)


def scale_features(rows: list[Row], path: Path) -> Path | None:
    """Seconds against the number of features (regression's cost grows with the Gram matrix)."""
    pts = _axis(rows, "features")
    if not pts:
        return None
    fig, (ax,) = _figure(1)
    _lines(ax, _series(pts, lambda r: r.size, lambda r: r.seconds), "features", "seconds")
    ax.set_title("Scale: features")
    return _save(fig, path)


def queries_rtt(rows: list[Row], path: Path) -> Path | None:
    """Pooled's query seconds against the emulated RTT, the cost model's prediction dashed in the same colour."""
    pooled = [r for r in rows if r.suite == "queries" and r.system == "pooled" and r.seconds is not None]
    if not pooled:
        return None
    fig, (ax,) = _figure(1)
    parties = {r.parties for r in pooled}
    for (case, n), pts in sorted(_by_case_parties(pooled).items()):
        label = case if len(parties) == 1 else f"{case}, {n} parties"
        pts.sort(key=lambda r: r.rtt_ms)
        (line,) = ax.plot([r.rtt_ms for r in pts], [r.seconds for r in pts], marker="o", label=label)
        pred = [(r.rtt_ms, r.extra["predicted_seconds"]) for r in pts if r.extra.get("predicted_seconds") is not None]
        if pred:
            ax.plot([p[0] for p in pred], [p[1] for p in pred], linestyle="--", marker="x", color=line.get_color(),
                    label=f"{label} (predicted)")
    _scale_y(ax, [r.seconds for r in pooled if r.seconds is not None]
             + [r.extra["predicted_seconds"] for r in pooled if r.extra.get("predicted_seconds")])
    ax.set_xlabel("emulated round-trip time (ms)")
    ax.set_ylabel("seconds")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("Queries against network round-trip time")
    return _save(fig, path)


def _by_case_parties(rows: list[Row]) -> dict[tuple[str, int], list[Row]]:
    out: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for r in rows:
        out[(r.case, r.parties)].append(r)
    return out


def micro_peers(rows: list[Row], path: Path) -> Path | None:
    """Bars of seconds per micro operation, one bar per system; only drawn when a peer was measured."""
    micro = [r for r in rows if r.suite == "micro" and r.seconds is not None and not r.extra.get("failed")]
    systems = [s for s in SYSTEM_LABELS if any(r.system == s for r in micro)]
    if "pooled" not in systems or len(systems) < 2:
        return None
    groups = sorted({(r.case, r.parties) for r in micro if r.system == "pooled"}, key=lambda g: (g[1], g[0]))
    fig, (ax,) = _figure(1)
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        xs, ys = [], []
        for j, (case, n) in enumerate(groups):
            secs = [r.seconds for r in micro if (r.system, r.case, r.parties) == (system, case, n)]
            if secs:
                xs.append(j + (i - (len(systems) - 1) / 2) * width)
                ys.append(min(s for s in secs if s is not None))
        ax.bar(xs, ys, width=width, label=SYSTEM_LABELS[system])
    ax.set_xticks(range(len(groups)), [f"{case}\n{n} parties" for case, n in groups], fontsize="small")
    _scale_y(ax, [r.seconds for r in micro if r.seconds is not None])
    ax.set_ylabel("seconds (median)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("Micro operations: Pooled and peers (lower is faster)")
    return _save(fig, path)


PLOTS: dict[str, tuple[Callable[[list[Row], Path], Path | None], str]] = {
    "micro_peers": (micro_peers, "Seconds per micro operation, Pooled and peers"),
    "queries_rtt": (queries_rtt, "Query seconds against RTT, cost-model prediction dashed"),
    "scale_rows": (scale_rows, "Seconds and MPC MB per party against rows per party"),
    "scale_parties": (scale_parties, "MB per party and seconds against the number of parties"),
    "scale_features": (scale_features, "Seconds against the number of features"),
}
"""Plot name -> (function, alt text). The PNG is `bench_<name>.png` in the image directory."""


def draw_all(rows: list[Row], img_dir: Path) -> dict[str, tuple[Path, str]]:
    """Draw every plot the rows hold data for into `img_dir`; name -> (PNG path, alt text)."""
    out: dict[str, tuple[Path, str]] = {}
    for name, (draw, alt) in PLOTS.items():
        path = draw(rows, img_dir / f"bench_{name}.png")
        if path is not None:
            out[name] = (path, alt)
    return out
