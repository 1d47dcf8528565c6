"""The one strict reader for every CSV we take in: contacts, consents, suppressions, registry.

It streams a binary file line by line, so memory stays bounded whatever the file's size, and
hands back each record as a Row or, when the record cannot be trusted, a RowError naming its
line; the caller decides whether an error rejects the file or only the row. What it refuses:
text that is not UTF-8 (a leading BOM is fine), a stray or unterminated quote (csv strict mode),
NUL (PostgreSQL refuses it in text and jsonb), a field longer than its column's cap (so nothing
reaches a column too narrow for it), a record with too few or too many fields (its columns no
longer line up), a lone CR (no such line ending) and a physical line over MAX_LINE_BYTES.

Line numbers are physical lines of the file, the header being line 1; a quoted field spanning
lines counts all of them, and a record is named by the line it starts on.
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

# One physical line may not exceed this; past it we skip to the next line feed rather than hold
# an endless "line" (a file of lone CRs, or binary junk) in memory.
MAX_LINE_BYTES = 1 << 20
# A record spanning lines (quoted line breaks) may not exceed this in all.
MAX_RECORD_CHARS = 1 << 20
_BOM = b"\xef\xbb\xbf"


class CsvError(ValueError):
    """The file as a whole cannot be read (not UTF-8, no or bad header). line 0: no line at all."""

    def __init__(self, line: int, reason: str, *, header: Sequence[str] = ()) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason
        # The header as read, when the error is about it: callers can word their own advice.
        self.header = tuple(header)


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]  # stripped values by column name (the caller's name where it gave one)


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str
    # True when the record itself is broken (its columns cannot be trusted, or it is not text);
    # False when only a value is refused (over its length cap) and the record reads fine.
    malformed: bool = True


class _TooLong(Exception):
    """A line, or a record of several lines, past its limit; its lines were consumed."""


class _Lines:
    """Physical lines of a binary file as text, counted, for csv.reader to pull from.

    A plain iterator, not a generator: after it raises _TooLong, csv.reader can go on pulling
    the next line.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.line = 0  # the last physical line handed out
        self.nul = False  # a NUL was seen since the caller last cleared it
        self.chars = 0  # characters handed out since the caller last cleared it

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self._fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := self._fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            raise _TooLong(f"a line longer than {MAX_LINE_BYTES} bytes")
        if self.line == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CsvError(
                self.line,
                f"the file is not UTF-8 text (bytes {raw[exc.start : exc.end].hex(' ')}); "
                "save it as CSV UTF-8",
            ) from exc
        if "\x00" in text:
            self.nul = True
        self.chars += len(text)
        if self.chars > MAX_RECORD_CHARS:
            # Quoted line breaks could otherwise make one record of the rest of the file.
            raise _TooLong(f"a record longer than {MAX_RECORD_CHARS} characters")
        return text


def read_csv(
    fh: IO[bytes],
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    extra: bool = False,
    max_chars: Mapping[str, int] | None = None,
    default_max_chars: int = 1000,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[Row | RowError]:
    """Yield the file's records after its header, as Rows or RowErrors, in file order.

    Column names match case-insensitively and surrounding spaces are ignored. `aliases` gives
    other accepted names for a required or optional column (number: phone, msisdn); a column
    found under an alias is keyed by its canonical name. With extra=True columns not named are
    kept under their header name as written; with extra=False they are a CsvError. Blank
    records (empty lines, or only commas and spaces) are skipped. Raises CsvError for an empty
    file, a bad header and text that is not UTF-8 (the latter possibly after some rows).
    """
    lines = _Lines(fh)
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    caps: list[int] = []
    fast_cap = 0
    while True:
        start = lines.line + 1
        lines.nul = False
        lines.chars = 0
        try:
            cells = next(reader)
        except StopIteration:
            break
        except _TooLong as exc:
            if header is None:
                raise CsvError(start, str(exc)) from None
            yield RowError(start, str(exc))
            continue
        except csv.Error as exc:
            if header is None:
                raise CsvError(start, f"the header cannot be read as CSV ({_why(exc)})") from None
            yield RowError(start, f"not a readable CSV record ({_why(exc)}; by line {lines.line})")
            continue
        values = [cell.strip() for cell in cells]
        if not any(values) and not lines.nul:
            continue  # blank lines, as spreadsheets leave at the end, are not records
        if lines.nul:
            if header is None:
                raise CsvError(start, "the header contains a NUL byte")
            yield RowError(start, "contains a NUL byte (the file is not plain text)")
            continue
        if header is None:
            header = _header(
                cells,
                line=start,
                required=required,
                optional=optional,
                extra=extra,
                aliases=aliases or {},
            )
            caps = [(max_chars or {}).get(name, default_max_chars) for name in header]
            fast_cap = min(caps)
            continue
        if len(cells) != len(header):
            yield RowError(start, f"{len(cells)} fields but the header has {len(header)}")
            continue
        # No field can be over its cap when the whole record is within the smallest one; the
        # test over all fields is map()s, this runs for nearly every row of a large file.
        if lines.chars > fast_cap and any(map(operator.gt, map(len, values), caps)):
            at = next(at for at, value in enumerate(values) if len(value) > caps[at])
            yield RowError(
                start, f"{header[at]} is longer than {caps[at]} characters", malformed=False
            )
            continue
        yield Row(start, dict(zip(header, values, strict=True)))
    if header is None:
        raise CsvError(0, "the file is empty")


def _header(
    cells: list[str],
    *,
    line: int,
    required: Sequence[str],
    optional: Sequence[str],
    extra: bool,
    aliases: Mapping[str, Sequence[str]],
) -> list[str]:
    """The key each column's values go under; raises CsvError for a header we cannot use."""
    names = [cell.strip() for cell in cells]
    canonical = {name.lower(): name for name in (*required, *optional)}
    for name, others in aliases.items():
        canonical.update({other.lower(): name for other in others})
    keys: list[str] = []
    seen: dict[str, str] = {}
    for at, name in enumerate(names):
        if not name:
            raise CsvError(line, f"column {at + 1} of the header has no name", header=names)
        key = canonical.get(name.lower())
        if key is None and not extra:
            expected = ", ".join((*required, *optional))
            raise CsvError(
                line, f"unknown column {name[:40]!r}; the columns are {expected}", header=names
            )
        key = key or name
        first = seen.get(key.lower())
        if first is not None:
            reason = (
                f"{name!r}: this column name appears twice in the header"
                if first.lower() == name.lower()
                else f"{first!r} and {name!r} are the same column; keep only one"
            )
            raise CsvError(line, reason, header=names)
        seen[key.lower()] = name
        keys.append(key)
    missing = [name for name in required if name.lower() not in seen]
    if missing:
        accepted = " or ".join(_names(missing[0], aliases))
        raise CsvError(line, f"no {accepted} column in the header", header=names)
    return keys


def _names(name: str, aliases: Mapping[str, Sequence[str]]) -> list[str]:
    return [name, *aliases.get(name, ())]


def _why(exc: csv.Error) -> str:
    text = str(exc)
    if "new-line character seen in unquoted field" in text:
        return "a lone carriage return; lines must end with LF or CRLF"
    if "unexpected end of data" in text:
        return "a quote is never closed"
    return text
