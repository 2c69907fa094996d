"""Error types raised by the planner; all subclass ``ValueError``."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable

#: Bounds of every error message, so that damaged input (a YAML alias bomb, a column of huge
#: strings) cannot produce megabytes of text: at most ``MAX_PROBLEMS`` problems are listed (then
#: "... and N more"), each clipped to ``MAX_PROBLEM_CHARS`` characters; a value quoted in a
#: message is shown by :func:`short_repr`, at most ``MAX_REPR_CHARS`` characters.
MAX_PROBLEMS = 30
MAX_PROBLEM_CHARS = 2_000
MAX_REPR_CHARS = 120

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 6
_REPR.maxstring = _REPR.maxother = 80


def clip(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were cut.

    Parameters
    ----------
    text : str
    limit : int
        Characters kept.

    Returns
    -------
    str
    """
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]} ... ({len(text) - limit} more characters)"


def short_repr(value: object, limit: int = MAX_REPR_CHARS) -> str:
    """A bounded ``repr`` of ``value``: nesting, items and length are capped before it is built.

    A plain ``repr`` of a structure built from nested YAML aliases takes exponential time and
    memory; this one never looks deeper than three levels or past six items.

    Parameters
    ----------
    value : object
    limit : int
        Characters kept.

    Returns
    -------
    str
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def bounded_list(items: Iterable[str], limit: int = MAX_PROBLEMS, sep: str = "; ") -> str:
    """Join at most ``limit`` items (each clipped), then ``"... and N more"``.

    Parameters
    ----------
    items : iterable of str
    limit : int
        Items shown.
    sep : str
        Separator.

    Returns
    -------
    str
    """
    items = list(items)
    shown = sep.join(clip(i) for i in items[:limit])
    return shown + (f"{sep}... and {len(items) - limit} more" if len(items) > limit else "")


def _message(problems: list[str], what: str) -> str:
    """One problem as it is; several as a bounded bullet list under a count."""
    n = len(problems)
    if n == 0:
        return f"a problem in the {what} (no detail given)"
    if n == 1:
        return problems[0]
    body = "\n".join(f"  - {p}" for p in problems[:MAX_PROBLEMS])
    more = f"\n  ... and {n - MAX_PROBLEMS} more" if n > MAX_PROBLEMS else ""
    return f"{n} problems in the {what}:\n{body}{more}"


class InputDataError(ValueError):
    """An input file or table does not meet its contract.

    The message names the file, the rows or column, what was expected, what was received and how
    to fix it. ``problems`` holds one line per problem (each clipped to ``MAX_PROBLEM_CHARS``) so
    that callers (the dashboard, tests) can list them individually; the message lists at most
    ``MAX_PROBLEMS`` of them.
    """

    def __init__(self, problems: str | Iterable[str]):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = [clip(p) for p in problems]
        super().__init__(_message(self.problems, "input data"))


class ScenarioError(ValueError):
    """A scenario file is malformed, has unknown keys, or its overrides clash.

    Bounded like :class:`InputDataError`: ``problems`` holds each problem clipped, the message
    lists at most ``MAX_PROBLEMS``.
    """

    def __init__(self, problems: str | Iterable[str]):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = [clip(p) for p in problems]
        super().__init__(_message(self.problems, "scenario"))


class SolverError(ValueError):
    """No solver could be run (none installed, or the solver crashed)."""

    def __init__(self, message: str):
        super().__init__(clip(message))


def rows_in(source: object, rows: Iterable[int], limit: int = 10) -> str:
    """Where in a file, numbered as the user sees it: ``"villages.gpkg, features 3, 7"`` (the
    n-th feature counted from 1, as QGIS numbers a GeoPackage written in one go), ``"villages.csv,
    lines 4, 8"`` (file lines; the header is line 1), or, for anything else (an in-memory table),
    ``"options, rows 2, 6"`` (0-based positions).

    Parameters
    ----------
    source : str or path
        The file (its suffix decides the numbering) or the table's name.
    rows : iterable of int
        0-based positions in the file's order.
    limit : int
        How many to list.
    """
    name = str(source)
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
    pos = [int(r) for r in rows]
    if suffix == "csv":
        text = format_rows([p + 2 for p in pos], limit)
        return f"{name}, " + text.replace("rows", "lines", 1).replace("row", "line", 1)
    if suffix in {"gpkg", "shp", "geojson", "json", "fgb", "parquet", "geoparquet"}:
        text = format_rows([p + 1 for p in pos], limit)
        return f"{name}, " + text.replace("rows", "features", 1).replace("row", "feature", 1)
    return f"{name}, {format_rows(pos, limit)}"


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
