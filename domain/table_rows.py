"""Reading a spreadsheet's rows (the council register, a peer pool file) without stopping at
the first bad cell: every problem is collected with its row and column, so a person can fix
the whole file at once, and nothing of a bad file is taken."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class CellProblem:
    """What is wrong with one cell (or one row, when `column` is None)."""

    row: int
    column: str | None
    value: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        shown = f" (value {self.value!r})" if self.value else ""
        return f"{where}: {self.message}{shown}"


class TableError(ValueError):
    """The file cannot be taken; `problems` lists every bad cell found."""

    MAX_SHOWN = 20

    def __init__(self, what: str, problems: Sequence[CellProblem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[: self.MAX_SHOWN])
        more = len(self.problems) - self.MAX_SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        count = len(self.problems)
        super().__init__(f"{what} has {count} problem{'s' * (count != 1)}: {shown}{tail}")


class RowReader:
    """One row being read: each reader method notes a problem and carries on."""

    def __init__(self, number: int, row: Mapping[str, str | None],
                 problems: list[CellProblem]) -> None:
        self.number = number
        self.row = row
        self.problems = problems

    def problem(self, column: str | None, value: str, message: str) -> None:
        self.problems.append(CellProblem(self.number, column, value, message))

    def text(self, column: str) -> str:
        value = self.row.get(column)
        return "" if value is None else value.strip()

    def optional(self, column: str) -> str | None:
        return self.text(column) or None

    def required(self, column: str) -> str:
        value = self.text(column)
        if not value:
            self.problem(column, "", "is empty")
        return value

    def day(self, column: str, text: str) -> date | None:
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.problem(column, text, "is not a date (YYYY-MM-DD)")
            return None
