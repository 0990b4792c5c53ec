"""From query text to the frozen IR of `queries.ir`: SQL through sqlglot, and Pooled's own heads.

    statement  := EXPLAIN statement | select | crosstab | survival | regression
    select     := a standard SQL SELECT (`queries.sql_select` says what is accepted) [WEIGHT name]
                  (`queries.weights_select`)
    crosstab   := CROSSTAB name BY name [STRATA name] [FROM name] [WHERE condition]
                  (STRATA, FROM and WHERE in any order)
    survival   := SURVIVAL name , name [BY name] [EVERY number] [FROM name] [WHERE condition]
                  (BY, EVERY, FROM and WHERE in any order)
    regression := (LINEAR | LOGISTIC | POISSON) name ~ formula [FROM name] [WHERE condition] [MAXITER n] [TOL t]
                  [WEIGHT name [ROBUST]]
                  (FROM, WHERE and the options in any order; MAXITER and TOL not for LINEAR; WEIGHT: `queries.weights`)
    cox        := COX name , name ~ formula [EVERY number] [FROM name] [WHERE condition] [MAXITER n] [TOL t]
                  (time, event; the clauses in any order)

A SELECT is parsed by sqlglot (DuckDB's dialect) and compiled by `queries.sql_select`; a
condition after WHERE is any SQL row expression (`queries.sql_expr`), the same in all three.
Keywords are case-insensitive, column names are not. Every error names the position of the
offending token (1-based, in the whole text) and never echoes a literal. A `formula` is a
statsmodels (patsy) formula, parsed by formulaic and checked by `queries.formula`; its errors
point into it; a POISSON formula may add one offset(...) term (`queries.offset`). A query is
parsed once per process: the statement keeps its text and the positions of what it mentions,
for the errors found later (`ir.position_of`).
"""

from __future__ import annotations

import re
from dataclasses import replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from queries import expr as e
from queries import ir
from queries.errors import QueryError
from queries.lexer import Token, next_token
from queries.sql_expr import ExprCompiler, Source
from queries.sql_select import compile_select
from queries.weights import clause_at, select_weight_at

DIALECT = "duckdb"
DEFAULT_ITERATIONS = {"LOGISTIC": 35, "POISSON": 10, "COX": 6}
"""MAXITER when the query does not say: LOGISTIC's most iterations, POISSON's and COX's fixed schedules
(`protocols.poisson`, `protocols.cox`: every iteration runs, so the count reveals nothing)."""
_WORD = re.compile(r"\s*([A-Za-z_]+|\(|)")
_IN_WHERE = "aggregates cannot be used in WHERE: it chooses rows before they are grouped"


def parse(text: str) -> ir.Statement:
    """Parse one statement; raises QueryError with a position on bad input."""
    if not text.strip():
        raise QueryError("empty query", 1, text)
    return _statement(text, 0)


def _statement(text: str, start: int) -> ir.Statement:
    m = _WORD.match(text, start)
    assert m is not None
    word, at = m.group(1).upper(), m.start(1)
    if word == "EXPLAIN":
        inner = _statement(text, m.end(1))
        if isinstance(inner, ir.Explain):
            raise QueryError("EXPLAIN EXPLAIN is not a query", _WORD.match(text, m.end(1)).start(1) + 1, text)  # type: ignore[union-attr]
        return ir.Explain(inner)
    if word in ("SELECT", "WITH", "("):
        return _select(text, at)
    if word in ("CROSSTAB", "SURVIVAL", "LINEAR", "LOGISTIC", "POISSON", "COX"):
        return _Head(text, at).statement()
    found = f"'{word}'" if word else "the end of the query" if at >= len(text) else f"'{text[at]}'"
    raise QueryError(f"expected SELECT, CROSSTAB, SURVIVAL, LINEAR, LOGISTIC, POISSON, COX or EXPLAIN, found {found}",
                     at + 1, text)


