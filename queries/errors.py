"""Errors a query can raise, with the position of the problem and never a data value."""

from __future__ import annotations


class QueryError(ValueError):
    """A query that cannot be parsed or planned; `position` is a 1-based column or None."""

    def __init__(
        self, message: str, position: int | None = None, text: str | None = None, name: str | None = None
    ) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.message = message
        self.position = position
        self.text = text
        self.name = name  # the column or result name at fault, so a position can be found for it

    def render(self) -> str:
        """The message with the query and a caret under the problem (for a query of several
        lines, the line of the problem, named by its number)."""
        if self.position is None or self.text is None:
            return str(self)
        if "\n" not in self.text:
            return f"{self}\n  {self.text}\n  {' ' * (self.position - 1)}^"
        start = self.text.rfind("\n", 0, self.position - 1) + 1
        end = self.text.find("\n", start)
        line = self.text[start : end if end >= 0 else len(self.text)]
        number = self.text.count("\n", 0, start) + 1
        return f"{self} (line {number})\n  {line}\n  {' ' * (self.position - 1 - start)}^"


class SchemaError(ValueError):
    """The parties' tables disagree, or a query names a column that does not exist."""


class ModelRefused(Exception):
    """The consortium declines to fit a LINEAR, LOGISTIC or POISSON model, to compute a SURVIVAL
    curve or a stratified CROSSTAB's statistics; the message is all it releases.

    Each reason is its own subclass, declared with its stable `reason` code
    (`class TooFewCases(ModelRefused, reason="too_few_cases")`), which the nodes send to the
    analyst with the message (`refusal_error` rebuilds the exception from the two).
    """

    reason = "refused"

    def __init_subclass__(cls, reason: str, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.reason = reason


class OutcomeNotBinary(ModelRefused, reason="outcome_not_binary"):
    """LOGISTIC needs a 0/1 (or boolean, or two-level categorical) outcome."""


class OutcomeNotCount(ModelRefused, reason="outcome_not_count"):
    """POISSON needs a count outcome: non-negative whole numbers."""


class OffsetNotPositive(ModelRefused, reason="offset_not_positive"):
    """POISSON: the offset is not defined at some complete case (the log of an exposure of 0 or less)."""


class OutOfRange(ModelRefused, reason="out_of_range"):
    """POISSON: a count, or a fitted count, beyond the fixed-point range of the fit (the message names the bound);
    SURVIVAL: a time beyond the largest grid."""


class TooFewCases(ModelRefused, reason="too_few_cases"):
    """Fewer complete cases than the minimum cell size."""


class TooManyParameters(ModelRefused, reason="too_many_parameters"):
    """More parameters than the allowed fraction of the complete cases."""


class RareLevel(ModelRefused, reason="rare_level"):
    """A level (or a cell of categorical interactions) has fewer complete cases than the minimum."""


class Collinear(ModelRefused, reason="collinear"):
    """LINEAR, POISSON: X'X (X'WX) is singular (collinear covariates)."""


class NoEstimate(ModelRefused, reason="no_estimate"):
    """LOGISTIC, POISSON: the information matrix is singular (separation, a level without events, collinear
    covariates)."""


class NotConverged(ModelRefused, reason="not_converged"):
    """LOGISTIC, POISSON: Newton-Raphson did not converge within MAXITER iterations."""


class TooFewEvents(ModelRefused, reason="too_few_events"):
    """SURVIVAL: fewer events in all than the minimum cell size."""


class BadSurvivalData(ModelRefused, reason="bad_survival_data"):
    """SURVIVAL: a negative or infinite time, or an event other than 0 or 1, at some party."""


class SmallStratum(ModelRefused, reason="small_stratum"):
    """CROSSTAB ... STRATA: a stratum, or a cell of the table summed over the strata, has fewer rows than the
    minimum cell size (and more than none, when zeros are released)."""


class BadWeights(ModelRefused, reason="bad_weights"):
    """WEIGHT: a negative or infinite weight at some party (`queries.weights`)."""


REFUSALS: dict[str, type[ModelRefused]] = {
    cls.reason: cls
    for cls in (OutcomeNotBinary, OutcomeNotCount, OffsetNotPositive, OutOfRange, TooFewCases, TooManyParameters,
                RareLevel, Collinear, NoEstimate, NotConverged, TooFewEvents, BadSurvivalData, SmallStratum)
} | {BadWeights.reason: BadWeights}


def refusal_error(reason: str, message: str) -> ModelRefused:
    """The exception for a refusal `reason` code (ModelRefused itself for an unknown code)."""
    return REFUSALS.get(reason, ModelRefused)(message)
