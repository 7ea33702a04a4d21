"""What the command line prints: plain text off a terminal, one line per warning and log record, tables with units.

Off a terminal (a pipe, a file, a CI log) nothing carries colour codes or markup and nothing is cut to 80 columns;
tables are aligned plain text. Figures are in fixed notation with their unit in the column header; long lists end
with "… and N more".
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_LEVEL = logging.WARNING
"""Log level of a command without -v or -q; each -v goes one level down (INFO, DEBUG), each -q one up."""

VERBOSITY_VARIABLE = "_GEOVIGIE_VERBOSITY"
"""Environment variable giving the command's verbosity to worker processes that build their own app (serve)."""
_state = {"verbosity": 0}


def stderr_console() -> Console:
    """Messages for people: no markup, no highlighting, lines never cut (the terminal or the reader wraps them)."""
    return Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    """Results (tables, listings) on standard output, same rules as `stderr_console`."""
    return Console(markup=False, highlight=False, soft_wrap=True)


def set_verbosity(verbosity: int) -> int:
    """Record `-v` count minus `-q` count for this process; returns the log level it means."""
    _state["verbosity"] = verbosity
    return log_level()


def verbosity() -> int:
    """`-v` count minus `-q` count of this command (0 by default)."""
    return _state["verbosity"]


def log_level(base: int = DEFAULT_LEVEL) -> int:
    """The log level of this command's verbosity, counted from `base` (DEBUG at least, CRITICAL at most)."""
    return min(logging.CRITICAL, max(logging.DEBUG, base - 10 * verbosity()))


def verbosity_flags() -> list[str]:
    """The options giving this verbosity to a child `geovigie` process: `-vv`, `-q` or none."""
    count = verbosity()
    return [("-" + "v" * count) if count > 0 else ("-" + "q" * -count)] if count else []


class _LineFormatter(logging.Formatter):
    """`warning: message` (`info: logger: message` and below), on one line."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.levelno <= logging.DEBUG:
            text += " | " + self.formatException(record.exc_info)
        where = f"{record.name}: " if record.levelno < logging.WARNING else ""
        return f"{record.levelname.lower()}: {where}{one_line(text)}"


class _StderrHandler(logging.Handler):
    """Writes to the `sys.stderr` of the moment (a test runner may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(_LineFormatter())


def configure_logging(level: int | None = None) -> None:
    """Log records of every library as one line each on stderr, at `level` (default: this command's)."""
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    chosen = log_level() if level is None else level
    root.setLevel(chosen)
    _HANDLER.setLevel(chosen)  # records of libraries that set their own loggers' level (distributed: info) too


def one_line(text: str) -> str:
    """`text` with its line breaks turned into spaces."""
    return " ".join(str(text).split("\n")).strip()


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None) -> str:
    """`warning: message`: no file, line number or source line (those are for developers: run with -vv)."""
    text = f"{message} ({category.__name__}, {filename}:{lineno})" if verbosity() >= 2 else str(message)
    return f"warning: {one_line(text)}\n"


def show_warnings_as_lines() -> None:
    """Print each Python warning as one `warning: ...` line on stderr (a recording context still records them)."""
    warnings.formatwarning = _format_warning


def listed(items: Sequence[Any], shown: int = 10, sep: str = ", ") -> str:
    """The first `shown` items joined, then "… and N more" when the list is longer."""
    text = sep.join(str(i) for i in items[:shown])
    return text + (f" … and {len(items) - shown} more" if len(items) > shown else "")


UNITS = {"ha": "ha", "m2": "m²", "m3": "m³", "km2": "km²", "m": "m", "c": "°C", "celsius": "°C", "k": "K",
         "kelvin": "K", "s": "s", "pct": "%", "percent": "%"}
"""Column name words that are units (`artificialised_ha_no_mmu` is hectares); shares and fractions show as %."""
_DECIMALS = {"ha": 4, "ha/yr": 4, "m²": 1, "m³": 1, "km²": 3, "m": 2, "°C": 2, "K": 2, "s": 1, "%": 1}
_PERCENT_WORDS = ("fraction", "share")


