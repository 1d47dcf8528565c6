"""Consent and suppression files. Each file is applied whole or not at all: any bad row rejects
it, and every bad row is reported with its line number (the header is line 1). The rows are read
by dialer.csv_in (NUL, over-long values, bad quoting and ragged rows are bad rows). A row
repeating an earlier one exactly is counted as a duplicate and applied once; a row with the
same key as an earlier one but other values is a conflict (a bad row): which one is meant
cannot be known. The writes go through the audited services (compliance.consents,
compliance.suppressions), naming the actor."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from django.core.management.base import BaseCommand
from django.db import transaction

from compliance.consents import ConsentData, ConsentError, consent_conflict, consents_apply
from compliance.file_numbers import InvalidNumber, file_e164
from compliance.models import Consent, Sender, Suppression
from compliance.suppressions import SuppressionRequest
from compliance.suppressions_bulk import suppressions_add_many
from dialer.csv_in import CsvError, Row, RowError, read_csv

CONSENT_COLUMNS = ("number", "sender", "scope", "given_at", "expires_at", "revoked_at", "reference")
# The columns' widths in the database: a longer value is a bad row, not a DataError.
_REFERENCE_MAX = Consent._meta.get_field("reference").max_length or 200
_REASON_MAX = Suppression._meta.get_field("reason").max_length or 200
# Lines listed in a report: a file of a million bad rows must not become a million messages.
MAX_LISTED = 1000


@dataclass
class FileReport:
    applied: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # already there, exactly so
    duplicates: int = 0  # rows repeating an earlier row of the file exactly: applied once
    rejected: int = 0  # bad rows, of which `errors` lists the first MAX_LISTED
    errors: list[tuple[int, str]] = field(default_factory=list)
    duplicate_lines: list[tuple[int, int]] = field(default_factory=list)  # (line, first line)

    def error(self, line: int, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append((line, message))

    def duplicate(self, line: int, first: int) -> None:
        self.duplicates += 1
        if len(self.duplicate_lines) < MAX_LISTED:
            self.duplicate_lines.append((line, first))

    def summary(self) -> str:
        if not self.applied:
            return f"rejected: {self.rejected} bad row(s); nothing was changed"
        text = (
            f"applied: {self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        )
        if self.duplicates:
            text += f", {self.duplicates} duplicate row(s) counted once"
        return text


class _BadRow(ValueError):
    pass


class _Rejected(Exception):
    """Raised inside the transaction to undo what a file with bad rows had written so far."""


def _stream(data: bytes | IO[bytes]) -> IO[bytes]:
    return io.BytesIO(data) if isinstance(data, bytes) else data


def _rows(items: Iterator[Row | RowError], report: FileReport) -> Iterator[Row]:
    for item in items:
        if isinstance(item, RowError):
            report.error(item.line, item.reason)
        else:
            yield item


def _time(value: str, column: str, *, required: bool) -> dt.datetime | None:
    if not value:
        if required:
            raise _BadRow(f"{column} is required")
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadRow(f"{column} {value[:40]!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise _BadRow(f"{column} {value!r} has no UTC offset")
    return parsed


def _number(value: str) -> str:
    try:
        return file_e164(value)
    except InvalidNumber as exc:
        raise _BadRow(str(exc)) from exc


def _consent(row: dict[str, str], senders: dict[str, int]) -> ConsentData:
    if row["sender"] not in senders:
        raise _BadRow(f"sender {row['sender'][:64]!r} is not known")
    if row["scope"] not in Consent.Scope.values:
        raise _BadRow(f"scope {row['scope'][:40]!r} is not {' or '.join(Consent.Scope.values)}")
    if not row["reference"]:
        raise _BadRow("reference is required")
    given = _time(row["given_at"], "given_at", required=True)
    assert given is not None  # required=True raised otherwise
    expires = _time(row["expires_at"], "expires_at", required=False)
    if expires and expires <= given:
        raise _BadRow("expires_at is not after given_at")
    return ConsentData(
        number=_number(row["number"]),
        sender_id=senders[row["sender"]],
        scope=row["scope"],
        given_at=given,
        expires_at=expires,
        revoked_at=_time(row["revoked_at"], "revoked_at", required=False),
        reference=row["reference"],
    )


def consents_import(*, data: bytes | IO[bytes], actor: str) -> FileReport:
    """Add or update consents, keyed by (sender, reference): a row repeating a known reference
    with revoked_at set is how a revocation arrives, and it applies at the next check. A row
    that would un-revoke a consent, or change its number or scope, is a bad row."""
    report = FileReport()
    senders = dict(Sender.objects.values_list("dlt_entity_id", "id"))
    parsed: dict[tuple[int, str], tuple[int, ConsentData]] = {}
    items = read_csv(
        _stream(data), required=CONSENT_COLUMNS, max_chars={"reference": _REFERENCE_MAX}
    )
    try:
        for row in _rows(items, report):
            try:
                consent = _consent(row.values, senders)
            except _BadRow as exc:
                report.error(row.line, str(exc))
                continue
            first = parsed.setdefault((consent.sender_id, consent.reference), (row.line, consent))
            if first[0] == row.line:
                continue
            if first[1] == consent:
                report.duplicate(row.line, first[0])
            else:
                report.error(row.line, f"reference {consent.reference!r} is also on line "
                             f"{first[0]} with other values")  # fmt: skip
    except CsvError as exc:
        report.error(exc.line, exc.reason)
    known = {
        (c.sender_id, c.reference): c
        for c in Consent.objects.filter(reference__in={d.reference for _, d in parsed.values()})
    }
    for line, consent in parsed.values():
        existing = known.get((consent.sender_id, consent.reference))
        if existing and (problem := consent_conflict(existing=existing, data=consent)):
            report.error(line, problem)
    report.errors.sort()  # the checks against the database come after the file's own
    if report.rejected:
        return report
    try:
        changes = consents_apply(rows=[d for _, d in parsed.values()], actor=actor)
    except ConsentError as exc:  # changed since it was checked above
        report.error(0, str(exc))
        return report
    report.created, report.updated = changes.created, changes.changed + changes.revoked
    report.unchanged = changes.unchanged
    report.applied = True
    return report


def suppressions_import(
    *,
    data: bytes | IO[bytes],
    actor: str,
    default_sender: str | None = None,
    reason: str = "",
) -> FileReport:
    """A CSV with a `number` column and optional `sender` and `reason` columns, streamed: its
    rows are written in batches as they are read, in one transaction that a bad row anywhere
    rolls back (the rest of the file is still read, to report every bad row)."""
    report = FileReport()
    senders = dict(Sender.objects.values_list("dlt_entity_id", "id"))
    if default_sender and default_sender not in senders:
        report.error(0, f"sender {default_sender[:64]!r} is not known")
    if len(reason) > _REASON_MAX or "\x00" in reason:
        report.error(0, f"the reason must be at most {_REASON_MAX} characters, without NUL")
    if report.rejected:
        return report
    requests = _suppression_requests(
        _stream(data), senders=senders, default_sender=default_sender, reason=reason, report=report
    )
    try:
        with transaction.atomic():
            counts = suppressions_add_many(requests=requests, actor=actor)
    except _Rejected:
        return report
    except CsvError as exc:  # e.g. bytes that are not UTF-8 half-way through
        report.error(exc.line, exc.reason)
        return report
    report.created, report.unchanged = counts.created, counts.unchanged
    report.applied = True
    return report


def _suppression_requests(
    fh: IO[bytes],
    *,
    senders: dict[str, int],
    default_sender: str | None,
    reason: str,
    report: FileReport,
) -> Iterator[SuppressionRequest]:
    """The file's new requests, in order; after the first bad row none (the file will be
    rejected), but every row is still checked and reported."""
    # A row's key packed in one int, its first line and reason id in another: a few dozen
    # bytes a distinct row, the one thing here that grows with the file.
    first_seen: dict[int, int] = {}
    reason_ids: dict[str, int] = {}
    items = read_csv(fh, required=("number",), optional=("sender", "reason"),
                     max_chars={"reason": _REASON_MAX})  # fmt: skip
    for row in _rows(items, report):
        values = row.values
        try:
            dlt = values.get("sender") or default_sender
            if dlt and dlt not in senders:
                raise _BadRow(f"sender {dlt[:64]!r} is not known")
            number = _number(values["number"])
        except _BadRow as exc:
            report.error(row.line, str(exc))
            continue
        sender_id = senders[dlt] if dlt else None
        text = values.get("reason") or reason
        reason_id = reason_ids.setdefault(text, len(reason_ids))
        key = int(number[1:]) << 32 | (sender_id or 0)
        first = first_seen.setdefault(key, row.line << 32 | reason_id)
        if first >> 32 != row.line:
            if first & 0xFFFFFFFF == reason_id:
                report.duplicate(row.line, first >> 32)
            else:
                report.error(row.line, f"{number} is also on line {first >> 32} with another "
                             "reason")  # fmt: skip
            continue
        if not report.rejected:
            yield SuppressionRequest(number, sender_id, text)
    if report.rejected:
        raise _Rejected  # before the writer goes on to audit what it wrote


def print_report(command: BaseCommand, report: FileReport) -> None:
    """What the import commands print: bad rows on stderr, duplicates and the summary on stdout."""
    for line, message in report.errors:
        command.stderr.write(f"line {line}: {message}")
    if report.rejected > len(report.errors):
        command.stderr.write(f"... and {report.rejected - len(report.errors)} more bad row(s)")
    for line, first in report.duplicate_lines:
        command.stdout.write(f"line {line}: the same as line {first}, counted once")
    if report.duplicates > len(report.duplicate_lines):
        more = report.duplicates - len(report.duplicate_lines)
        command.stdout.write(f"... and {more} more duplicate row(s)")
    command.stdout.write(report.summary())
