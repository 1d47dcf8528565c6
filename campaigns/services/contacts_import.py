"""Import a campaign's contacts from a CSV file, written batch by batch as it is read.

The file is streamed through the strict reader (dialer.csv_in) into a temporary stage, so a
file of millions of rows is imported in bounded memory; the report lists the problems with
their line numbers (1-based, the header being line 1), the first MAX_ISSUES of each kind and
how many more, and a rejected file leaves the database untouched.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from typing import IO

from django.db import connection, transaction

from campaigns.models import Campaign, Contact, ContactList
from campaigns.services.contacts_stage import Stage
from compliance.file_numbers import indian_e164
from compliance.numbers import InvalidNumber, NumberInfo, number_info
from compliance.policy import policy_from_settings
from dialer.csv_in import CsvError, Row, RowError, read_csv

logger = logging.getLogger(__name__)

NUMBER_COLUMNS = ("number", "phone", "msisdn")
NAME_COLUMN = "name"
# What a report keeps of each kind of problem; the rest are counted. A million bad rows must
# neither fill the memory nor the page.
MAX_ISSUES = 1000
# The longest number cell worth parsing; a longer one is an invalid row, not a parse.
NUMBER_MAX_CHARS = 40
_NAME_MAX = Contact._meta.get_field("name").max_length or 200
# pg_advisory_xact_lock's first key: which kind of lock the second (a campaign id) is for.
_LOCK_CLASS = 0x0C0A
_LIST_NAME_MAX = ContactList._meta.get_field("name").max_length or 200
# One encoder for every row: json.dumps with options builds a new one each call.
_JSON = json.JSONEncoder(ensure_ascii=False)


@dataclass(frozen=True)
class RowIssue:
    """One problem with the file. line 0 means the file as a whole rather than one line."""

    line: int
    value: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        value = f" {self.value!r}" if self.value else ""
        return f"{where}:{value} {self.message}"


@dataclass(frozen=True)
class ImportReport:
    applied: bool
    list_id: int | None
    imported: int
    duplicates: list[RowIssue] = field(default_factory=list)
    errors: list[RowIssue] = field(default_factory=list)
    # The file itself is broken (encoding, header, ragged rows): skipping invalid rows cannot help.
    malformed: bool = False
    # Problems past the first MAX_ISSUES of each kind, counted but not listed.
    more_duplicates: int = 0
    more_errors: int = 0

    @property
    def duplicate_count(self) -> int:
        return len(self.duplicates) + self.more_duplicates

    @property
    def error_count(self) -> int:
        return len(self.errors) + self.more_errors

    def summary(self) -> str:
        if not self.applied:
            advice = (
                "fix the file and upload it again"
                if self.malformed
                else "fix those rows, or skip invalid rows to import the others"
            )
            return (
                "Nothing was imported: the file was rejected with "
                f"{_plural(self.error_count, 'error')} ({advice})."
            )
        parts = [f"Imported {_plural(self.imported, 'contact')} into list #{self.list_id}"]
        if self.duplicate_count:
            parts.append(f"skipped {_plural(self.duplicate_count, 'duplicate')}")
        if self.error_count:
            parts.append(f"skipped {_plural(self.error_count, 'invalid row')}")
        return "; ".join(parts) + "."


@dataclass
class _Issues:
    """The first MAX_ISSUES problems, and a count of the others."""

    kept: list[RowIssue] = field(default_factory=list)
    more: int = 0

    def add(self, line: int, value: str, message: str) -> None:
        if len(self.kept) < MAX_ISSUES:
            self.kept.append(RowIssue(line=line, value=value, message=message))
        else:
            self.more += 1


def contacts_import(
    *,
    campaign_id: int,
    list_name: str,
    data: IO[bytes] | bytes,
    default_region: str = "IN",
    skip_invalid: bool = False,
) -> ImportReport:
    """Import a CSV of contacts into a new ContactList of the campaign, all or nothing.

    `data` is a binary file (read once, front to back) or the file's bytes. Raises
    Campaign.DoesNotExist for an unknown campaign and ValueError for a bad list name; every
    problem with the file itself is reported in the returned ImportReport instead.
    """
    list_name = list_name.strip()
    if not list_name or len(list_name) > _LIST_NAME_MAX:
        raise ValueError(f"list name must be 1 to {_LIST_NAME_MAX} characters")
    if not Campaign.objects.filter(id=campaign_id).exists():
        raise Campaign.DoesNotExist(f"campaign {campaign_id} does not exist")
    fh = io.BytesIO(data) if isinstance(data, bytes) else data

    with transaction.atomic(durable=True):
        # Serialises imports into one campaign, so none of them reports a number the other is
        # writing as new, and two cannot deadlock on each other's numbers. An advisory lock
        # rather than the campaign's row: the file is read under it, and the dialer and the
        # operator must not wait on the campaign meanwhile. SQLite has one writer anyway.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, campaign_id])
        contact_list = ContactList.objects.create(campaign_id=campaign_id, name=list_name)
        errors = _Issues()
        with Stage(campaign_id=campaign_id, contact_list_id=contact_list.pk) as stage:
            malformed = _stage_file(
                fh=fh,
                stage=stage,
                errors=errors,
                default_region=default_region,
                skip_invalid=skip_invalid,
            )
            imported = stage.finish()
        if malformed:
            transaction.set_rollback(True)
            logger.info("contacts import into campaign %s rejected: malformed file", campaign_id)
            return ImportReport(
                applied=False,
                list_id=None,
                imported=0,
                errors=errors.kept,
                more_errors=errors.more,
                malformed=True,
            )
        found, duplicate_count = stage.duplicates(limit=MAX_ISSUES)
        duplicates = [
            RowIssue(
                line=dup.line,
                value=dup.raw,
                message=f"{dup.number} is already on line {dup.first_line}"
                if dup.first_line != dup.line
                else "already a contact of this campaign",
            )
            for dup in found
        ]
        more_duplicates = duplicate_count - len(duplicates)
        if errors.kept and not skip_invalid:
            transaction.set_rollback(True)
            logger.info(
                "contacts import into campaign %s rejected: %d invalid rows",
                campaign_id,
                len(errors.kept) + errors.more,
            )
            return ImportReport(
                applied=False,
                list_id=None,
                imported=0,
                duplicates=duplicates,
                errors=errors.kept,
                more_duplicates=more_duplicates,
                more_errors=errors.more,
            )
        stage.drop()

    logger.info(
        "imported %d contacts into campaign %s list %s (%d duplicates, %d invalid rows skipped)",
        imported,
        campaign_id,
        contact_list.pk,
        duplicate_count,
        len(errors.kept) + errors.more,
    )
    return ImportReport(
        applied=True,
        list_id=contact_list.pk,
        imported=imported,
        duplicates=duplicates,
        errors=errors.kept,
        more_duplicates=more_duplicates,
        more_errors=errors.more,
    )


def _stage_file(
    *, fh: IO[bytes], stage: Stage, errors: _Issues, default_region: str, skip_invalid: bool
) -> bool:
    """Read the file into the stage, recording invalid rows; return whether it is malformed.

    Reading goes on after the first malformed record, so the report lists them all, but
    nothing more is staged then: the file will be rejected whatever the rest holds. After the
    first invalid row without skip_invalid, rows are staged for the duplicates report but no
    more contacts are written.
    """
    fallback_tz = policy_from_settings().default_tz
    malformed = False
    rows = 0
    try:
        for item in read_csv(
            fh,
            required=("number",),
            optional=(NAME_COLUMN,),
            aliases={"number": NUMBER_COLUMNS[1:]},
            extra=True,
            max_chars={"number": NUMBER_MAX_CHARS, NAME_COLUMN: _NAME_MAX},
        ):
            if isinstance(item, RowError):
                errors.add(item.line, "", item.reason)
                malformed = malformed or item.malformed
                if not skip_invalid or malformed:
                    stage.stop_writing()
                continue
            rows += 1
            staged = _staged(item, errors=errors, region=default_region, fallback_tz=fallback_tz)
            if staged is None:
                if not skip_invalid:
                    stage.stop_writing()
            elif not malformed:
                stage.add(staged)
    except CsvError as exc:
        errors.add(exc.line, "", _header_advice(exc, default_region) or exc.reason)
        return True
    if not rows and not errors.kept:
        errors.add(0, "", "the file has a header but no rows")
        return True
    return malformed


def _staged(
    row: Row, *, errors: _Issues, region: str, fallback_tz: str
) -> tuple[int, str, str, str, str, str] | None:
    values = row.values
    raw = values.pop("number")
    if not raw:
        errors.add(row.line, "", "the number is missing")
        return None
    info = _number(raw, region, fallback_tz)
    if info is None:
        errors.add(row.line, raw, "not a valid phone number")
        return None
    name = values.pop(NAME_COLUMN, "")
    # The other columns are the custom fields; most files have none, and "{}" needs no encoding.
    fields = _JSON.encode(values) if values else "{}"
    return (row.line, raw, info.e164, name, fields, info.time_zone)


def _header_advice(exc: CsvError, default_region: str) -> str | None:
    """Our own wording for a header without exactly one number column, else None."""
    if not exc.header:
        return None
    numbers = [name for name in exc.header if name.lower() in NUMBER_COLUMNS]
    if len(numbers) > 1:
        return f"several number columns ({', '.join(numbers)}); keep only one"
    if numbers:
        return None
    if any(_number(cell, default_region, "") is not None for cell in exc.header):
        return "no header row: the first line looks like data; add a header such as number,name"
    return f"no number column; the header needs one of {', '.join(NUMBER_COLUMNS)}"


# phonenumbers has one zone for all of +91 (test_contact_numbers holds the fast path to
# number_info's answers, zone included).
_INDIA_ZONE = "Asia/Kolkata"


def _number(raw: str, region: str, fallback_tz: str) -> NumberInfo | None:
    # The same normalisation as compliance's, so DND and suppression lookups match these numbers;
    # parsed once for the number and the callee's zone. The usual Indian spellings skip the
    # general parse, which costs five times as much and would cap an import near 15,000 rows/s.
    e164 = indian_e164(raw) if region == "IN" else None
    if e164 is not None:
        return NumberInfo(e164=e164, region="IN", time_zone=_INDIA_ZONE)
    try:
        return number_info(raw, region=region, fallback_tz=fallback_tz)
    except InvalidNumber:
        return None


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