def column_unit(column: str) -> tuple[str, str | None]:
    """`(label, unit)` of a table column: `net_ha_per_year` → ("net", "ha/yr"), `covered_fraction` →
    ("covered fraction", "%"), `zone_name` → ("zone name", None)."""
    words = column.split("_")
    per_year = len(words) > 2 and words[-2:] == ["per", "year"]
    if per_year:
        words = words[:-2]
    unit = next((UNITS[w] for w in words[1:] if w in UNITS), None)
    if unit is not None:
        words = [w for i, w in enumerate(words) if i == 0 or w not in UNITS]
    elif words[-1] in _PERCENT_WORDS:
        unit = "%"
    if per_year:
        unit = f"{unit}/yr" if unit else "per year"
    return " ".join(words), unit


def column_header(column: str) -> str:
    """The header shown for a column: its words and its unit in brackets."""
    label, unit = column_unit(column)
    return f"{label} ({unit})" if unit else label


def fixed(value: Any, unit: str | None = None, decimals: int | None = None) -> str:
    """A figure in fixed notation (never 1.2e-05): `decimals`, else by unit (3 by default); shares and fractions
    (unit %) times 100; a missing value is "-"; text stays text."""
    if _missing(value):
        return "-"
    if isinstance(value, str) or type(value).__name__ in ("bool", "bool_"):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if unit == "%":
        number *= 100.0
    places = decimals if decimals is not None else _DECIMALS.get(unit or "", 3)
    text = f"{number:.{places}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def frame_rows(frame: Any, columns: Sequence[str] | None = None, max_rows: int = 40
               ) -> tuple[list[str], list[list[str]], int]:
    """Headers (with units), the first `max_rows` rows as fixed-notation text, and how many rows were left out.

    A column without a unit whose values are all whole numbers (pixel counts) shows no decimals."""
    chosen = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    shown = frame[chosen].head(max_rows)
    formats = []
    for column in chosen:
        unit = column_unit(column)[1]
        values = [v for v in shown[column] if not _missing(v)]
        numbers = [v for v in values if _is_number(v)]
        whole = unit is None and bool(numbers) and len(numbers) == len(values) and all(
            float(v).is_integer() for v in numbers)
        formats.append((unit, 0 if whole else None))
    rows = [[fixed(value, unit, places) for value, (unit, places) in zip(record, formats, strict=True)]
            for record in shown.itertuples(index=False, name=None)]
    return [column_header(c) for c in chosen], rows, max(0, len(frame) - max_rows)


def _is_number(value: Any) -> bool:
    if isinstance(value, str) or type(value).__name__ in ("bool", "bool_"):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA (NA != NA is NA: bool() raises)
    except TypeError:
        return True


def print_table(console: Console, headers: Sequence[str], rows: Iterable[Sequence[str]], title: str | None = None,
                more: int = 0, more_what: str = "rows") -> None:
    """A table: rich on a terminal, aligned plain text elsewhere (never cut); "… and N more rows" after it.

    Columns of decimal figures are right-aligned, the others (names, codes) left-aligned."""
    rows = [[str(cell) for cell in row] for row in rows]
    numeric = [bool(rows) and all(_looks_numeric(row[i]) for row in rows) and any("." in row[i] for row in rows)
               for i in range(len(headers))]  # figures right-aligned; codes (INSEE 32001) and names left
    if console.is_terminal:
        table = Table(title=title)
        for header, right in zip(headers, numeric, strict=True):
            table.add_column(header, justify="right" if right else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if right else c.ljust(w)
                             for c, w, right in zip(cells, widths, numeric, strict=True)).rstrip()

        text = ([title] if title else []) + [line(headers)] + [line(row) for row in rows]
        console.print("\n".join(text), soft_wrap=True)
    if more:
        console.print(f"… and {more} more {more_what}", soft_wrap=True)


def _looks_numeric(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def section(console: Console, title: str) -> None:
    """A section heading: a rule on a terminal, `== title` elsewhere."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"== {title}", soft_wrap=True)


def note(console: Console, prefix: str, message: str, style: str = "yellow") -> None:
    """`prefix: message` on one line, the prefix coloured on a terminal only (no markup is ever parsed)."""
    console.print(f"{prefix}:", style=style, end=" ")
    console.print(one_line(message), soft_wrap=True, style=None)
