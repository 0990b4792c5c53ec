"""The compiled plan of a query: what each party computes locally, and what runs in MPC.

A `Plan` is frozen and printable (`EXPLAIN`). Its local part is a list of *measures* —
per-group partial sums each party computes from its own rows in plaintext (counts, sums,
sums of squares and cross products, local extremes, counts below a threshold); its MPC
part is the list of protocol steps run on the secret-shared totals. For aggregates that
decompose (count, sum, mean, variance, correlation, crosstab) the MPC work depends on the
number of groups, never on the number of rows.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field, replace
from functools import singledispatch
from typing import TYPE_CHECKING

from queries import having, ir
from queries.crosstab_rule import rule_text as crosstab_rule_text
from queries.errors import QueryError
from queries.order_keys import key_bits
from queries.table import Schema
from queries.typecheck import check_statement

if TYPE_CHECKING:
    from queries.dp import Privacy

Measure = tuple[str, ...]
"""(op, column[, column2]): rows | n x | s x | mean x | m2 x | pn x y | px x y | py x y | pmx x y | pmy x y
| pm2x x y | pm2y x y | pcxy x y (see `queries.plan_text.measure_text`)."""

SEARCH_BITS = 2
"""Bits of the answer each step of the secret order-statistic search settles (a 4-way search)."""

MAX_DESIGN_COLUMNS = 500
"""Columns a model's design may have (categorical interactions multiply their levels)."""


@dataclass(frozen=True)
class Plan:
    statement: ir.Statement
    group_columns: tuple[str, ...]
    group_keys: tuple[tuple[ir.Value | None, ...], ...]
    """SELECT: every combination of the grouping values, a NULL level (None) last in each column."""
    measures: tuple[Measure, ...]
    extremes: tuple[tuple[str, str], ...]  # (min|max, column)
    quantiles: tuple[tuple[str, float], ...]  # (column, q)
    min_cell: int
    mpc_steps: tuple[str, ...]
    explain: bool = False
    cost: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
    terms: tuple[str, ...] = ()  # regression: the design's column names, in order
    levels: tuple[tuple[str, tuple[ir.Value, ...]], ...] = ()  # regression: agreed levels of categorical columns
    param_fraction: float = 0.33  # regression: at most this many parameters per complete case
    integer_columns: tuple[str, ...] = ()  # read columns of integer kind: their SUM, MIN, MAX are integers
    release_zero: bool = True
    """Whether a count of 0 is released as 0 (every site must allow it); False: 0 is suppressed like 1..k-1."""
    kinds: tuple[tuple[str, str], ...] = ()
    """The agreed kind of every column the parties' local evaluation reads, derived columns included."""
    privacy: Privacy | None = None
    """Differential privacy terms (`queries.dp`); None: the threshold rule applies."""

    @property
    def groups(self) -> int:
        return len(self.group_keys)

    def index(self, measure: Measure) -> int:
        return self.measures.index(measure)

    def disclosure_rule(self) -> str:
        """The threshold rule in words: which counts of contributing rows suppress a released number."""
        if isinstance(self.statement, ir.Crosstab):
            return crosstab_rule_text(self.min_cell, self.release_zero, self.statement.strata is not None)
        if isinstance(self.statement, ir.Survival):
            from queries.survival_plan import rule_text  # the plan's module imports this one

            return rule_text(self.min_cell)
        low = 0 if not self.release_zero else 1
        return f"a number with {low}..{self.min_cell - 1} contributing rows is suppressed"

    def hash(self) -> str:
        return hashlib.sha256(self.text(with_cost=False).encode()).hexdigest()[:16]

    def text(self, with_cost: bool = True) -> str:
        """The EXPLAIN rendering: local steps, MPC steps and the predicted cost (`queries.plan_text`)."""
        from queries.plan_text import render  # the renderer reads this module's Plan

        return render(self, with_cost)

def outcome_levels(plan: Plan) -> tuple[ir.Value, ...] | None:
    """A LOGISTIC model's categorical outcome levels (coded 0, 1 in this order), or None."""
    stmt = plan.statement
    if isinstance(stmt, ir.Regression) and stmt.kind == "LOGISTIC":
        return dict(plan.levels).get(stmt.outcome)
    return None


