"""The plan of a COX statement: its columns' checks against the schema and EXPLAIN's steps.

Called by the models' `compile_statement` (`queries.plan`) for kind COX; the MPC part is
`queries.cox` and `protocols.cox`.
"""

from __future__ import annotations

from collections.abc import Callable

from queries import ir
from queries.errors import QueryError


def cox_steps(stmt: ir.Regression, kinds: Callable[[str], str], min_cell: int, p: int, levels: bool) -> list[str]:
    """EXPLAIN's steps of a COX fit; QueryError when the time or the event column is categorical."""
    assert stmt.time is not None
    for col, what in ((stmt.time, "time"), (stmt.outcome, "event")):
        if kinds(col) == "category":
            raise QueryError(f"the {what} column of COX must be numeric; {col!r} is categorical", name=col)
    width = f"{stmt.every:g}"
    steps = [f"complete cases: rows with NULL in {stmt.time}, {stmt.outcome} or any column the formula reads are "
             f"dropped (local); design matrix by formulaic, with the agreed levels, without its intercept; a time t "
             f"counts at the grid point ceil(t / {width})"]
    if levels:
        steps.append(f"levels in MPC: complete cases per level of each categorical column; a level with none is "
                     f"dropped (only if zeros are released), one with 1..{min_cell - 1} refuses the model (one "
                     "batched comparison; only those bits are opened)")
    steps += [
        f"refusal checks in MPC: complete cases >= {min_cell}, parameters ({p}) <= fraction x complete cases, every "
        f"category indicator column >= {min_cell} rows; pooled counts of negative times, of events not 0/1, of rows "
        f"beyond each grid size 2^4 .. 2^12, and events (< {min_cell}?): batched comparisons; only the yes/no bits "
        "are opened (the grid size G: the least power of two holding every time); padded rows x G capped",
        "public column scales: the power of two above each design column's pooled maximum |x| (opened)",
        "each party publishes its covariates, their pairwise products and its rows x G at-risk matrix masked once "
        "(padded to a power of two); the covariates secret-shared; events and numbers at risk per grid point added "
        "in shares",
        f"Newton-Raphson on Breslow's partial likelihood, a fixed {stmt.maxiter} iterations (no bit opened between "
        "them): per-row exp of the centred x'beta capped at the fixed-point range, e x and the cumulative hazard "
        "in Z_2^64; "
        "risk-set sums S0, S1 per grid point by owned at-risk-matrix products in Z_2^64, lifted to Z_2^128; one "
        "division by S0 per point (the divisor prepared once for all numerators); score; information from "
        "Breslow's cumulative hazard per row (owned products); Newton-Schulz inverse",
        "opened: a relative hazard at the range's cap (refused), converged, singular",
        "release to the analyst: coefficients, diag of the inverse information, events and complete cases "
        "(unscaled by the public powers of two); hazard ratios and CIs computed by the analyst",
    ]
    return steps
