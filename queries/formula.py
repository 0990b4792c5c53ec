"""Model formulas: the right-hand side of LINEAR and LOGISTIC, parsed by formulaic and checked.

The query parser cuts the formula out of the query text (`formula_end`) and hands it to
formulaic's parser; nothing here re-implements formula grammar. What this module adds:

* A whitelist. Formulaic evaluates each factor as Python code, and a formula comes from an
  analyst and is evaluated at every node, so every factor must be a column, or a call of
  C(column[, Treatment(level)]), I(arithmetic) or np.<function>(arithmetic) over columns and
  numbers (`_check_factor`); the operators are + - * : / and ** with a whole-number power, and
  the only lone numbers are the intercept's 1 and 0. Anything else is a parse error with the
  position of the offending factor.
* The facts a plan needs before any data is read (`FormulaFacts`): every column the formula
  reads (the site policy checks them), the columns inside C() (their levels are agreed by the
  private union of domains) and the reference levels named by Treatment().
* statsmodels' (patsy's) conventions where formulaic's differ: the order of the terms
  (`term_order`) and the spacing of a factor's code in its name (`spaced`).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from formulaic.errors import FormulaicError
from formulaic.parser import DefaultFormulaParser
from formulaic.parser.types import ASTNode, Token

from queries.weights import clause_at

NUMPY_FUNCTIONS = frozenset({"log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs", "square"})
"""np.<name> a formula may call (elementwise, stateless)."""

OPERATORS = frozenset({"+", "-", "*", ":", "/", "**"})
MAX_POWER = 16
MAX_TERMS = 256
"""A formula expanding to more terms is refused before formulaic expands it (a**-expansion of
many columns would otherwise exhaust a node's memory)."""

_STOP = re.compile(r"(?i)(?<![A-Za-z0-9_.])(FROM|WHERE|MAXITER|TOL|EVERY)(?![A-Za-z0-9_])")
_OPERAND_AFTER = frozenset("+-*:/^(,")
"""After one of these (spaces aside) a keyword is an operand, a column's name; after a term, a clause; first
after '~', an operand only when an operator follows it (`y ~ every + age`, but `y ~ WHERE ...` lacks a formula)."""
_OPERATOR_NEXT = re.compile(r"\s*[-+*:/^)]")
_MARKER = "\u29db"  # formulaic's highlight of the span at fault in a syntax error


class FormulaError(ValueError):
    """A formula formulaic cannot parse or that uses something not allowed; `offset` is 0-based in the formula."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class FormulaFacts:
    columns: tuple[str, ...]  # every column read, in order of first mention
    in_c: tuple[str, ...]  # columns inside C(...)
    outside_c: tuple[str, ...]  # columns read elsewhere (bare, in I() or np.f())
    references: tuple[tuple[str, object], ...]  # (column, level) of each C(column, Treatment(level))


def formula_end(text: str, start: int) -> int:
    """Index in `text` where the formula beginning at `start` ends: at the first FROM, WHERE, MAXITER,
    TOL or EVERY, or WEIGHT clause (`queries.weights.clause_at`), outside quotes and brackets, or at the end of
    the text. A keyword that follows an operator is a column's name (`y ~ every + age`): a clause can only
    follow a term."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth <= 0 and (word := _STOP.match(text, i)) and not (text[i - 1].isalnum() or text[i - 1] == "_") \
                and not _operand(text[:i].rstrip()[-1:], text, word.end()):
            return i
        elif depth <= 0 and clause_at(text, i):  # WEIGHT w [ROBUST]; a column named weight stays in the formula
            return i
        i += 1
    return len(text)


def _operand(before: str, text: str, after: int) -> bool:
    """Whether a keyword preceded by the character `before` and ending at `after` is a column (`_OPERAND_AFTER`)."""
    return _OPERATOR_NEXT.match(text, after) is not None if before == "~" else before in _OPERAND_AFTER


def parse_tree(rhs: str) -> ASTNode | Token:
    """formulaic's syntax tree of a right-hand side; FormulaError with the offset of a syntax error."""
    try:
        return DefaultFormulaParser().get_ast(rhs)
    except FormulaicError as exc:
        text = str(exc)
        message = text.split("\n", 1)[0].strip().rstrip(".") or "the formula cannot be parsed"
        shown = text.rsplit("\n", 1)[-1]
        offset = shown.index(_MARKER) if _MARKER in shown else 0
        raise FormulaError(f"bad formula: {message}", offset) from None
    except SyntaxError as exc:  # formulaic reads some tokens as Python and lets its SyntaxError through
        raise FormulaError(f"bad formula: {exc.msg}", max(0, (exc.offset or 1) - 1)) from None


def analyse(rhs: str) -> FormulaFacts:
    """Check a formula's right-hand side and collect the columns it reads."""
    if not rhs.strip():
        raise FormulaError("a model needs at least one covariate after '~'", 0)
    tree = parse_tree(rhs)
    columns: list[str] = []
    in_c: list[str] = []
    outside: list[str] = []
    references: list[tuple[str, object]] = []
    terms = 0
    for token, position in _tokens(tree, rhs):
        offset = token.source_start if token.source_start is not None else 0
        if token.kind is Token.Kind.VALUE:
            if position != "power" and token.token not in ("0", "1"):
                raise FormulaError("a number alone is not a term (only 1 or 0, for the intercept)", offset)
            continue
        terms += 1
        if token.kind is Token.Kind.NAME:
            columns.append(token.token)
            outside.append(token.token)
        elif token.kind is Token.Kind.PYTHON:
            _check_factor(token.token, offset, columns, in_c, outside, references)
        else:
            raise FormulaError(f"'{token.token}' is not allowed in a model formula", offset)
    if not terms:
        raise FormulaError("a model needs at least one covariate after '~'", 0)
    patsy_terms(tree)  # refuses an expansion beyond MAX_TERMS
    return FormulaFacts(_unique(columns), _unique(in_c), _unique(outside), tuple(dict.fromkeys(references)))


def _tokens(node: ASTNode | Token, rhs: str, position: str = "term") -> Iterable[tuple[Token, str]]:
    """Every token of the tree with its role ("term" or "power"), after checking each operator."""
    if isinstance(node, Token):
        yield node, position
        return
    symbol = node.operator.symbol
    if symbol not in OPERATORS:
        raise FormulaError(f"the operator '{symbol}' is not supported in a model formula",
                           max(_first_offset(node), 0))
    if symbol == "**":
        left, right = node.args
        if not (isinstance(right, Token) and right.kind is Token.Kind.VALUE and right.token.isdigit()
                and 1 <= int(right.token) <= MAX_POWER):
            raise FormulaError(f"'**' needs a whole number from 1 to {MAX_POWER}", max(_first_offset(right), 0))
        yield from _tokens(left, rhs)
        yield right, "power"
        return
    for arg in node.args:
        yield from _tokens(arg, rhs)


def _first_offset(node: ASTNode | Token) -> int:
    """Where the text a node covers starts (its first token that comes from the text)."""
    if isinstance(node, Token):
        return node.source_start if node.source_start is not None else -1
    offsets = [o for o in (_first_offset(a) for a in node.args) if o >= 0]
    return min(offsets) if offsets else -1


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# -- the whitelist of a factor's code ---------------------------------------------------------------------
def _check_factor(code: str, offset: int, columns: list[str], in_c: list[str], outside: list[str],
                  references: list[tuple[str, object]]) -> None:
    """A factor must be C(column[, Treatment(level)]), I(arithmetic) or np.f(arithmetic)."""
    try:
        node = ast.parse(code, mode="eval").body
    except SyntaxError:
        raise FormulaError("a factor is not valid Python", offset) from None
    if not isinstance(node, ast.Call):
        raise FormulaError("write arithmetic on columns inside I(...)", offset)
    name = _callee(node)
    if name == "C":
        if not node.args or not isinstance(node.args[0], ast.Name) or len(node.args) > 2 or node.keywords:
            raise FormulaError("C() takes a column and optionally Treatment(level): C(column, Treatment('level'))",
                               offset)
        column = node.args[0].id
        columns.append(column)
        in_c.append(column)
        if len(node.args) == 2:
            level = _treatment(node.args[1], offset)
            if level is not None:
                references.append((column, level))
        return
    if name == "I" and len(node.args) == 1 and not node.keywords:
        _arith(node.args[0], offset, columns, outside)
        return
    if name.startswith("np.") and name[3:] in NUMPY_FUNCTIONS:
        _arith(node, offset, columns, outside)
        return
    raise FormulaError(
        f"'{name}' is not allowed; a factor may call C(), I() or np.{{{', '.join(sorted(NUMPY_FUNCTIONS))}}}",
        offset)


def numpy_function(node: ast.Call, bare: bool = False) -> str | None:
    """The numpy function a call names (np.log(...), or with `bare` also log(...)), or None."""
    name = _callee(node)
    if name.startswith("np.") and name[3:] in NUMPY_FUNCTIONS:
        return name[3:]
    return name if bare and name in NUMPY_FUNCTIONS else None


def _callee(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        return f"{f.value.id}.{f.attr}"
    return "?"


def _treatment(node: ast.expr, offset: int) -> object:
    """The level of Treatment(level) / Treatment(reference=level) / Treatment() (None)."""
    if not isinstance(node, ast.Call) or _callee(node) != "Treatment" or any(k.arg != "reference"
                                                                            for k in node.keywords):
        raise FormulaError("the second argument of C() must be Treatment(level)", offset)
    args = list(node.args) + [k.value for k in node.keywords]
    if len(args) > 1:
        raise FormulaError("Treatment() takes one level: a string or a number", offset)
    if not args:
        return None
    value = _constant(args[0])
    if value is None or isinstance(value, bool):
        raise FormulaError("Treatment() takes one level: a string or a number", offset)
    return value


def _constant(node: ast.expr) -> object:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return -value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return None


_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def arith_columns(node: ast.expr, offset: int, bare_calls: bool = False) -> list[str]:
    """The columns arithmetic `node` reads, after checking it as inside I() (`bare_calls`: f(...)
    is accepted as np.f(...) too, as an offset() writes log(x)); FormulaError otherwise."""
    columns: list[str] = []
    _arith(node, offset, columns, [], bare_calls)
    return columns


def _arith(node: ast.expr, offset: int, columns: list[str], outside: list[str], bare: bool = False) -> None:
    """Columns, numbers, + - * /, ** by a small whole number, unary minus and np.f(...)."""
    if isinstance(node, ast.Name):
        if node.id in ("C", "I", "np", "Treatment"):
            raise FormulaError(f"'{node.id}' cannot be used as a column here", offset)
        columns.append(node.id)
        outside.append(node.id)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise FormulaError("only numbers may appear in arithmetic", offset)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _arith(node.operand, offset, columns, outside, bare)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, _ARITH):
        _arith(node.left, offset, columns, outside, bare)
        _arith(node.right, offset, columns, outside, bare)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        power = _constant(node.right)
        if not isinstance(power, (int, float)) or isinstance(power, bool) or abs(power) > MAX_POWER:
            raise FormulaError(f"a power must be a number from -{MAX_POWER} to {MAX_POWER}", offset)
        _arith(node.left, offset, columns, outside, bare)
    elif isinstance(node, ast.Call) and numpy_function(node, bare) is not None:
        if len(node.args) != 1 or node.keywords:
            raise FormulaError(f"{_callee(node)}() takes one argument", offset)
        _arith(node.args[0], offset, columns, outside, bare)
    else:
        raise FormulaError("only columns, numbers, + - * / **, and np functions may appear in arithmetic", offset)


# -- statsmodels' (patsy's) conventions ------------------------------------------------------------------
_SPACE_BOTH = {"+", "-", "*", "/", "%", "&", "^", "|", "<", ">", "==", "!=", "<=", ">=", "<<", ">>", "**", "//"}


def spaced(code: str) -> str:
    """`code` spaced as patsy names a factor (its `normalize_token_spacing`): binary operators
    with a space on each side, a space after a comma, none inside brackets; strings, numbers
    and redundant parentheses kept as written. Reimplements patsy's `pretty_untokenize`
    (BSD-2-Clause) for the code a formula may hold."""
    try:
        tokens = [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(code.strip()).readline)]
    except (tokenize.TokenError, SyntaxError):
        return code
    out: list[str] = []
    prev_wants_space = prev_delim = prev_object = prev_open = False
    brackets: list[str] = []
    for kind, text in tokens:
        if kind in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT):
            continue
        if kind in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING):
            if prev_wants_space or prev_delim:
                out.append(" ")
            out.append(text)
            prev_wants_space, prev_delim = False, True
        else:
            if text in "([{":
                brackets.append(text)
            elif brackets and text in ")]}":
                brackets.pop()
            before = text in _SPACE_BOTH or text in ("!", "~")
            after = text in _SPACE_BOTH or text in (",", ":")
            if text == ":" and brackets and brackets[-1] == "[":
                after = False
            if text in ("*", "**") and prev_open:
                before = after = False
            if text == "=" and not brackets:
                before = after = True
            if text in ("+", "-") and not prev_object:
                before = after = False
            if prev_wants_space or before:
                out.append(" ")
            out.append(text)
            prev_wants_space, prev_delim = after, False
        prev_object = kind in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING) or text == ")"
        prev_open = text in ("(", ",")
    return "".join(out)


