"""Differential privacy terms of a query: which numbers get noise, at what epsilon and scale.

Under `disclosure = "dp"` (any site's policy; `parties.policy`) a query releases noisy
statistics instead of threshold-checked exact ones. `plan_privacy` decides, from the
statement, the agreed epsilon and the pooled declared bounds, which *noised statistics*
the parties compute in MPC (`queries.dp_release`) and how the analyst turns them into the
answer (`queries.dp_finish`: post-processing, which costs no privacy):

    COUNT(*)            rows                        sensitivity 1
    COUNT(x)            n(x)                        sensitivity 1
    SUM(x)              s(x) = sum clamp(x)         sensitivity max(|min|, |max|)
    AVG(x)              m + c(x) / n(x), with c(x) = sum (clamp(x) - m), m = (min + max) / 2:
                        sensitivity h = (max - min) / 2
    VAR(x), STDDEV(x)   from n(x), c(x) and c2(x) = sum (clamp(x) - m)^2 (sensitivity h^2)
    QUANTILE(x, q)      h(x): counts of clamp(x) in 128 equal bins over [min, max]: sensitivity 1
    (and MEDIAN)        (one row is in one bin); the quantile is read from the noisy cumulative counts
    CROSSTAB r BY c     every cell count            sensitivity 1 (margins are sums of noisy cells)

Centring on the middle of the bounds halves the sensitivity of the sum a mean needs (and
quarters that of the squares), and a variance does not change with the centre.

Neighbouring tables differ by one patient's row at one site. A statistic that several
aggregates need is noised once and reused. Groups (and CROSSTAB cells) hold disjoint rows,
so one noised statistic over every group costs its epsilon once (parallel composition).
Accounting is basic (sequential) composition: the query's epsilon is split equally over
its distinct noised statistics, and the query costs that epsilon at every site.

MIN, MAX, CORR and the models (LINEAR, LOGISTIC, POISSON) have no DP mechanism here: a
DP query naming one is refused, naming the mode. A column without
declared bounds is refused, naming the column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from queries import ir
from queries.errors import QueryError

if TYPE_CHECKING:
    from queries.plan import Plan

HIST_BINS = 128
"""Equal-width bins over a column's bounds of the noisy histogram a DP QUANTILE (and MEDIAN) is read from."""

DP_FRAC = 16
"""Fractional bits of the clamped values the parties sum under DP: the noise lands on a grid of 2^-16."""

MODES = ("threshold", "dp")
NOISED_FOR: Mapping[str, tuple[str, ...]] = {
    "COUNT": ("n",),
    "SUM": ("s",),
    "AVG": ("c", "n"),
    "VAR": ("n", "c", "c2"),
    "STDDEV": ("n", "c", "c2"),
    "QUANTILE": ("h",),
}
"""The noised statistics each aggregate is computed from (COUNT(*): the rows)."""

Bounds = Mapping[str, tuple[float, float]]


@dataclass(frozen=True)
class Noised:
    """One noised statistic, per group: ("rows",), ("n", x), ("s", x), ("c", x), ("c2", x), ("h", x) or
    ("cell",); a histogram ("h") has `bins` numbers per group, one row in one bin (so sensitivity 1 in all)."""

    stat: tuple[str, ...]
    sensitivity: float
    epsilon: float
    bins: int = 1

    @property
    def frac(self) -> int:
        """Fractional bits it is summed and noised at (counts: integers)."""
        return DP_FRAC if self.stat[0] in ("s", "c", "c2") else 0

    @property
    def units(self) -> int:
        """Its sensitivity in units of 2^-frac (a clamped value rounds to at most this)."""
        return max(1, round(self.sensitivity * 2**self.frac))

    @property
    def scale(self) -> float:
        """The discrete Laplace scale t in units of 2^-frac: units / epsilon."""
        return self.units / self.epsilon

    @property
    def value_scale(self) -> float:
        """The Laplace scale in the statistic's own units."""
        return self.scale / 2**self.frac

    def label(self) -> str:
        op = self.stat[0]
        return {"rows": "COUNT(*)", "n": "COUNT({0})", "s": "SUM({0})", "c": "SUM({0} - centre)",
                "c2": "SUM(({0} - centre)^2)", "h": f"histogram of {{0}} ({self.bins} bins)",
                "cell": "CROSSTAB cell counts"}[op].format(*self.stat[1:])


