"""Audit log exports, streamed row by row so a large range exports in constant memory.

Each row carries prev_hash and entry_hash; a JSON lines export of a whole range can be checked
offline with `compliance.verify.chain_verify` (each line's hash with `compliance.audit.entry_hash`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TextIO

from django.db.models import QuerySet

from compliance.audit import iso_utc
from compliance.models import AuditEntry
from dialer.csv_out import CsvLines

COLUMNS = [
    "id", "created_at", "kind", "actor", "attempt_id", "campaign_id", "sender_dlt_id", "number",
    "number_token", "purpose", "allowed", "reasons", "detail", "prev_hash", "entry_hash",
]  # fmt: skip
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_CHUNK_ROWS = 2000  # rows per database round trip, and per piece of a streamed response

Row = dict[str, object]


def audit_export(*, entries: QuerySet[AuditEntry], out: TextIO, fmt: str) -> int:
    """Write entries as CSV (reasons ';'-joined, detail as JSON) or JSON lines; return the count."""
    header, encode = _encoder(fmt)
    out.write(header)
    count = 0
    for row in _rows(entries):
        out.write(encode(row))
        count += 1
    return count


def audit_stream(*, entries: QuerySet[AuditEntry], fmt: str) -> Iterator[str]:
    """The same text as audit_export, in pieces of _CHUNK_ROWS rows (for a streamed response)."""
    header, encode = _encoder(fmt)
    return _pieces(header, encode, entries)


def _pieces(
    header: str, encode: Callable[[Row], str], entries: QuerySet[AuditEntry]
) -> Iterator[str]:
    piece = [header]
    for n, row in enumerate(_rows(entries), start=1):
        piece.append(encode(row))
        if n % _CHUNK_ROWS == 0:
            yield "".join(piece)
            piece = []
    if piece and any(piece):
        yield "".join(piece)


def _rows(entries: QuerySet[AuditEntry]) -> Iterator[Row]:
    # values(): no model instance per row; the iterator keeps one chunk in memory at a time.
    for row in entries.values(*COLUMNS).iterator(chunk_size=_CHUNK_ROWS):
        row["created_at"] = iso_utc(row["created_at"])
        yield row


def _encoder(fmt: str) -> tuple[str, Callable[[Row], str]]:
    if fmt == "csv":
        lines = CsvLines()  # formula-like cells neutralised; JSON lines stay exact

        def csv_line(row: Row) -> str:
            reasons = row["reasons"]
            row["reasons"] = ";".join(map(str, reasons)) if isinstance(reasons, list) else ""
            row["detail"] = json.dumps(row["detail"], sort_keys=True)
            return lines.line(row[c] for c in COLUMNS)

        return lines.line(COLUMNS), csv_line
    if fmt == "jsonl":
        return "", lambda row: json.dumps(row, sort_keys=True) + "\n"
    raise ValueError(f"unknown export format {fmt!r} (csv or jsonl)")