def _select(text: str, start: int) -> ir.Select:
    weighted = select_weight_at(text, start)
    if weighted is not None:  # SELECT ... WEIGHT w: the SELECT before it, weighted (`queries.weights_select`)
        from queries.weights_select import weigh

        at, column, column_at, robust = weighted
        if robust:
            raise QueryError("ROBUST applies to a model's standard errors; a SELECT takes WEIGHT w alone",
                             text.upper().rindex("ROBUST") + 1, text)
        return replace(weigh(_select(text[:at], start), column, column_at + 1), text=text)
    source = Source(text, start)
    statements = [s for s in _sqlglot(text[start:], source) if s is not None]
    if len(statements) != 1:
        semicolon = text.find(";", start)
        raise QueryError("one statement at a time", semicolon + 1 if semicolon >= 0 else None, text)
    node = statements[0]
    if isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
        raise source.error("UNION, INTERSECT and EXCEPT are not supported: a query releases one table of aggregates",
                           node.right if isinstance(node.right, exp.Expression) else node)
    if not isinstance(node, exp.Select):
        raise QueryError("expected a SELECT statement", start + 1, text)
    if not node.expressions:
        raise QueryError("expected an aggregate or a grouping column after SELECT", len(text.rstrip()) + 1, text)
    return compile_select(node, source)


def _sqlglot(sql: str, source: Source) -> list[exp.Expression | None]:
    """sqlglot's statements of `sql`, its errors as QueryError in `source`'s positions."""
    try:
        return list(sqlglot.parse(sql, read=DIALECT))  # type: ignore[arg-type]
    except TokenError:
        raise QueryError("a string or a quoted name is not closed", _unclosed(sql, source), source.text) from None
    except ParseError as exc:
        raise _parse_error(exc, sql, source) from None


def _unclosed(sql: str, source: Source) -> int | None:
    quote, at = "", -1
    for i, ch in enumerate(sql):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote, at = ch, i
    return source.offset + at + 1 if quote else None


def _token(raw: str) -> str:
    """How an error names a token: never a literal's value."""
    if not raw:
        return "the end of the query"
    if raw[0] in "'$" or raw[0].isdigit():
        return "a string" if raw[0] in "'$" else "a number"
    return f"'{raw}'"


def _parse_error(exc: ParseError, sql: str, source: Source) -> QueryError:
    info = exc.errors[0] if exc.errors else {}
    description = str(info.get("description") or "")
    highlight = str(info.get("highlight") or "")
    line, col = int(info.get("line") or 1), int(info.get("col") or 1)
    end = sum(len(row) + 1 for row in sql.split("\n")[: line - 1]) + col  # 0-based index after the token
    begin = max(end - len(highlight), 0)
    if description.startswith("Required keyword") or description.startswith("Expected"):
        if sql[end:].strip():  # sqlglot stopped at the token where a value was missing
            return QueryError(f"expected a number, a string or an expression, found {_token(highlight)}",
                              source.offset + begin + 1, source.text)
        return QueryError(f"expected a number, a string or an expression after {_token(highlight)}, found the end "
                          "of the query", source.offset + end + 1, source.text)
    pos = source.offset + begin + 1
    before = sql[:begin].split()
    if before and before[-1].upper() in ("GROUP", "ORDER") and highlight.upper() != "BY":
        return QueryError(f"expected BY after {before[-1].upper()}, found {_token(highlight)}", pos, source.text)
    if description.startswith("Expecting )"):
        return QueryError(f"expected ')', found {_token(highlight)}", pos, source.text)
    if len(highlight) == 1 and highlight in _FOREIGN:
        return QueryError(f"unexpected character {highlight!r}", pos, source.text)
    if begin > 0 and _parses(sql[:begin]):
        return QueryError(f"unexpected {_token(highlight)} after the end of the statement", pos, source.text)
    return QueryError(f"unexpected {_token(highlight)}", pos, source.text)


_FOREIGN = frozenset("@$#^&?[]{}`\\")
"""Characters that are no part of the query language (DuckDB gives some of them a meaning)."""


