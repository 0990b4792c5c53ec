"""A model's design matrix: built by formulaic from the formula and the agreed levels.

Every party builds the same design: the terms in statsmodels' order and with its names
(`queries.formula`), and each categorical column with the levels all parties agreed on
(the private union of domains, `queries.domains`), so the columns and their order do not
depend on which levels a party happens to hold. `build` makes the design from the formula
alone (on a one-row stand-in table: no data is read); `local_matrix` evaluates it on a
party's own complete cases.

Treatment coding follows patsy: with an intercept a categorical term drops its first level
(or the one named by Treatment(level)); without one, the first categorical term keeps every
level (full dummy coding).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import formulaic
import numpy as np
import pandas as pd
from formulaic.errors import FormulaicError
from formulaic.parser.types import Factor, Term

from queries import ir
from queries.conditions import keep_rows
from queries.errors import QueryError
from queries.formula import analyse, parse_tree, spaced, term_order
from queries.offset import offset_columns
from queries.table import numeric

CONTEXT: dict[str, Any] = {"np": np}
"""The only names a factor's code sees besides the columns and formulaic's C, I, Treatment
(`queries.formula` has already checked that it calls nothing else)."""


@dataclass(frozen=True, eq=False)
class Design:
    """The terms of a model and how to evaluate them."""

    names: tuple[str, ...]  # design columns, as statsmodels names them
    indicators: tuple[bool, ...]  # column is a product of category indicators (0/1 by construction)
    levels: Mapping[str, tuple[ir.Value, ...]]  # categorical columns and their levels, in order
    columns: tuple[str, ...]  # columns the right-hand side reads (the offset's too)
    spec: Any = field(repr=False)  # formulaic's ModelSpec
    constant: bool = True  # the columns span a constant: an intercept, or a fully coded categorical term
    offset: str | None = None  # POISSON: the offset's code (`queries.offset`)


def categorical_columns(stmt: ir.Regression, kinds: Callable[[str], str]) -> tuple[str, ...]:
    """Columns whose levels the model needs (agreed by the private union of domains): those
    inside C(), the categorical columns the formula reads (patsy codes them as if in C()),
    and a LOGISTIC model's categorical outcome."""
    wanted = [c for c in stmt.columns if c in stmt.categorical or kinds(c) == "category"]
    if stmt.kind == "LOGISTIC" and kinds(stmt.outcome) == "category":
        wanted.append(stmt.outcome)
    return tuple(dict.fromkeys(wanted))


