"""Tokens of the query language, each with its 1-based position in the text.

A model's formula (everything after `~` up to WHERE, MAXITER, TOL or the end) is one
`formula` token: its grammar is formulaic's, not this language's (`queries.formula`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from queries.errors import QueryError
from queries.formula import formula_end

KEYWORDS = frozenset(
    """SELECT AS FROM WHERE GROUP BY AND OR NOT IN BETWEEN IS NULL CROSSTAB EXPLAIN LINEAR LOGISTIC
    MAXITER TOL""".split()
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")+")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|[=<>(),*~+\-])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # keyword, ident, number, string, op, formula, end
    text: str
    pos: int
    value: object = None


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens; an unexpected character is an error with its position."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise QueryError(f"unexpected character {text[i]!r}", i + 1, text)
        kind = m.lastgroup
        raw = m.group()
        if kind == "number":
            value: object = float(raw) if any(ch in raw for ch in ".eE") else int(raw)
            tokens.append(Token("number", raw, i + 1, value))
        elif kind == "string":
            tokens.append(Token("string", raw, i + 1, raw[1:-1].replace("''", "'")))
        elif kind == "qident":
            tokens.append(Token("ident", raw, i + 1, raw[1:-1].replace('""', '"')))
        elif kind == "ident":
            upper = raw.upper()
            if upper in KEYWORDS:
                tokens.append(Token("keyword", upper, i + 1))
            else:
                tokens.append(Token("ident", raw, i + 1, raw))
        elif kind == "op":
            tokens.append(Token("op", "!=" if raw == "<>" else raw, i + 1))
            if raw == "~":
                i = _formula(text, m.end(), tokens)
                continue
        i = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _formula(text: str, start: int, tokens: list[Token]) -> int:
    """Append the formula that starts at `start` as one token; return where it ends."""
    end = formula_end(text, start)
    raw = text[start:end]
    lead = len(raw) - len(raw.lstrip())
    tokens.append(Token("formula", raw.strip(), start + lead + 1, raw.strip()))
    return end