@dataclass(frozen=True)
class Privacy:
    """A plan's DP terms: the query's epsilon, the pooled bounds of the columns it reads, and its noised statistics."""

    epsilon: float
    bounds: tuple[tuple[str, float, float], ...]
    noised: tuple[Noised, ...]

    def bound(self, column: str) -> tuple[float, float]:
        for name, lo, hi in self.bounds:
            if name == column:
                return lo, hi
        raise KeyError(column)

    def centre(self, column: str) -> float:
        """m = (min + max) / 2: the centre the "c" and "c2" statistics of `column` are taken about."""
        lo, hi = self.bound(column)
        return (lo + hi) / 2

    def index(self, stat: tuple[str, ...]) -> int:
        return [n.stat for n in self.noised].index(stat)

    def local_lines(self) -> list[str]:
        """EXPLAIN's lines for what each party computes from its rows under DP."""
        out = [f"  clamp {c} to [{lo:g}, {hi:g}] (the widest of the sites' declared bounds)"
               for c, lo, hi in self.bounds]
        texts = {"rows": "row count", "n": "count of non-null {0}", "s": "sum of clamped {0}",
                 "c": "sum of clamped {0} minus the bounds' centre",
                 "c2": "sum of squares of clamped {0} minus the bounds' centre",
                 "h": f"count of clamped {{0}} in each of {HIST_BINS} equal bins over its bounds",
                 "cell": "row count (each cell)"}
        return out + [f"  per group: {texts[n.stat[0]].format(*n.stat[1:])}" for n in self.noised]

    def steps(self) -> tuple[str, ...]:
        """The MPC steps of a DP plan (`queries.dp_release`)."""
        return (
            "secure sum of every party's integer totals (clamped sums at 2^-16, counts)",
            f"noise: one discrete Laplace draw per statistic per group, {len(self.noised)} statistic(s), all in one "
            "batched sampler call (7 rounds) from random words every party draws itself; added to the shares",
            "release: the noisy shares go to the analyst, who computes the answer from them (post-processing)",
        )

    def lines(self) -> list[str]:
        """EXPLAIN's lines for the DP terms (they are bound into the plan digest with the rest)."""
        out = [f"disclosure: differential privacy, epsilon {self.epsilon:g} for this query, spent at every site "
               f"(basic composition: split equally over {len(self.noised)} noised statistic(s); each costs its share "
               "once over every group, which hold disjoint rows)"]
        for n in self.noised:
            out.append(f"  {n.label()}: sensitivity {n.sensitivity:g}, epsilon {n.epsilon:g}, discrete Laplace "
                       f"noise of scale {n.value_scale:.6g} drawn inside MPC from every party's randomness")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "bounds": [list(b) for b in self.bounds]}


def apply(plan: Plan, epsilon: Any, bounds: Bounds) -> Plan:
    """`plan` under DP: its privacy terms (`plan_privacy`) and the DP steps in MPC."""
    privacy = plan_privacy(plan.statement, epsilon, bounds)
    return replace(plan, privacy=privacy, mpc_steps=privacy.steps())


