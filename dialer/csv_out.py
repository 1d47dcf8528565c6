"""The one writer for every CSV the dialer hands out (audit exports, pre-flight reports).

A spreadsheet runs a cell that starts with =, +, -, @, a tab or a carriage return as a formula
(CSV/formula injection: `=HYPERLINK(...)` leaking data, `+cmd|...` running a program). Such a
cell is written with a leading apostrophe, which spreadsheets show as text, unless it is a plain
number: E.164 numbers ("+919876543210") and negative values stay as they are. NUL, which no
spreadsheet or database should receive, becomes U+FFFD.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\x00", "\ufffd")
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class _Echo:
    """A file that hands back what is written, so csv.writer formats one line at a time."""

    def write(self, value: str) -> str:
        return value


class CsvLines:
    """Format rows as CSV lines, one call per row, every cell through csv_cell."""

    def __init__(self) -> None:
        self._writer = csv.writer(_Echo())

    def line(self, cells: Iterable[object]) -> str:
        return str(self._writer.writerow([csv_cell(c) for c in cells]))


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    lines = CsvLines()
    yield lines.line(header)
    for row in rows:
        yield lines.line(row)
