"""A model's offset: `offset(np.log(person_years))` in a POISSON formula, cut out and evaluated here.

statsmodels takes an offset as an argument of `glm(...)`, R as a term `offset(log(x))` of the
formula; Pooled reads R's spelling in the formula, since a query is one line of text. formulaic
knows no offset(), so `split_offset` cuts the term out of the right-hand side before formulaic
sees it: the rest is the design (`queries.design`), the offset's code is kept apart and
evaluated on each party's rows by `offset_values` (the same whitelist as I(): columns, numbers,
+ - * / **, and numpy's elementwise functions, written np.log(x) or, as R writes it, log(x)).

The offset must be a term of its own, added with '+', once per formula. Its value at a row is
the log of that row's exposure (person-time, population at risk); the fitted rate is then
per unit of exposure, and exp(coef) a rate ratio.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic.parser.types import ASTNode, Token

from queries.formula import FormulaError, arith_columns, numpy_function, parse_tree
from queries.table import numeric

OFFSET_BOUND = 512.0
"""An offset's largest magnitude (the log of an exposure is far below: log(1e200) = 461); larger
values are refused rather than let past float64's exp (e^709) in the start of the fit or the
fixed-point range of the linear predictor."""


@dataclass(frozen=True)
class OffsetSplit:
    """A right-hand side without its offset term."""

    design: str  # the formula without the offset term (what formulaic reads)
    spaced: str  # the same, the offset term blanked out: positions as in the text written
    code: str | None  # the code inside offset(...), as written
    columns: tuple[str, ...]  # the columns the offset reads
    at: int  # 0-based position of the offset term in the formula (-1 without one)


def split_offset(rhs: str) -> OffsetSplit:
    """Cut `offset(...)` out of a right-hand side; FormulaError (with its offset) if misplaced."""
    if "offset" not in rhs:
        return OffsetSplit(rhs, rhs, None, (), -1)
    tree = parse_tree(rhs)
    found = list(_offsets(tree, True))
    if not found:
        return OffsetSplit(rhs, rhs, None, (), -1)
    for token, top in found:
        if not top:
            raise FormulaError("offset() must be a term of its own, added with '+'", _start(token))
    if len(found) > 1:
        raise FormulaError("a model takes one offset()", _start(found[1][0]))
    token = found[0][0]
    start, end = _start(token), int(token.source_end if token.source_end is not None else len(rhs) - 1) + 1
    code, columns = _check(rhs[start:end], start)
    left = rhs[:start].rstrip()
    if left.endswith("+"):
        cut = (len(left) - 1, end)
    else:
        right = rhs[end:]
        after = end + len(right) - len(right.lstrip())
        if not rhs.startswith("+", after):
            raise FormulaError("offset() must be added to the covariates with '+'", start)
        cut = (start, after + 1)
    spaced = rhs[: cut[0]] + " " * (cut[1] - cut[0]) + rhs[cut[1] :]
    design = (rhs[: cut[0]].rstrip() + " " + rhs[cut[1] :].lstrip()).strip()
    return OffsetSplit(design, spaced, code, tuple(dict.fromkeys(columns)), start)


def _offsets(node: ASTNode | Token, top: bool) -> Iterable[tuple[Token, bool]]:
    """Every offset(...) token, with whether it is a term of the top-level sum."""
    if isinstance(node, Token):
        if node.kind is Token.Kind.PYTHON and node.token.replace(" ", "").startswith("offset("):
            yield node, top
        return
    symbol = node.operator.symbol
    for i, arg in enumerate(node.args):
        yield from _offsets(arg, top and (symbol == "+" or (symbol == "-" and i == 0 and len(node.args) == 2)))


def _start(token: Token) -> int:
    return int(token.source_start) if token.source_start is not None else 0


def _check(text: str, at: int) -> tuple[str, list[str]]:
    """The code inside offset(...) and the columns it reads, checked as arithmetic."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise FormulaError("offset() is not valid Python", at) from None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1
            and not node.keywords):
        raise FormulaError("offset() takes one expression, e.g. offset(np.log(person_years))", at)
    inner = node.args[0]
    columns = arith_columns(inner, at, bare_calls=True)
    if not columns:
        raise FormulaError("offset() must read a column", at)
    segment = ast.get_source_segment(text, inner)
    return (segment if segment is not None else ast.unparse(inner)).strip(), columns


def offset_columns(code: str | None) -> tuple[str, ...]:
    """The columns an offset's code (as `OffsetSplit.code` holds it) reads."""
    if code is None:
        return ()
    return tuple(dict.fromkeys(arith_columns(ast.parse(code, mode="eval").body, 0, bare_calls=True)))


def log_argument(code: str) -> str | None:
    """The code x of an offset written log(x) or np.log(x), else None (for the refusal's wording)."""
    node = ast.parse(code, mode="eval").body
    if isinstance(node, ast.Call) and numpy_function(node, bare=True) == "log":
        return ast.get_source_segment(code, node.args[0]) or ast.unparse(node.args[0])
    return None


def offset_values(code: str, rows: pd.DataFrame) -> np.ndarray:
    """The offset at each of `rows` (float64; NaN or infinite where it is not defined, e.g. the log
    of 0 or of a negative number)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = _evaluate(ast.parse(code, mode="eval").body, rows)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (len(rows),)).copy()


def defined(values: np.ndarray) -> np.ndarray:
    """Rows whose offset the fit can use: finite and below OFFSET_BOUND in magnitude."""
    return np.isfinite(values) & (np.abs(np.nan_to_num(values)) < OFFSET_BOUND)


_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}


def _evaluate(node: ast.expr, rows: pd.DataFrame) -> np.ndarray | float:
    """`node` (checked by `_check`) on the rows' columns."""
    if isinstance(node, ast.Name):
        return numeric(rows, node.id)
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, (int, float))
        return float(node.value)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, rows)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, rows), _evaluate(node.right, rows))
    assert isinstance(node, ast.Call)
    name = numpy_function(node, bare=True)
    assert name is not None
    return getattr(np, name)(_evaluate(node.args[0], rows))