def is_categorical_factor(code: str, levels: Mapping[str, tuple[ir.Value, ...]]) -> bool:
    """A factor is categorical when it is C(...) or a bare column with levels."""
    if code in levels:
        return True
    try:
        node = ast.parse(code, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "C"


def build(stmt: ir.Regression, levels: Mapping[str, tuple[ir.Value, ...]]) -> Design:
    """The design of `stmt` with the given levels of its categorical columns; QueryError if
    formulaic cannot evaluate it (e.g. arithmetic on a categorical column)."""
    facts = analyse(stmt.formula)
    tree = parse_tree(stmt.formula)
    parsed = list(formulaic.Formula(stmt.formula, _ordering="none"))
    intercept = [t for t in parsed if t.degree == 0]
    rest = [t for t in parsed if t.degree > 0]
    keys = [frozenset(f.expr for f in t.factors) for t in rest]
    order = term_order(tree, keys, lambda code: is_categorical_factor(code, levels))
    terms = intercept + [_patsy_named(rest[i], stmt.formula) for i in order]
    stand_in = pd.DataFrame({c: _stand_in(c, levels) for c in facts.columns})
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            matrix = formulaic.model_matrix(formulaic.Formula(terms, _ordering="none"), stand_in,
                                            context=CONTEXT, na_action="ignore")
    except (FormulaicError, TypeError, ValueError) as exc:
        raise QueryError(f"cannot build the model's design: {_first_line(exc)}") from None
    spec = matrix.model_spec
    indicator: list[bool] = []
    constant = False
    for item in spec.structure:
        pure = item.term.degree > 0 and all(is_categorical_factor(f.expr, levels) for f in item.term.factors)
        indicator += [pure] * len(item.columns)
        constant |= item.term.degree == 0 or (pure and not any("[T." in c for c in item.columns))
    used = {c: tuple(levels[c]) for c in facts.columns if c in levels}
    columns = tuple(dict.fromkeys(facts.columns + offset_columns(stmt.offset)))
    return Design(tuple(spec.column_names), tuple(indicator), used, columns, spec, constant, stmt.offset)


def _patsy_named(term: Term, formula: str) -> Term:
    """`term` with each Python factor's code spaced as patsy prints it (from the text as written)."""
    factors = []
    for f in term.factors:
        token = f.token
        if f.eval_method is Factor.EvalMethod.PYTHON and token is not None and token.source_start is not None:
            code = spaced(formula[token.source_start : token.source_end + 1])
            if code.startswith("{") or not code:
                code = f.expr
            factors.append(Factor(code, eval_method=f.eval_method, kind=f.kind, token=token))
        else:
            factors.append(f)
    return Term(factors)


def _stand_in(column: str, levels: Mapping[str, tuple[ir.Value, ...]]) -> pd.Series:
    if column in levels:
        values = list(levels[column])
        return pd.Series(pd.Categorical(values[:1], categories=values))
    return pd.Series([1.0])


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0][:200]


def complete_cases(
    stmt: ir.Regression, frame: pd.DataFrame, columns: tuple[str, ...], kinds: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The rows that pass WHERE (its columns read as the agreed `kinds`) and have a value in the
    outcome and every column the formula reads."""
    return complete(stmt, frame[keep_rows(frame, stmt.where, kinds)], columns)


def complete(stmt: ir.Regression, kept: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Of the rows the WHERE kept, those with a value in the outcome and every column the formula reads."""
    cols = list(dict.fromkeys([stmt.outcome, *columns]))
    return kept[kept[cols].notna().all(axis=1)]


def local_matrix(design: Design, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This party's design matrix on its complete cases `rows` (float64), which rows it kept (a
    row whose transformed value is NaN, e.g. np.log of a negative number, is dropped, as
    statsmodels does), and the kept rows per level of each categorical column (`design.levels` order)."""
    data = {}
    codes = []
    for c in design.columns:
        if c in design.levels:
            values = [_plain(v) for v in rows[c].to_numpy(dtype=object)]
            data[c] = pd.Categorical(values, categories=list(design.levels[c]))
            codes.append(np.asarray(data[c].codes))
        else:
            data[c] = numeric(rows, c)
    if not len(rows):
        return np.zeros((0, len(design.names))), np.zeros(0, dtype=bool), np.zeros(len(_flat_levels(design)))
    table = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        matrix = design.spec.get_model_matrix(table, context=CONTEXT, na_action="ignore")
    x = np.asarray(matrix, dtype=np.float64).reshape(len(rows), len(design.names))
    keep = np.asarray(~np.isnan(x).any(axis=1), dtype=bool)
    counts = [np.bincount(code[keep & (code >= 0)], minlength=len(design.levels[c]))
              for c, code in zip(design.levels, codes)]
    per_level: np.ndarray = np.concatenate(counts).astype(np.float64) if counts else np.zeros(0)
    return x[keep], keep, per_level


def _flat_levels(design: Design) -> list[tuple[str, ir.Value]]:
    return [(c, v) for c, levels in design.levels.items() for v in levels]


def _plain(v: Any) -> Any:
    """A cell as the Python value its level is (pandas scalars to int or str)."""
    item = v.item() if isinstance(v, np.generic) else v
    if isinstance(item, float) and item.is_integer():
        return int(item)
    return item