def outcome_coding(plan: Plan) -> str | None:
    """How a LOGISTIC outcome is read: "1 = 'yes', 0 = 'no'" for a categorical one, "0/1" otherwise."""
    stmt = plan.statement
    if not isinstance(stmt, ir.Regression) or stmt.kind != "LOGISTIC":
        return None
    levels = outcome_levels(plan)
    if levels is None:
        return "0/1 (the outcome's values)"
    if len(levels) != 2:
        return f"none: {stmt.outcome!r} has {len(levels)} levels, LOGISTIC needs two"
    return f"1 = {levels[1]!r}, 0 = {levels[0]!r} (its levels in sorted order)"


def group_keys(
    columns: tuple[str, ...], domains: dict[str, tuple[ir.Value, ...]], null_group: bool = False
) -> tuple[tuple[ir.Value | None, ...], ...]:
    """Every combination of the columns' values, in domain order; with `null_group`, each column
    also has a last level None for rows whose value is NULL (as pandas' groupby(dropna=False))."""
    for c in columns:
        if c not in domains:
            raise QueryError(f"no domain is known for the grouping column {c!r}", name=c)
    levels = [domains[c] + ((None,) if null_group else ()) for c in columns]
    return tuple(itertools.product(*levels)) if columns else ((),)


def _check(stmt: ir.Statement, schema: Schema) -> tuple[Schema, tuple[tuple[str, str], ...]]:
    """The schema with the statement's derived columns added, and the kinds of every column the
    parties' local evaluation reads (`queries.typecheck.check_statement` checks the statement)."""
    derived = check_statement(stmt, schema)
    extended = Schema(schema.columns + tuple(derived.items()), schema.missing)
    read = sorted(ir.statement_columns(stmt))
    return extended, tuple((c, schema.kind(c)) for c in read) + tuple(derived.items())


@singledispatch
def compile_statement(stmt: object, schema: Schema, domains: dict[str, tuple[ir.Value, ...]], min_cell: int) -> Plan:
    raise QueryError(f"cannot plan a {type(stmt).__name__}")


@compile_statement.register
def _(stmt: ir.Explain, schema: Schema, domains: dict[str, tuple[ir.Value, ...]], min_cell: int) -> Plan:
    return replace(compile_statement(stmt.inner, schema, domains, min_cell), explain=True)


