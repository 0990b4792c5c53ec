"""What a plan will cost before it runs: the stand-in tables for EXPLAIN's prediction.

EXPLAIN predicts a plan's rounds, bytes, messages and dealer material by running its MPC
steps in-process on stand-in tables (`queries.engine.predict_cost`) instead of adding up a
table of per-protocol costs: the counters then come from the very code that will run, so
they cannot drift from it when a protocol changes. Which tables stand in depends on the
statement:

* SELECT and CROSSTAB: empty tables. Their MPC steps depend on the number of groups only,
  so the prediction is exact — except that MEDIAN/QUANTILE's search handles every party's
  table rows rounded up to a power of two (at least 64): its rounds are fixed up to 2^16
  such slots in all (one more per search step beyond: `protocols.rank_select.sign_bit`), but its
  bytes and dealer material grow with those sizes. Given the parties' row counts, the
  stand-ins have as many (all-NULL) rows and the prediction is exact; without them it
  assumes tables of at most 64 rows and says so ("slots_per_party").
* LINEAR: tables that pass the refusal checks (enough complete cases, every level with at
  least k rows; numeric values between 1 and 2, so that np.log and np.sqrt are defined).
  The fit's steps do not depend on the values, so the prediction is
  exact — unless the real data is refused, which costs less.
* LOGISTIC: the same tables; the real cost also grows with the number of Newton
  iterations and with each party's row count (padded to a power of two, at least 64), so
  the prediction is an estimate, reported with the iterations and rows it assumed.
* POISSON: the same tables (counts 0 and 1, positive offsets). Its Newton iterations are a
  fixed schedule (MAXITER), so the rounds are exact — unless the real data is refused; the
  bytes and dealer material grow with each party's padded row count, reported as assumed.

* SURVIVAL: tables that pass its checks, on a 16-point grid (`queries.survival_plan.stand_ins`):
  the rounds are exact, the bytes those of that grid.

Stand-in values come from numpy's seeded generator: simulation, not cryptography.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from queries import ir
from queries.order_keys import VALUE_BITS, scale_of
from queries.plan import Plan
from queries.table import Schema

_DTYPES = {"int": "Int64", "float": "Float64", "category": "string"}


QUANTILE_SCALE = VALUE_BITS
"""The column scale a prediction assumes for a MEDIAN/QUANTILE column when none is given: the
widest integer order key, so that the predicted rounds are an upper bound."""


def quantile_scales(plan: Plan, frames: Sequence[pd.DataFrame]) -> dict[str, int]:
    """Each MEDIAN/QUANTILE column's e over the pooled frames (plaintext, no WHERE): what the run
    opens when every row is kept (`queries.scaling.exponents`), for exact predictions in tests."""
    cols = dict.fromkeys(col for col, _ in plan.quantiles)
    return {c: scale_of(pd.concat([f[c] for f in frames]).dropna().to_numpy(dtype=float)) for c in cols}


def _quantile_stand_ins(
    plan: Plan, schema: Schema, parties: int, rows: Sequence[int] | None, scales: Mapping[str, int]
) -> tuple[Plan, list[pd.DataFrame]]:
    """All-NULL tables but for one row at the first party whose MEDIAN/QUANTILE columns have
    largest |x| in (2^(e-1), 2^e], so that the run opens the same e; WHERE dropped so that it is kept
    (it only filters rows locally). A derived column (`MEDIAN(sbp * 2)`) becomes that value on every row."""
    stmt = plan.statement
    assert isinstance(stmt, ir.Select)
    frames = [null_frame(schema, r) for r in (rows if rows is not None else [0] * parties)]
    frames[0] = frames[0] if len(frames[0]) else null_frame(schema, 1)
    derived = {d.name: d for d in stmt.derived}
    for col in dict.fromkeys(c for c, _ in plan.quantiles):
        e = min(scales.get(col, QUANTILE_SCALE), VALUE_BITS)
        value = 2.0**e if e < VALUE_BITS else 2.0**VALUE_BITS - 1
        value = float(value >= 1) * value if col in plan.integer_columns else value  # an integer column: 0 or 2^e
        if col in derived:  # every row of every party: the same largest |x|
            derived[col] = replace(derived[col], expr=ir.Literal(int(value) if col in plan.integer_columns else value))
        else:
            frames[0][col] = pd.Series([value] + [None] * (len(frames[0]) - 1), dtype=frames[0][col].dtype)
    stmt = replace(stmt, where=None, derived=tuple(derived.values()))
    return replace(plan, statement=stmt), frames


def empty_frame(schema: Schema) -> pd.DataFrame:
    """A party's table with the schema's columns and no rows."""
    return pd.DataFrame({name: pd.Series([], dtype=_DTYPES[kind]) for name, kind in schema.columns})


def null_frame(schema: Schema, rows: int) -> pd.DataFrame:
    """A party's table with the schema's columns and `rows` rows, every value NULL."""
    return pd.DataFrame({name: pd.Series([pd.NA] * rows, dtype=_DTYPES[kind]) for name, kind in schema.columns})


def stand_in_rows(plan: Plan, parties: int) -> int:
    """Rows per party of a model's stand-in tables: a power of two, at least 64, with every
    level at least 2k times per party and enough complete cases for the parameters."""
    values = max([len(levels) for _, levels in plan.levels] + [1])
    needed = max(64, 2 * plan.min_cell * values, math.ceil(len(plan.terms) / (plan.param_fraction * parties)) + 1)
    return 1 << math.ceil(math.log2(needed))


def _column(plan: Plan, name: str, kind: str, rows: int, rng: np.random.Generator) -> pd.Series:
    stmt = plan.statement
    assert isinstance(stmt, ir.Regression)
    levels = dict(plan.levels).get(name)
    if levels:
        return pd.Series(rng.permutation(np.resize(np.array(levels, dtype=object), rows)), dtype=_DTYPES[kind])
    if kind == "category":
        return pd.Series(["x"] * rows, dtype="string")
    from queries.offset import offset_columns  # formulaic: only for a model

    if kind == "int" and (name in offset_columns(stmt.offset) or name == stmt.weight):
        return pd.Series(rng.integers(1, 3, rows), dtype=_DTYPES[kind])  # positive: an exposure, a weight
    if kind == "int" or (name == stmt.outcome and stmt.kind in ("LOGISTIC", "POISSON", "COX")):
        return pd.Series(rng.integers(0, 2, rows), dtype=_DTYPES[kind])
    return pd.Series(rng.uniform(1.0, 2.0, rows), dtype="Float64")  # positive: np.log and np.sqrt are defined


def stand_ins(
    plan: Plan, schema: Schema, parties: int, seed: int = 0, rows: Sequence[int] | None = None,
    scales: Mapping[str, int] | None = None,
) -> tuple[Plan, list[pd.DataFrame]]:
    """The plan to run for the prediction (a model's WHERE dropped) and one stand-in table per
    party; for a SELECT, `rows` (each party's table rows, if known) sizes all-NULL tables, and
    `scales` gives MEDIAN/QUANTILE columns their opened e (max |x| <= 2^e; `QUANTILE_SCALE` if not given)."""
    if isinstance(plan.statement, ir.Survival):
        from queries.survival_plan import stand_ins as survival_stand_ins

        return survival_stand_ins(plan, schema, parties)
    if not isinstance(plan.statement, ir.Regression):
        if plan.quantiles and plan.privacy is None:
            return _quantile_stand_ins(plan, schema, parties, rows, scales or {})
        if rows is None:
            return plan, [empty_frame(schema)] * parties
        return plan, [null_frame(schema, r) for r in rows]
    size = stand_in_rows(plan, parties)
    rng = np.random.default_rng(seed)
    frames = [
        pd.DataFrame({name: _column(plan, name, kind, size, rng) for name, kind in schema.columns})
        for _ in range(parties)
    ]
    return replace(plan, statement=replace(plan.statement, where=None)), frames