Key = frozenset[str]


def patsy_terms(node: ASTNode | Token) -> list[Key]:
    """The terms of a formula in the order patsy expands them (each a set of factor codes as
    formulaic normalises them; the intercept left out): a + b keeps the order written, a*b is
    a, b, a:b, (a + b)**2 is a, b, a:b, a/b is a, a:b."""
    if isinstance(node, Token):
        return [] if node.kind is Token.Kind.VALUE else [frozenset({node.token})]
    symbol = node.operator.symbol
    if len(node.args) == 1:
        return patsy_terms(node.args[0]) if symbol == "+" else []
    left = patsy_terms(node.args[0])
    if symbol == "**":
        power = int(node.args[1].token) if isinstance(node.args[1], Token) else 1
        terms, big = list(left), list(left)
        for _ in range(1, min(len(left), power)):
            big = _interaction(left, big)
            terms += big
        return _dedupe(terms)
    right = patsy_terms(node.args[1])
    if symbol == "+":
        return _dedupe(left + right)
    if symbol == "-":
        return [t for t in left if t not in right]
    if symbol == ":":
        return _interaction(left, right)
    if symbol == "*":
        return _dedupe(left + right + _interaction(left, right))
    if symbol == "/":
        everything = frozenset().union(*left) if left else frozenset()
        return _dedupe(left + [everything | r for r in right])
    return _dedupe(left + right)