@compile_statement.register
def _(stmt: ir.Select, schema: Schema, domains: dict[str, tuple[ir.Value, ...]], min_cell: int) -> Plan:
    schema, kinds = _check(stmt, schema)
    measures: list[Measure] = [("rows",)]
    extremes: list[tuple[str, str]] = []
    quantiles: list[tuple[str, float]] = []
    steps = [
        "secure sum of every party's partial vector (one round)",
        f"suppression: each value with fewer than {min_cell} contributing rows (its own non-null count; "
        f"QUANTILE(x, q): min(q, 1 - q) x count), per group (one batched comparison and one zero test)",
    ]

    def need(*ms: Measure) -> None:
        for m in ms:
            if m not in measures:
                measures.append(m)

    for agg in stmt.aggregates:
        for col in agg.columns:
            if schema.kind(col) == "category" and agg.func != "COUNT":
                raise QueryError(f"{agg.func} needs a numeric column; {col!r} is categorical", name=col)
        x = agg.column
        if agg.func == "COUNT":
            if x is not None:
                need(("n", x))
            continue
        assert x is not None  # every aggregate but COUNT(*) reads a column
        if agg.func == "SUM":
            need(("n", x), ("s", x))
        elif agg.func == "AVG":
            need(("n", x), ("s", x))
            steps.append(
                f"{agg.name}: secure division sum / count; released as mantissa and exponent (leading one found on "
                "shares, nothing opened)"
            )
        elif agg.func in ("VAR", "STDDEV"):
            need(("n", x), ("s", x), ("mean", x), ("m2", x))
            steps.append(
                f"{agg.name}: secure division sum / count, centred sum of squares by the parallel-axis rule "
                "(sum of local ones + local count * (local mean - mean)^2), secure division by (count - 1)"
                + (", secure square root" if agg.func == "STDDEV" else "")
                + "; released as mantissa and exponent (leading one found on shares, nothing opened)"
            )
        elif agg.func == "CORR":
            y = agg.column2
            assert y is not None
            need(*[(op, x, y) for op in ("pn", "px", "py", "pmx", "pmy", "pm2x", "pm2y", "pcxy")])
            steps.append(
                f"{agg.name}: secure divisions, parallel-axis (co)variances, inverse square roots and products"
            )
        elif agg.func in ("MIN", "MAX"):
            need(("n", x))
            extremes.append((agg.func.lower(), x))
            steps.append(f"{agg.name}: secure {agg.func.lower()} of the parties' local extremes")
        elif agg.func == "QUANTILE":
            assert agg.q is not None
            need(("n", x))
            quantiles.append((x, agg.q))
            if schema.kind(x) == "int":
                count = (f"ceil((e + 2) / {SEARCH_BITS}) steps of {SEARCH_BITS} bits, at most "
                         f"{-(-key_bits(True) // SEARCH_BITS)} (2^e: the opened power of two at or above the largest "
                         f"|{x}|, e taken in [0, 45]; ")
            else:
                count = (f"ceil((e + 42) / {SEARCH_BITS}) steps of {SEARCH_BITS} bits for e <= 18, else "
                         f"{-(-key_bits(False) // SEARCH_BITS)} (2^e: the opened power of two at or above the largest "
                         f"|{x}|, e taken at least -40; ")
            steps.append(
                f"{agg.name}: ranks floor((count - 1) q) + 1 and + 2 (one bit decomposition); for each, a secret "
                f"{1 << SEARCH_BITS}-way search over every party's order keys, {count}"
                f"per step: pooled counts below {(1 << SEARCH_BITS) - 1} shared thresholds by "
                "daBits, one batched comparison, the per-slot state updated with AND gates; only masked values are "
                "opened); the two keys decoded to fixed point and interpolated in MPC"
            )
    read = ir.statement_columns(stmt) | ir.derived_names(stmt)
    integers = tuple(sorted(c for c in read if schema.kind(c) == "int"))
    steps += [having.describe(stmt, set(integers))] if stmt.having is not None else []
    steps.append("release: suppressed and NULL values are multiplied by zero in MPC; shares go to the analyst")
    keys = group_keys(stmt.group_by, domains, null_group=True)
    return Plan(
        stmt, stmt.group_by, keys, tuple(measures), tuple(extremes), tuple(quantiles), min_cell, tuple(steps),
        integer_columns=integers, kinds=kinds,
    )


