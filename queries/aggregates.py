"""What each stage of a SELECT does for each aggregate function: one table, read by the executor.

`queries.executor` runs a SELECT as a fixed sequence of batched stages (suppression flags,
NULL denominators, means, centred sums, (co)variances, the floating-point release, gating).
An aggregate takes part in a stage only where its `Stages` entry says so, so that adding a
function means adding a row here, not a branch in every stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from queries import ir


@dataclass(frozen=True)
class Stages:
    """One aggregate function's part in each stage of a SELECT.

    pairwise: counted over the rows where both of its columns are present (CORR), not its own column's.
    quantile: suppressed below the quantile's floor (`queries.executor._quantile_floor`) rather than k.
    null: when the value is NULL: "empty" (no contributing row), "single" (fewer than two), None (never).
    means: the first divisions it needs: ("mean",) sum / count, ("mx", "my") CORR's two means.
    centred: the pooled centred sums it needs (`queries.moments.centred_sums`).
    release: "mean", "variance" or "root": released as (mantissa, exponent) (`queries.floats`).
    value: where its released value comes from: "count", "sum", "float", "corr", "extreme", "quantile".
    """

    value: str
    pairwise: bool = False
    quantile: bool = False
    null: str | None = None
    means: tuple[str, ...] = ()
    centred: tuple[str, ...] = ()
    release: str | None = None


STAGES: dict[str, Stages] = {
    "COUNT": Stages("count"),
    "SUM": Stages("sum"),
    "AVG": Stages("float", null="empty", means=("mean",), release="mean"),
    "VAR": Stages("float", null="single", means=("mean",), centred=("ss",), release="variance"),
    "STDDEV": Stages("float", null="single", means=("mean",), centred=("ss",), release="root"),
    "CORR": Stages("corr", pairwise=True, null="single", means=("mx", "my"), centred=("sxx", "syy", "sxy")),
    "MIN": Stages("extreme", null="empty"),
    "MAX": Stages("extreme", null="empty"),
    "QUANTILE": Stages("quantile", quantile=True, null="empty"),
    "MEDIAN": Stages("quantile", quantile=True, null="empty"),
}


def stages(agg: ir.Aggregate) -> Stages:
    """The table's row for an aggregate."""
    return STAGES[agg.func]


def count_key(agg: ir.Aggregate) -> tuple[str, ...]:
    """The measure that counts an aggregate's contributing rows: its own non-null count
    (COUNT(*): the rows; CORR: the rows with both values)."""
    if agg.column is None:
        return ("rows",)
    if stages(agg).pairwise:
        return ("pn", agg.column, agg.column2 or "")
    return ("n", agg.column)
