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
        """The message with the query and a caret under the problem."""
        if self.position is None or self.text is None:
            return str(self)
        return f"{self}\n  {self.text}\n  {' ' * (self.position - 1)}^"


class SchemaError(ValueError):
    """The parties' tables disagree, or a query names a column that does not exist."""
