"""Tokens of the heads of CROSSTAB, SURVIVAL, LINEAR, LOGISTIC, POISSON and COX, each with its 1-based position in
the text.

Only the words before a FROM or WHERE are read this way, one token at a time
(`next_token`), so the parser can hand the rest to sqlglot; a model's formula (after `~`,
up to FROM, WHERE, MAXITER, TOL, a WEIGHT clause or the end) is cut out whole by `queries.formula.formula_end`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from queries.errors import QueryError

KEYWORDS = frozenset(
    "SELECT AS FROM WHERE GROUP BY CROSSTAB EXPLAIN LINEAR LOGISTIC POISSON COX MAXITER TOL SURVIVAL EVERY "
    "STRATA".split()
)

_TOKEN = re.compile(
    r"""
    (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")+")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|[=<>(),*~+\-;])
    """,
    re.VERBOSE,
)
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True)
class Token:
    kind: str  # keyword, ident, number, string, op, end
    text: str
    pos: int  # 1-based
    value: object = None
    end: int = 0  # 0-based index just after the token


def next_token(text: str, i: int) -> Token:
    """The token at or after index `i` (whitespace skipped); an unexpected character is an error."""
    i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
    if i >= len(text):
        return Token("end", "", len(text) + 1, end=len(text))
    m = _TOKEN.match(text, i)
    if m is None:
        raise QueryError(f"unexpected character {text[i]!r}", i + 1, text)
    kind, raw, end = m.lastgroup, m.group(), m.end()
    if kind == "number":
        return Token("number", raw, i + 1, float(raw) if any(ch in raw for ch in ".eE") else int(raw), end)
    if kind == "string":
        return Token("string", raw, i + 1, raw[1:-1].replace("''", "'"), end)
    if kind == "qident":
        return Token("ident", raw, i + 1, raw[1:-1].replace('""', '"'), end)
    if kind == "ident":
        if raw.upper() in KEYWORDS:
            return Token("keyword", raw.upper(), i + 1, None, end)
        return Token("ident", raw, i + 1, raw, end)
    return Token("op", "!=" if raw == "<>" else raw, i + 1, None, end)