def _interaction(left: list[Key], right: list[Key]) -> list[Key]:
    if len(left) * len(right) > MAX_TERMS * MAX_TERMS:
        raise FormulaError(f"the formula expands to more than {MAX_TERMS} terms", 0)
    return _dedupe([a | b for a in left for b in right])


def _dedupe(terms: list[Key]) -> list[Key]:
    unique = list(dict.fromkeys(terms))
    if len(unique) > MAX_TERMS:
        raise FormulaError(f"the formula expands to more than {MAX_TERMS} terms", 0)
    return unique


def term_order(tree: ASTNode | Token, keys: list[Key], categorical: Callable[[str], bool]) -> list[int]:
    """Indices of `keys` (formulaic's terms, intercept excluded) in patsy's order: terms are
    grouped by their set of numeric factors, the group without numeric factors first and the
    others in order of first appearance; within a group, by degree, then as written (patsy's
    `design_matrix_builders`)."""
    written = {key: i for i, key in enumerate(patsy_terms(tree))}
    late = len(written)
    appear = [written.get(key, late + i) for i, key in enumerate(keys)]
    numeric = [frozenset(f for f in key if not categorical(f)) for key in keys]
    first: dict[Key, int] = {}
    for i in sorted(range(len(keys)), key=lambda i: appear[i]):
        first.setdefault(numeric[i], len(first))
    rank = {bucket: (-1 if not bucket else pos) for bucket, pos in first.items()}
    return sorted(range(len(keys)), key=lambda i: (rank[numeric[i]], len(keys[i]), appear[i]))
