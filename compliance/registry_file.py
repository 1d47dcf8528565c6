"""Reading a registry CSV: the header, the rows as COPY text, and the rows that were rejected.

The file is parsed in one tight loop, chunk by chunk; a row that cannot be read is loaded as
fully blocked when its number is good, and counted with its line number either way.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from compliance.registry import FULLY_BLOCKED, prefs_to_mask, registry_digits
from dialer.csv_in import CsvError, Row, RowError, read_csv

MAX_ISSUES = 100
DELETE = -1  # prefs value of a delta row with action D while it is staged
_CHUNK_BYTES = 8 << 20
_COLUMNS = ("number", "preferences")
# A number is at most '+91 98765-43210' and friends; preferences at most all ten categories.
_FIELD_CHARS = {"number": 40, "preferences": 100, "action": 10}
_SYNTHETIC_LINE = re.compile(r"[,;] by line \d+\)")


class RegistryLoadError(Exception):
    """The file cannot be loaded at all (malformed, no version to amend); nothing was changed."""


@dataclass
class Tally:
    rows_read: int = 0
    rejected: int = 0
    issues: list[tuple[int, str]] = field(default_factory=list)

    def reject(self, line: int, message: str) -> None:
        self.rejected += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append((line, message))


@dataclass(frozen=True)
class Layout:
    number: int
    prefs: int
    action: int | None
    width: int
    header: bytes = (
        b"number,preferences\n"  # as in the file: rows off the fast path are read under it
    )

    @property
    def fast(self) -> bool:
        """number first and preferences second: the shape the per-row fast path assumes."""
        return self.number == 0 and self.prefs == 1 and self.action in (None, 2)


def read_layout(fh: IO[bytes]) -> Layout:
    raw = fh.readline()
    try:
        header = raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise RegistryLoadError("line 1: the file is not UTF-8") from exc
    try:
        names = [name.strip().lower() for name in next(csv.reader([header]), [])]
    except csv.Error as exc:  # e.g. a file whose lines end in a lone CR: one endless "line"
        raise RegistryLoadError(
            f"line 1: the header cannot be read ({exc}); lines must end with LF or CRLF"
        ) from exc
    missing = [name for name in ("number", "preferences") if name not in names]
    if missing:
        raise RegistryLoadError(
            f"line 1: the header must name the columns number and preferences (and optionally "
            f"action); found {header[:80]!r}"
        )
    try:  # the shared reader's rules for a header too: no NUL, no unnamed or repeated column
        for _ in read_csv(io.BytesIO(raw), required=_COLUMNS, optional=("action",), extra=True):
            pass
    except CsvError as exc:
        raise RegistryLoadError(str(exc)) from exc
    return Layout(
        number=names.index("number"),
        prefs=names.index("preferences"),
        action=names.index("action") if "action" in names else None,
        width=len(names),
        header=raw if raw.endswith(b"\n") else raw + b"\n",
    )


class Parser:
    """Turns registry CSV lines into COPY text rows 'number<TAB>mask' (mask -1: delete).

    The fast path handles the usual row, a plain 10-digit number then preferences that were seen
    before, with a partition and a dict lookup; everything else goes through the csv module.
    """

    def __init__(self, *, layout: Layout, delta: bool) -> None:
        self.layout = layout
        self.delta = delta
        self.tally = Tally()
        # The text after the number's comma -> the COPY row suffix it makes ('\t2058\n').
        self.suffixes: dict[str, str] = {}

    def rows(self, *, lines: list[str], first_line: int, ascii_only: bool) -> list[str]:
        out: list[str] = []
        append = out.append
        suffix_of = self.suffixes.get
        fast = ascii_only and self.layout.fast
        blank = 0
        for line_no, line in enumerate(lines, first_line):
            number, _, rest = line.partition(",")
            suffix = suffix_of(rest)
            # isdigit() is only ASCII-strict on ASCII text, hence the per-chunk `fast` flag.
            if fast and suffix is not None:
                if len(number) == 10 and number.isdigit():
                    if number[0] != "0":
                        append("91" + number + suffix)
                        continue
                # The other spellings (0, 91, +91, spaces, dashes). The rest of the row read
                # cleanly before and an unquoted number is the field the strict reader would
                # give, so this row would read the same way through it.
                elif '"' not in number and (digits := registry_digits(number)) is not None:
                    append(digits + suffix)
                    continue
            if not line or line.isspace():
                blank += 1
                continue
            row = self._slow(line, line_no)
            if row is not None:
                append(row)
        self.tally.rows_read += len(lines) - blank
        return out

    def _slow(self, line: str, line_no: int) -> str | None:
        item = self._record(line)
        layout = self.layout
        if isinstance(item, RowError):
            return self._unreadable(line, line_no, item.reason)
        values = item.values
        raw = values["number"]
        digits = registry_digits(raw)
        if digits is None:
            self.tally.reject(line_no, f"number {raw.strip()[:40]!r} is not an Indian number")
            return None
        # Past this point the number is good: a row we cannot read is loaded as fully blocked,
        # so that an unreadable preference never lets a promotional call through.
        blocked = f"{digits}\t{FULLY_BLOCKED}\n"
        action = "A"
        if layout.action is not None:
            action = values["action"].upper() or "A"
            if action not in ("A", "D"):
                self.tally.reject(
                    line_no,
                    f"action {values['action'][:10]!r} is not A or D; loaded as fully blocked",
                )
                return blocked
        if action == "D" and not self.delta:
            return None  # a full file lists what is in force; a deletion there means absence
        if action == "D":
            row = f"{digits}\t{DELETE}\n"
        else:
            try:
                row = f"{digits}\t{prefs_to_mask(values['preferences'])}\n"
            except ValueError as exc:
                self.tally.reject(line_no, f"{exc}; loaded as fully blocked")
                return blocked
        if layout.fast and len(self.suffixes) < 100_000:
            # Only rows that read cleanly teach the fast path; the suffix depends on `rest` alone.
            self.suffixes[line.partition(",")[2]] = row[len(digits) :]
        return row

    def _record(self, line: str) -> Row | RowError:
        """The row as dialer.csv_in reads it (strict quoting, NUL, field caps, its width), under
        the file's header. Only rows off the fast path come here (a few per cent of a file)."""
        data = self.layout.header + line.encode() + b"\n"
        items = read_csv(io.BytesIO(data), required=_COLUMNS, optional=("action",), extra=True,
                         max_chars=_FIELD_CHARS)  # fmt: skip
        return next(items, RowError(2, "an empty row"))

    def _unreadable(self, line: str, line_no: int, reason: str) -> str | None:
        """A row the reader refused: if the number is still plain to see it is loaded as fully
        blocked (fail closed), else the row is only counted."""
        # The reader numbered the lines of the one-row text it was given, not of the file.
        reason = _SYNTHETIC_LINE.sub(")", reason)
        fields = line.split(",")
        raw = fields[self.layout.number] if len(fields) > self.layout.number else ""
        digits = registry_digits(raw) if len(raw) <= _FIELD_CHARS["number"] else None
        if digits is None:
            self.tally.reject(line_no, f"unreadable row ({reason})")
            return None
        self.tally.reject(line_no, f"unreadable row ({reason}); loaded as fully blocked")
        return f"{digits}\t{FULLY_BLOCKED}\n"


def _file_chunks(fh: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    """Whole lines in blocks of about _CHUNK_BYTES, with the 1-based line number of the first."""
    line_no = 2
    tail = b""
    while True:
        block = fh.read(_CHUNK_BYTES)
        if not block:
            if tail:
                yield tail, line_no
            return
        block = tail + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            tail = block
            continue
        tail = block[cut:]
        yield block[:cut], line_no
        line_no += block.count(b"\n", 0, cut)


def copy_rows(*, fh: IO[bytes], parser: Parser) -> Iterator[str]:
    """COPY text for the file's data rows, one buffer per chunk."""
    for block, first_line in _file_chunks(fh):
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = first_line + block.count(b"\n", 0, exc.start)
            raise RegistryLoadError(f"line {line}: the file is not UTF-8") from exc
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the text after the block's last newline
        rows = parser.rows(lines=lines, first_line=first_line, ascii_only=block.isascii())
        yield "".join(rows)
