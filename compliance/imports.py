"""Consent and suppression files. Each file is applied whole or not at all: any bad row rejects
it, and every bad row is reported with its line number (the header is line 1). The writes go
through the audited services (compliance.consents, compliance.suppressions), naming the actor."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from compliance.consents import ConsentData, ConsentError, consent_conflict, consents_apply
from compliance.models import Consent, Sender
from compliance.numbers import InvalidNumber, to_e164
from compliance.suppressions import SuppressionRequest, suppressions_add

CONSENT_COLUMNS = ("number", "sender", "scope", "given_at", "expires_at", "revoked_at", "reference")


@dataclass
class FileReport:
    applied: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # already there, exactly so
    errors: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        if not self.applied:
            return f"rejected: {len(self.errors)} bad row(s); nothing was changed"
        return (
            f"applied: {self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        )


class _BadRow(ValueError):
    pass


def _rows(
    data: bytes, required: tuple[str, ...], report: FileReport
) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.errors.append((0, "the file is not UTF-8 text"))
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        report.errors.append((1, f"missing column(s): {', '.join(missing)}"))
        return
    reader.fieldnames = header
    for row in reader:
        if None in row:
            report.errors.append((reader.line_num, "more fields than the header"))
            continue
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}


def _time(value: str, column: str, *, required: bool) -> dt.datetime | None:
    if not value:
        if required:
            raise _BadRow(f"{column} is required")
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadRow(f"{column} {value!r} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise _BadRow(f"{column} {value!r} has no UTC offset")
    return parsed


def _number(value: str) -> str:
    try:
        return to_e164(value, region="IN")
    except InvalidNumber as exc:
        raise _BadRow(str(exc)) from exc


def consents_import(*, data: bytes, actor: str) -> FileReport:
    """Add or update consents, keyed by (sender, reference): a row repeating a known reference
    with revoked_at set is how a revocation arrives, and it applies at the next check. A row
    that would un-revoke a consent, or change its number or scope, is a bad row."""
    report = FileReport()
    senders = dict(Sender.objects.values_list("dlt_entity_id", "id"))
    parsed: list[tuple[int, ConsentData]] = []
    for line, row in _rows(data, CONSENT_COLUMNS, report):
        try:
            if row["sender"] not in senders:
                raise _BadRow(f"sender {row['sender']!r} is not known")
            if row["scope"] not in Consent.Scope.values:
                raise _BadRow(f"scope {row['scope']!r} is not {' or '.join(Consent.Scope.values)}")
            if not row["reference"]:
                raise _BadRow("reference is required")
            given = _time(row["given_at"], "given_at", required=True)
            assert given is not None  # required=True raised otherwise
            expires = _time(row["expires_at"], "expires_at", required=False)
            if given and expires and expires <= given:
                raise _BadRow("expires_at is not after given_at")
            parsed.append((line, ConsentData(
                number=_number(row["number"]),
                sender_id=senders[row["sender"]],
                scope=row["scope"],
                given_at=given,
                expires_at=expires,
                revoked_at=_time(row["revoked_at"], "revoked_at", required=False),
                reference=row["reference"],
            )))  # fmt: skip
        except _BadRow as exc:
            report.errors.append((line, str(exc)))
    known = {
        (c.sender_id, c.reference): c
        for c in Consent.objects.filter(reference__in={d.reference for _, d in parsed})
    }
    for line, consent in parsed:
        existing = known.get((consent.sender_id, consent.reference))
        if existing and (problem := consent_conflict(existing=existing, data=consent)):
            report.errors.append((line, problem))
    if report.errors:
        return report
    try:
        changes = consents_apply(rows=[d for _, d in parsed], actor=actor)
    except ConsentError as exc:  # a row in this file conflicts with an earlier one in it
        report.errors.append((0, str(exc)))
        return report
    report.created, report.updated = changes.created, changes.changed + changes.revoked
    report.unchanged = changes.unchanged
    report.applied = True
    return report


def suppressions_import(
    *, data: bytes, actor: str, default_sender: str | None = None, reason: str = ""
) -> FileReport:
    """A CSV with a `number` column and optional `sender` and `reason` columns."""
    report = FileReport()
    senders = dict(Sender.objects.values_list("dlt_entity_id", "id"))
    if default_sender and default_sender not in senders:
        report.errors.append((0, f"sender {default_sender!r} is not known"))
        return report
    wanted: list[SuppressionRequest] = []
    for line, row in _rows(data, ("number",), report):
        try:
            dlt = row.get("sender") or default_sender
            if dlt and dlt not in senders:
                raise _BadRow(f"sender {dlt!r} is not known")
            wanted.append(SuppressionRequest(_number(row["number"]), senders[dlt] if dlt else None,
                                             row.get("reason") or reason))  # fmt: skip
        except _BadRow as exc:
            report.errors.append((line, str(exc)))
    if report.errors:
        return report
    for _, created in suppressions_add(requests=wanted, actor=actor):
        report.created += created
        report.unchanged += not created
    report.applied = True
    return report
