"""Reading a registry CSV: the header, the rows as COPY text, and the rows that were rejected.

The file is parsed in one tight loop, chunk by chunk; a row that cannot be read is loaded as
fully blocked when its number is good, and counted with its line number either way.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from compliance.registry import FULLY_BLOCKED, prefs_to_mask, registry_digits

MAX_ISSUES = 100
DELETE = -1  # prefs value of a delta row with action D while it is staged
_CHUNK_BYTES = 8 << 20


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
    return Layout(
        number=names.index("number"),
        prefs=names.index("preferences"),
        action=names.index("action") if "action" in names else None,
        width=len(names),
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
            if fast and suffix is not None and len(number) == 10 and number.isdigit():
                if number[0] != "0":
                    append("91" + number + suffix)
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
        try:
            fields = next(csv.reader([line]), [])
        except csv.Error as exc:  # a lone CR, an unterminated quote, a field over 128 KiB
            self.tally.reject(line_no, f"unreadable row ({exc})")
            return None
        layout = self.layout
        raw = fields[layout.number] if len(fields) > layout.number else ""
        digits = registry_digits(raw)
        if digits is None:
            self.tally.reject(line_no, f"number {raw.strip()[:40]!r} is not an Indian number")
            return None
        # Past this point the number is good: a row we cannot read is loaded as fully blocked,
        # so that an unreadable preference never lets a promotional call through.
        blocked = f"{digits}\t{FULLY_BLOCKED}\n"
        if len(fields) != layout.width:
            self.tally.reject(
                line_no,
                f"expected {layout.width} columns, found {len(fields)}; loaded as fully blocked",
            )
            return blocked
        action = "A"
        if layout.action is not None:
            action = fields[layout.action].strip().upper() or "A"
            if action not in ("A", "D"):
                self.tally.reject(
                    line_no,
                    f"action {fields[layout.action][:10]!r} is not A or D; loaded as fully blocked",
                )
                return blocked
        if action == "D" and not self.delta:
            return None  # a full file lists what is in force; a deletion there means absence
        if action == "D":
            row = f"{digits}\t{DELETE}\n"
        else:
            try:
                row = f"{digits}\t{prefs_to_mask(fields[layout.prefs])}\n"
            except ValueError as exc:
                self.tally.reject(line_no, f"{exc}; loaded as fully blocked")
                return blocked
        if layout.fast and len(self.suffixes) < 100_000:
            # Only rows that read cleanly teach the fast path; the suffix depends on `rest` alone.
            self.suffixes[line.partition(",")[2]] = row[len(digits) :]
        return row


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
