"""A recursive-descent parser from query text to the frozen IR of `queries.ir`.

    statement  := EXPLAIN statement | select | crosstab | regression
    select     := SELECT aggregate [AS name] {, aggregate [AS name]} [FROM name] [WHERE cond]
                  [GROUP BY name {, name}]
    crosstab   := CROSSTAB name BY name [WHERE cond]
    regression := (LINEAR | LOGISTIC) name ~ formula [WHERE cond] [MAXITER n] [TOL t]   (options in any order)
    cond       := and {OR and};  and := not {AND not};  not := NOT not | ( cond ) | predicate
    predicate  := name op literal | name [NOT] IN ( literal {, literal} )
                | name [NOT] BETWEEN literal AND literal | name IS [NOT] NULL

Keywords are case-insensitive; an error names the position of the offending token. A
`formula` is a statsmodels (patsy) formula, parsed by formulaic and checked by
`queries.formula`; its errors point into it.
"""

from __future__ import annotations

import re

from queries import ir
from queries.errors import QueryError
from queries.formula import FormulaError, analyse
from queries.lexer import Token, tokenize

_FUNCS_ONE_COLUMN = {"SUM", "AVG", "VAR", "STDDEV", "MIN", "MAX", "MEDIAN"}
_COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}


def locate(text: str, name: str) -> int | None:
    """The position of the first mention of a column (or result) name in a query, if any."""
    for tok in tokenize(text):
        if tok.kind == "ident" and tok.value == name:
            return tok.pos
        if tok.kind == "formula":
            found = _in_formula(tok.text, name)
            if found is not None:
                return tok.pos + found
    return None


def _in_formula(formula: str, name: str) -> int | None:
    """0-based offset of column `name` in a formula (not inside quotes, not after a dot)."""
    quoted = re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: " " * len(m.group()), formula)
    m = re.search(rf"(?<![\w.`]){re.escape(name)}(?![\w`])", quoted)
    return m.start() if m else None


def with_position(error: QueryError, text: str) -> QueryError:
    """`error` with the position of the name it blames, when it has none yet."""
    if error.position is not None or error.name is None:
        return error
    return QueryError(error.message, locate(text, error.name), text, error.name)