@compile_statement.register
def _(stmt: ir.Regression, schema: Schema, domains: dict[str, tuple[ir.Value, ...]], min_cell: int) -> Plan:
    from queries.design import build, categorical_columns  # formulaic: only when a model is planned
    from queries.formula import analyse
    from queries.offset import offset_columns
    from queries.weights import logistic_weight_steps, poisson_weight_steps, weighted_steps

    _, read = _check(stmt, schema)
    kinds = schema.kind
    if stmt.kind in ("LINEAR", "POISSON") and kinds(stmt.outcome) == "category":
        raise QueryError(f"the outcome {stmt.outcome!r} of {stmt.kind} must be numeric", name=stmt.outcome)
    if stmt.weight and kinds(stmt.weight) == "category":
        raise QueryError(f"the weight {stmt.weight!r} must be a numeric column", name=stmt.weight)
    for col in offset_columns(stmt.offset):
        if kinds(col) == "category":
            raise QueryError(f"offset() needs numeric columns; {col!r} is categorical", name=col)
    facts = analyse(stmt.formula)
    for col in facts.in_c:
        if kinds(col) == "float":
            raise QueryError(f"C({col}) needs a categorical or integer column; {col!r} holds decimals", name=col)
        if kinds(col) == "int" and col in facts.outside_c:
            raise QueryError(f"{col!r} is used both as a number and inside C(); use one", name=col)
    wanted = categorical_columns(stmt, kinds)
    for col in wanted:
        if col not in domains:
            raise QueryError(f"no domain is known for {col!r}", name=col)
        if not domains[col]:
            raise QueryError(f"{col!r} has no values at any party", name=col)
    for col, level in facts.references:
        if _plain(level) not in domains[col]:
            raise QueryError(f"the reference level named in Treatment() is not a level of {col!r}", name=col)
    levels = tuple((c, tuple(domains[c])) for c in wanted)
    names = build(stmt, dict(levels)).names
    p = len(names)
    if p > MAX_DESIGN_COLUMNS:
        raise QueryError(f"the model's design has {p} columns; at most {MAX_DESIGN_COLUMNS} are supported")
    if stmt.kind == "COX":
        from queries.cox_plan import cox_steps  # the COX statement's column checks and EXPLAIN steps

        steps = cox_steps(stmt, kinds, min_cell, len(names), any(c != stmt.outcome for c, _ in levels))
        return Plan(stmt, (), ((),), (), (), (), min_cell, tuple(steps),
                    terms=tuple(n for n in names if n != "Intercept"), levels=levels, kinds=read)
    binary, counts = stmt.kind == "LOGISTIC", stmt.kind == "POISSON"
    steps = [
        "complete cases: rows with NULL in the outcome or any column the formula reads are dropped (local); "
        "design matrix by formulaic, with the agreed levels"
        + (f"; the offset {stmt.offset} per row" if stmt.offset else ""),
    ]
    if any(c != stmt.outcome for c, _ in levels):
        steps.append(f"levels in MPC: complete cases per level of each categorical column; a level with none is "
                     f"dropped (as statsmodels does; only if zeros are released), one with 1..{min_cell - 1} refuses "
                     "the model (one batched comparison; only those bits are opened)")
    steps.append(
        f"refusal checks in MPC: complete cases >= {min_cell}, parameters ({p}) <= fraction x complete cases, "
        f"every category indicator column (level or cell) >= {min_cell} rows"
        + (", every outcome 0 or 1" if binary else "")
        + (", every outcome a whole number >= 0, an event in every category indicator column" if counts else "")
        + (", the offset defined at every complete case" if stmt.offset else "")
        + " (one batched comparison; only the yes/no bits are opened)"
    )
    steps.append("public column scales: the power of two above each design column's pooled maximum |x| "
                 + ("(opened)" if binary else "and the outcome's (opened); columns are divided by them"))
    if stmt.kind == "LINEAR" and stmt.weight:
        steps += weighted_steps(stmt)
    elif stmt.kind == "LINEAR":
        steps += ["local: X'X, X'y, y'y per party; secure sum (one round)",
                  "Jacobi scaling by secure reciprocals; (X'X)^-1 by Newton-Schulz; coefficients, RSS and TSS",
                  "release to the analyst: coefficients, diag (X'X)^-1, RSS, TSS, n (unscaled by the public powers of "
                  "two)"]
    elif binary:
        steps += logistic_weight_steps(stmt) if stmt.weight else []
        steps += ["each party publishes its rows masked once (padded to a power of two); outcomes secret-shared",
                  f"Newton-Raphson (IRLS), at most {stmt.maxiter} iterations: per-row sigmoid in Z_2^64, gradient and "
                  "Hessian by owned-matrix products, lift to Z_2^128, Newton-Schulz inverse; one convergence bit "
                  "opened per iteration",
                  "release to the analyst: coefficients, diag of the inverse information, log-likelihood"]
    else:
        steps += poisson_weight_steps(stmt) if stmt.weight else []
        steps += ["each party publishes its rows masked once (padded to a power of two); local sums X'y and the "
                  "weighted least squares of statsmodels' IRLS start added in shares and solved (one bit opened: "
                  "collinear covariates)",
                  f"Newton-Raphson, a fixed {stmt.maxiter} iterations (no bit opened between them): per-row exp in "
                  "Z_2^64 capped at the fixed-point range, score and information by owned-matrix products, lift to "
                  "Z_2^128, Newton-Schulz inverse",
                  "a last Newton step in Z_2^128 (per-row exp at 40 fractional bits); opened: a fitted count at the "
                  "range's cap (refused), a Pearson term beyond range (Pearson withheld), converged, singular",
                  "release to the analyst: coefficients, diag of the inverse information, log-likelihood, Pearson chi2"]
    return Plan(stmt, (), ((),), (), (), (), min_cell, tuple(steps), terms=tuple(names), levels=levels, kinds=read)


def _plain(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value
