"""Pooled's model statements, LINEAR, LOGISTIC, POISSON and COX, from their head word to `ir.Regression`.

The model's formula is cut out of the text (`queries.formula.formula_end`) and read by formulaic;
the clauses after it (FROM, WHERE, MAXITER, TOL, EVERY, WEIGHT) come in any order. Called by
`queries.parser`'s head parser, whose token stream and error positions it shares.
"""

from __future__ import annotations

from queries import ir
from queries.errors import QueryError
from queries.parser import DEFAULT_ITERATIONS, _Head, _in_formula
from queries.weights import clause_at


def regression(head: _Head) -> ir.Regression:
    """The statement at `head`: (LINEAR | LOGISTIC | POISSON) outcome ~ formula, or COX time, event ~ formula,
    with its clauses in any order (the grammar in `queries.parser`)."""
    from queries.formula import FormulaError, analyse, formula_end  # formulaic: only for a model's formula
    from queries.offset import split_offset

    kind = head.advance().text
    time: str | None = None
    if kind == "COX":
        time = head.name("the time column")
        if not (head.tok.kind == "op" and head.tok.text == ","):
            raise head.error(f"expected ',' and the event column, found {head.describe()}")
        head.advance()
    outcome_tok = head.tok
    outcome = head.name("the event column (1 = event, 0 = censored)") if time else head.name("the outcome column")
    if time is not None and outcome == time:
        raise head.error("the time and the event must be two different columns", outcome_tok)
    if not (head.tok.kind == "op" and head.tok.text == "~"):
        raise head.error(f"expected '~', found {head.describe()}")
    start = head.tok.end
    end = formula_end(head.text, start)
    raw = head.text[start:end]
    formula, pos = raw.strip(), start + len(raw) - len(raw.lstrip()) + 1
    try:
        cut = split_offset(formula)
        facts = analyse(cut.spaced)
    except FormulaError as exc:
        raise QueryError(exc.message, pos + exc.offset, head.text) from None
    if cut.code is not None and kind != "POISSON":
        raise QueryError("offset() applies to POISSON only", pos + cut.at, head.text)
    columns = tuple(dict.fromkeys(facts.columns + cut.columns))
    for col in columns:
        at = _in_formula(formula, col)
        if at is not None:
            head.mentions.append((col, pos + at))
    for name in (outcome, time):
        if name is not None and name in columns:
            where = _in_formula(formula, name)
            raise QueryError(f"the {'outcome' if name == outcome else 'time'} {name!r} also appears on the right "
                             "of '~'", outcome_tok.pos if where is None else pos + where, head.text)
    head.jump(end)
    maxiter, tol = DEFAULT_ITERATIONS.get(kind, 35), 1e-8
    weight: str | None = None
    robust = False
    every: float | None = None
    if kind == "COX":
        head.options = ("MAXITER", "TOL", "EVERY")
    while True:
        if head.tail(end_of_where=True):
            continue
        if kind == "COX" and head.at_keyword("EVERY"):
            every = head.grid_width(every)
            continue
        if head.tok.kind == "ident" and head.tok.text.upper() == "WEIGHT" and \
                clause_at(head.text, head.tok.pos - 1):
            if kind == "COX":
                raise head.error("WEIGHT applies to SELECT, LINEAR, LOGISTIC and POISSON, not COX")
            head.once("WEIGHT", weight)
            weight = head.other_name("the weight column", (outcome,), "the weight must not be the outcome")
            robust = head.tok.kind == "ident" and head.tok.text.upper() == "ROBUST"
            if robust:
                head.advance()
            continue
        if not head.at_keyword("MAXITER", "TOL"):
            break
        word_tok = head.advance()
        if kind == "LINEAR":
            raise head.error(f"{word_tok.text} applies to LOGISTIC and POISSON only", word_tok)
        tok = head.tok
        value = head.number()
        if word_tok.text == "MAXITER":
            if not isinstance(value, int) or not 1 <= value <= 200:
                raise head.error("MAXITER must be an integer from 1 to 200", tok)
            maxiter = value
        else:
            if not 0 < float(value) < 1:
                raise head.error("TOL must be between 0 and 1", tok)
            tol = float(value)
    head.finish()
    return ir.Regression(kind, outcome, cut.design, columns, facts.in_c, head.where, maxiter, tol, head.source,
                         head.text, head._mentions(), offset=cut.code, weight=weight, robust=robust, time=time,
                         every=every or 1.0)