def _parses(sql: str) -> bool:
    try:
        sqlglot.parse(sql, read=DIALECT)
        return True
    except (ParseError, TokenError):
        return False


def condition(text: str, start: int, end: int, tables: frozenset[str]) -> e.Expr:
    """The SQL condition in text[start:end] (after a WHERE), compiled; positions are in `text`."""
    if not text[start:end].strip():
        raise QueryError("expected a condition after WHERE", end + 1, text)
    prefix = "SELECT 1 WHERE "
    source = Source(text, start - len(prefix))
    statements = [s for s in _sqlglot(prefix + text[start:end], source) if s is not None]
    node = statements[0] if len(statements) == 1 else None
    if not isinstance(node, exp.Select) or any(v for k, v in node.args.items() if k not in ("expressions", "where")):
        first = start + len(text[start:end]) - len(text[start:end].lstrip())
        raise QueryError("only a condition may follow WHERE here", first + 1, text)
    return ExprCompiler(source, "WHERE", _IN_WHERE, tables=tables).compile(node.args["where"].this)


def condition_end(text: str, start: int, options: tuple[str, ...] = ("MAXITER", "TOL"),
                  stops: tuple[str, ...] = ("FROM",)) -> int:
    """Where a WHERE condition starting at `start` ends: at a word of `stops` (FROM; SURVIVAL's
    BY too) or at an option word followed by a number (a model's MAXITER n, TOL t; SURVIVAL's
    EVERY w) outside brackets, or at the end of the text."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(text[start:])
    except TokenError:
        return len(text)
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.text.upper() in stops:
            return start + tok.start
        elif depth == 0 and tok.text.upper() in options and i + 1 < len(tokens) and \
                tokens[i + 1].token_type.name == "NUMBER":
            return start + tok.start
        elif depth == 0 and "MAXITER" in options and clause_at(text, start + tok.start):
            return start + tok.start  # a model's WEIGHT w [ROBUST]
    return len(text)


def _in_formula(formula: str, name: str) -> int | None:
    """0-based offset of column `name` in a formula (not inside quotes, not after a dot)."""
    quoted = re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: " " * len(m.group()), formula)
    m = re.search(rf"(?<![\w.`]){re.escape(name)}(?![\w`])", quoted)
    return m.start() if m else None


class _Head:
    """CROSSTAB and the models: their own words token by token, then FROM/WHERE/options."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.tok = next_token(text, start)
        self.source: str | None = None
        self.where: e.Expr | None = None
        self.mentions: list[tuple[str, int]] = []
        self.options: tuple[str, ...] = ("MAXITER", "TOL")
        self.stops: tuple[str, ...] = ("FROM",)

    def error(self, message: str, tok: Token | None = None) -> QueryError:
        return QueryError(message, (tok or self.tok).pos, self.text)

    def advance(self) -> Token:
        t = self.tok
        self.tok = next_token(self.text, t.end)
        return t

    def jump(self, i: int) -> None:
        self.tok = next_token(self.text, i)

    def at_keyword(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.text in words

    def describe(self) -> str:
        t = self.tok
        if t.kind == "end":
            return "the end of the query"
        if t.kind in ("string", "number"):
            return f"a {t.kind}"  # never echo literal values back
        return f"'{t.text}'"

    def keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise self.error(f"expected {word}, found {self.describe()}")
        return self.advance()

    def name(self, what: str = "a column name") -> str:
        if self.tok.kind != "ident":
            raise self.error(f"expected {what}, found {self.describe()}")
        tok = self.advance()
        self.mentions.append((str(tok.value), tok.pos))
        return str(tok.value)

    def other_name(self, what: str, taken: tuple[str, ...], why: str) -> str:
        """A column name, refused with `why` (at the name) when it is one of `taken`."""
        tok = self.tok
        col = self.name(what)
        if col in taken:
            raise self.error(why, tok)
        return col

    def once(self, word: str, seen: object) -> Token:
        """Step over clause keyword `word`, refused when the clause was read already (`seen` is set)."""
        if seen is not None:
            raise self.error(f"{word} appears twice")
        return self.advance()

    def number(self) -> int | float:
        negative = self.tok.kind == "op" and self.tok.text == "-"
        if negative:
            self.advance()
        if self.tok.kind != "number":
            raise self.error(f"expected a number, found {self.describe()}")
        value = self.advance().value
        assert isinstance(value, (int, float))
        return -value if negative else value

    def grid_width(self, seen: float | None) -> float:
        """EVERY w (SURVIVAL's and COX's public time grid): w, after the keyword; an error if EVERY came
        before (`seen`) or w is not a positive width."""
        self.once("EVERY", seen)
        tok = self.tok
        value = float(self.number())
        if not 0 < value < 2**31:
            raise self.error("EVERY needs a positive grid width", tok)
        return value

    def tail(self, end_of_where: bool) -> bool:
        """Read a FROM or a WHERE if one is next; `end_of_where`: the condition may be followed by options."""
        if self.at_keyword("FROM"):
            self.once("FROM", self.source)
            self.source = self.name("a table name")
            self.mentions.pop()
            return True
        if self.at_keyword("WHERE"):
            start = self.once("WHERE", self.where).end
            stop = condition_end(self.text, start, self.options, self.stops) if end_of_where else len(self.text)
            tables = frozenset({self.source}) if self.source else frozenset()
            self.where = condition(self.text, start, stop, tables)
            self.mentions.extend(e.mentions(self.where))
            self.jump(stop)
            return True
        return False

    def finish(self) -> None:
        if self.tok.kind == "ident" and self.tok.text.upper() == "WEIGHT":
            raise self.error("WEIGHT applies to SELECT, LINEAR, LOGISTIC and POISSON")
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.describe()} after the end of the statement")

    def statement(self) -> ir.Statement:
        if self.at_keyword("CROSSTAB"):
            return self.crosstab()
        if self.at_keyword("SURVIVAL"):
            return self.survival()
        return self.regression()

    def crosstab(self) -> ir.Crosstab:
        self.keyword("CROSSTAB")
        row = self.name()
        self.keyword("BY")
        col = self.other_name("a column name", (row,), "a crosstab needs two different columns")
        strata: str | None = None
        self.options, self.stops = (), ("FROM", "STRATA")
        while True:
            if self.tail(end_of_where=True):
                continue
            if not self.at_keyword("STRATA"):
                break
            self.once("STRATA", strata)
            strata = self.other_name("the strata column", (row, col),
                                     "STRATA needs a column other than the two of the table")
        self.finish()
        return ir.Crosstab(row, col, self.where, self.source, self.text, self._mentions(), strata)

    def survival(self) -> ir.Survival:
        self.keyword("SURVIVAL")
        time = self.name("the time column")
        if not (self.tok.kind == "op" and self.tok.text == ","):
            raise self.error(f"expected ',' and the event column, found {self.describe()}")
        self.advance()
        event = self.other_name("the event column (1 = event, 0 = censored)", (time,),
                                "the time and the event must be two different columns")
        group: str | None = None
        every: float | None = None
        self.options, self.stops = ("EVERY",), ("FROM", "BY")
        while True:
            if self.tail(end_of_where=True):
                continue
            if self.at_keyword("BY"):
                self.once("BY", group)
                group = self.other_name("a grouping column", (time, event),
                                        "BY needs a column other than the time and the event")
            elif self.at_keyword("EVERY"):
                every = self.grid_width(every)
            else:
                break
        self.finish()
        return ir.Survival(time, event, group, every or 1.0, self.where, self.source, self.text, self._mentions())

    def regression(self) -> ir.Regression:
        from queries.parse_model import regression  # formulaic: only for a model's formula

        return regression(self)

    def _mentions(self) -> ir.Mentions:
        return tuple(sorted(self.mentions, key=lambda m: m[1]))
