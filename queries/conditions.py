"""Evaluating a WHERE condition on a party's own rows (local, plaintext), by DuckDB.

SQL three-valued logic: a comparison with NULL is unknown, and a row is kept only when the
condition is true. So `NOT (x > 5)` does not keep rows where x is NULL, as in SQL. The
condition is any row expression of the query language (`queries.expr`); `queries.evaluate`
runs it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from queries.evaluate import select_rows
from queries.expr import Expr


def keep_rows(frame: pd.DataFrame, cond: Expr | None, kinds: Mapping[str, str] | None = None) -> np.ndarray:
    """Boolean mask of the rows where `cond` is true (all rows when there is no condition).

    `kinds`: the agreed kind of each column (default: the kinds this frame holds)."""
    mask = np.zeros(len(frame), dtype=bool) if cond is not None else np.ones(len(frame), dtype=bool)
    if cond is not None:
        rows, _ = select_rows(frame, cond, (), kinds)
        mask[rows] = True
    return mask
