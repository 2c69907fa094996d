"""Error types raised by the planner; all subclass ``ValueError``."""

from __future__ import annotations

from collections.abc import Iterable


class InputDataError(ValueError):
    """An input file or table does not meet its contract.

    The message names the file, the rows or column, what was expected, what was received and how
    to fix it. ``problems`` holds one line per problem so that callers (the dashboard, tests) can
    list them individually.
    """

    def __init__(self, problems: str | Iterable[str]):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the input data:" if n > 1 else ""
        body = "\n".join(f"  - {p}" for p in self.problems) if n > 1 else self.problems[0]
        super().__init__(f"{head}\n{body}" if head else body)


class ScenarioError(ValueError):
    """A scenario file is malformed, has unknown keys, or its overrides clash."""


class SolverError(ValueError):
    """No solver could be run (none installed, or the solver crashed)."""


def format_rows(rows: Iterable[object], limit: int = 10) -> str:
    """Format row labels for an error message: ``"rows 3, 7, 12"`` (at most ``limit`` shown).

    Parameters
    ----------
    rows : iterable
        Row labels (0-based positions or index labels).
    limit : int
        How many to list before summarising the rest as ``"... (N more)"``.

    Returns
    -------
    str
    """
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" ... ({len(rows) - limit} more)" if len(rows) > limit else ""
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}{more}"