def parse(text: str) -> ir.Statement:
    """Parse one statement; raises QueryError with a position on bad input."""
    if not text.strip():
        raise QueryError("empty query", 1, text)
    return _Parser(text).statement_to_end()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- helpers --------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> QueryError:
        t = tok or self.tok
        return QueryError(message, t.pos, self.text)

    def advance(self) -> Token:
        t = self.tok
        self.i += 1
        return t

    def at_keyword(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.text in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise self.error(f"expected {word}, found {self.describe()}")
        return self.advance()

    def op(self, symbol: str) -> Token:
        if not self.at_op(symbol):
            raise self.error(f"expected '{symbol}', found {self.describe()}")
        return self.advance()

    def name(self, what: str = "a column name") -> str:
        if self.tok.kind != "ident":
            raise self.error(f"expected {what}, found {self.describe()}")
        return str(self.advance().value)

    def describe(self) -> str:
        t = self.tok
        if t.kind == "end":
            return "the end of the query"
        if t.kind in ("string", "number", "formula"):
            return f"a {t.kind}"  # never echo literal values back
        return f"'{t.text}'"

    # -- statements ---------------------------------------------------------------------------------
    def statement_to_end(self) -> ir.Statement:
        stmt = self.statement()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.describe()} after the end of the statement")
        return stmt

    def statement(self) -> ir.Statement:
        if self.at_keyword("EXPLAIN"):
            self.advance()
            inner = self.statement()
            if isinstance(inner, ir.Explain):
                raise self.error("EXPLAIN EXPLAIN is not a query")
            return ir.Explain(inner)
        if self.at_keyword("SELECT"):
            return self.select()
        if self.at_keyword("CROSSTAB"):
            return self.crosstab()
        if self.at_keyword("LINEAR", "LOGISTIC"):
            return self.regression()
        raise self.error(f"expected SELECT, CROSSTAB, LINEAR, LOGISTIC or EXPLAIN, found {self.describe()}")

    def select(self) -> ir.Select:
        self.keyword("SELECT")
        starts = [self.tok]
        aggs = [self.aggregate()]
        while self.at_op(","):
            self.advance()
            starts.append(self.tok)
            aggs.append(self.aggregate())
        if self.at_keyword("FROM"):
            self.advance()
            self.name("a table name")
        where = self.where()
        group: list[str] = []
        if self.at_keyword("GROUP"):
            self.advance()
            self.keyword("BY")
            group.append(self.name())
            while self.at_op(","):
                self.advance()
                group.append(self.name())
        seen: set[str] = set()
        for a, start in zip(aggs, starts):
            if a.name in seen:
                raise self.error(f"two result columns are named {a.name!r}; use AS", start)
            seen.add(a.name)
        return ir.Select(tuple(aggs), where, tuple(group))

    def aggregate(self) -> ir.Aggregate:
        tok = self.tok
        if tok.kind != "ident" or str(tok.value).upper() not in ir.AGGREGATES:
            raise self.error(f"expected an aggregate ({', '.join(ir.AGGREGATES)}), found {self.describe()}")
        func = str(self.advance().value).upper()
        self.op("(")
        column = column2 = None
        q = None
        if func == "COUNT":
            if self.at_op("*"):
                self.advance()
            else:
                column = self.name()
        elif func == "QUANTILE":
            column = self.name()
            self.op(",")
            qt = self.tok
            q = float(self.number())
            if not 0.0 <= q <= 1.0:
                raise self.error("a quantile must be between 0 and 1", qt)
        elif func == "CORR":
            column = self.name()
            self.op(",")
            column2 = self.name()
        else:
            assert func in _FUNCS_ONE_COLUMN
            column = self.name()
        self.op(")")
        alias = None
        if self.at_keyword("AS"):
            self.advance()
            alias = self.name("a result name")
        if func == "MEDIAN":
            func, q = "QUANTILE", 0.5
            alias = alias or f"median({column})"
        return ir.Aggregate(func, column, column2, q, alias)

    def crosstab(self) -> ir.Crosstab:
        self.keyword("CROSSTAB")
        row = self.name()
        self.keyword("BY")
        col_tok = self.tok
        col = self.name()
        if row == col:
            raise self.error("a crosstab needs two different columns", col_tok)
        return ir.Crosstab(row, col, self.where())

    def regression(self) -> ir.Regression:
        kind = self.advance().text
        outcome_tok = self.tok
        outcome = self.name("the outcome column")
        self.op("~")
        ftok = self.advance()
        assert ftok.kind == "formula"  # the lexer makes everything after '~' one formula token
        try:
            facts = analyse(ftok.text)
        except FormulaError as exc:
            raise QueryError(exc.message, ftok.pos + exc.offset, self.text) from None
        if outcome in facts.columns:
            at = _in_formula(ftok.text, outcome)
            raise QueryError(f"the outcome {outcome!r} also appears on the right of '~'",
                             outcome_tok.pos if at is None else ftok.pos + at, self.text)
        where: ir.Condition | None = None
        maxiter, tol = 35, 1e-8
        while self.at_keyword("WHERE", "MAXITER", "TOL"):
            if self.at_keyword("WHERE"):
                if where is not None:
                    raise self.error("WHERE appears twice")
                where = self.where()
                continue
            word = self.advance().text
            if kind != "LOGISTIC":
                raise self.error(f"{word} applies to LOGISTIC only", self.tokens[self.i - 1])
            tok = self.tok
            value = self.number()
            if word == "MAXITER":
                if not isinstance(value, int) or not 1 <= value <= 200:
                    raise self.error("MAXITER must be an integer from 1 to 200", tok)
                maxiter = value
            else:
                if not 0 < float(value) < 1:
                    raise self.error("TOL must be between 0 and 1", tok)
                tol = float(value)
        return ir.Regression(kind, outcome, ftok.text, facts.columns, facts.in_c, where, maxiter, tol)

    # -- conditions -------------------------------------------------------------------------------
    def where(self) -> ir.Condition | None:
        if not self.at_keyword("WHERE"):
            return None
        self.advance()
        return self.condition()

    def condition(self) -> ir.Condition:
        left = self.conjunction()
        while self.at_keyword("OR"):
            self.advance()
            left = ir.Or(left, self.conjunction())
        return left

    def conjunction(self) -> ir.Condition:
        left = self.negation()
        while self.at_keyword("AND"):
            self.advance()
            left = ir.And(left, self.negation())
        return left

    def negation(self) -> ir.Condition:
        if self.at_keyword("NOT"):
            self.advance()
            return ir.Not(self.negation())
        if self.at_op("("):
            self.advance()
            inner = self.condition()
            self.op(")")
            return inner
        return self.predicate()

    def predicate(self) -> ir.Condition:
        column = self.name()
        if self.at_op(*_COMPARISONS):
            op = self.advance().text
            return ir.Compare(column, op, self.literal())
        negated = False
        if self.at_keyword("NOT"):
            self.advance()
            negated = True
            if not self.at_keyword("IN", "BETWEEN"):
                raise self.error(f"expected IN or BETWEEN after NOT, found {self.describe()}")
        if self.at_keyword("IN"):
            self.advance()
            self.op("(")
            values = [self.literal()]
            while self.at_op(","):
                self.advance()
                values.append(self.literal())
            self.op(")")
            cond: ir.Condition = ir.InList(column, tuple(values))
            return ir.Not(cond) if negated else cond
        if self.at_keyword("BETWEEN"):
            self.advance()
            low = self.literal()
            self.keyword("AND")
            cond = ir.Between(column, low, self.literal())
            return ir.Not(cond) if negated else cond
        if self.at_keyword("IS"):
            self.advance()
            is_not = False
            if self.at_keyword("NOT"):
                self.advance()
                is_not = True
            self.keyword("NULL")
            return ir.IsNull(column, is_not)
        raise self.error(f"expected a comparison, IN, BETWEEN or IS NULL after the column, found {self.describe()}")

    def literal(self) -> ir.Value:
        if self.tok.kind == "string":
            return str(self.advance().value)
        return self.number()

    def number(self) -> int | float:
        negative = False
        if self.at_op("-"):
            self.advance()
            negative = True
        if self.tok.kind != "number":
            raise self.error(f"expected a number, found {self.describe()}")
        value = self.advance().value
        assert isinstance(value, (int, float))
        return -value if negative else value