def pooled_bounds(per_site: list[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """The widest bounds over the sites, for the columns every site declared bounds for."""
    common = set(per_site[0]) if per_site else set()
    for site in per_site[1:]:
        common &= set(site)
    return {c: (min(float(s[c][0]) for s in per_site), max(float(s[c][1]) for s in per_site)) for c in sorted(common)}


def check_epsilon(epsilon: Any) -> float:
    """A positive, finite epsilon; QueryError otherwise."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) \
            or epsilon <= 0:
        raise QueryError(f"epsilon must be a positive number, got {epsilon!r}")
    return float(epsilon)


def plan_privacy(stmt: ir.Statement, epsilon: Any, bounds: Bounds) -> Privacy:
    """The DP terms of `stmt` (EXPLAIN: of its inner query); QueryError for what DP cannot release.

    1. Only COUNT, SUM, AVG, VAR, STDDEV, QUANTILE (MEDIAN) SELECTs (without HAVING) and CROSSTAB
       are released under DP.
    2. Every column summed or binned needs pooled bounds (a COUNT(x) needs none).
    3. Distinct noised statistics, in first-use order; epsilon split equally over them.
    """
    eps = check_epsilon(epsilon)
    inner = stmt.inner if isinstance(stmt, ir.Explain) else stmt
    if isinstance(inner, ir.Crosstab) and inner.strata:
        raise QueryError("CROSSTAB ... STRATA is not available under disclosure = dp (differential privacy); "
                         "a CROSSTAB without STRATA releases noisy cells")
    if isinstance(inner, ir.Crosstab):
        return Privacy(eps, (), (Noised(("cell",), 1.0, eps),))
    if not isinstance(inner, ir.Select):
        kind = getattr(inner, "kind", type(inner).__name__.upper())
        raise QueryError(f"{kind} is not available under disclosure = dp (differential privacy); "
                         "only COUNT, SUM, AVG, VAR, STDDEV, MEDIAN, QUANTILE and CROSSTAB are")
    if inner.having is not None:
        raise QueryError("HAVING is not available under disclosure = dp (differential privacy): filter the noisy "
                         "rows after the release instead")
    if any(i.kind.startswith("WEIGHT") for i in inner.intervals):  # `queries.weights_select`
        raise QueryError("WEIGHT is not available under disclosure = dp (differential privacy): its weighted sums "
                         "have no declared bounds")
    if inner.intervals:  # `queries.intervals`: its interval would ignore the noise
        raise QueryError(f"{inner.intervals[0].kind} is not available under disclosure = dp (differential "
                         "privacy): its interval would leave out the noise; each noisy value comes with its own "
                         "NAME_ci95_low and NAME_ci95_high")
    stats: list[tuple[str, ...]] = []
    used: dict[str, tuple[float, float]] = {}
    for agg in inner.aggregates:
        if agg.func not in NOISED_FOR:
            raise QueryError(f"{agg.func} is not available under disclosure = dp (differential privacy); "
                             "only COUNT, SUM, AVG, VAR, STDDEV, MEDIAN, QUANTILE and CROSSTAB are",
                             name=agg.column)
        if agg.column is None:
            wanted: list[tuple[str, ...]] = [("rows",)]
        else:
            wanted = [(op, agg.column) for op in NOISED_FOR[agg.func]]
            if agg.func != "COUNT":
                if agg.column not in bounds:
                    raise QueryError(f"{agg.func}({agg.column}) under disclosure = dp needs bounds declared for "
                                     f"{agg.column!r} at every site (min and max)", name=agg.column)
                used[agg.column] = _checked(agg.column, bounds[agg.column])
        stats += [s for s in wanted if s not in stats]
    share = eps / len(stats)
    noised = []
    for s in stats:
        if s[0] in ("rows", "n", "h"):
            sens = 1.0
        else:
            lo, hi = used[s[1]]
            half = (hi - lo) / 2
            sens = {"s": max(abs(lo), abs(hi)), "c": half, "c2": half * half}[s[0]]
        noised.append(Noised(s, sens, share, HIST_BINS if s[0] == "h" else 1))
    return Privacy(eps, tuple((c, lo, hi) for c, (lo, hi) in used.items()), tuple(noised))


def _checked(column: str, bound: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(bound[0]), float(bound[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise QueryError(f"the bounds of {column!r} must be finite numbers with min < max, got [{lo}, {hi}]",
                         name=column)
    if max(abs(lo), abs(hi)) >= 2.0**40:
        raise QueryError(f"the bounds of {column!r} are beyond the supported range (±2^40)", name=column)
    return lo, hi
