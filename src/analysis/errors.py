"""Input problems reported the way an analyst can act on them.

A :class:`Problem` names the file, the row(s) as the analyst sees them in a spreadsheet
(the header is row 1, so the first data row is row 2), the column, the offending value and
what was expected.  :class:`InputError` carries one or more problems; the pipeline stops
with its message and no traceback (``analysis.pipeline.nbrun`` prints it and exits with code 2).
An :class:`InputWarning` says something looks wrong but the run goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_ROWS_SHOWN = 10
#: Where an analyst changes a parameter named in a message.
SET_IN = "params.yaml (for make report DATA=<folder>: the params.yaml in that folder)"


@dataclass(frozen=True)
class Problem:
    """One contract violation, located in the analyst's file."""

    file: str
    column: str
    expected: str
    rows: tuple[int, ...] = ()
    value: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_SHOWN])
            more = len(self.rows) - MAX_ROWS_SHOWN
            where += f", row{'s' if len(self.rows) > 1 else ''} {shown}"
            if more > 0:
                where += f" (and {more} more)"
        if self.column:
            where += f", column '{self.column}'"
        got = f": got {self.value!r}" if self.value != "" else ""
        return f"{where}{got}; expected {self.expected}"


class InputError(Exception):
    """The input breaks the data contract; the run cannot proceed."""

    def __init__(self, problems: Iterable[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(file="", column="", expected=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: Sequence[Problem] = tuple(problems)
        super().__init__(self._message())

    def _message(self) -> str:
        n = len(self.problems)
        head = "The input data cannot be used" + (f" ({n} problems):" if n > 1 else ":")
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


class InputWarning(UserWarning):
    """Something in the input looks wrong but the run can go on (e.g. lost leading zeros)."""


class ModelError(RuntimeError):
    """A model the data cannot support as fitted: a mixed model whose optimiser did not
    converge, or whose likelihood disagrees with statsmodels' at the optimum.  Like an
    :class:`InputError` it stops the run with exit code 2 and a message, never a number."""
