"""Consent and suppression files, read by the one strict CSV reader: a bad byte, an over-long
value, bad quoting or a short row is a bad row with its line number (nothing applied, never a
traceback); repeated rows are counted as duplicates with their lines, and two different rows for
the same key are a conflict. Large suppression files go through in batches, every change
audited and the chain intact."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.db import connection
from pytest_django import DjangoAssertNumQueries

from compliance.audit import CHAIN_LOCK_KEY
from compliance.imports import FileReport, consents_import, suppressions_import
from compliance.models import AuditEntry, Consent, Suppression
from compliance.suppressions import SuppressionRequest, suppression_add, suppression_lift
from compliance.suppressions_bulk import BATCH_SIZE, suppressions_add_many
from compliance.verify import audit_verify
from tests.helpers.factories import make_sender

pytestmark = pytest.mark.django_db

CONSENT_HEADER = "number,sender,scope,given_at,expires_at,revoked_at,reference\n"
GIVEN = "2026-11-01T00:00:00+05:30"


@pytest.fixture(autouse=True)
def _senders() -> None:
    make_sender(dlt_entity_id="1101SHOP")
    make_sender(dlt_entity_id="1101BANK")


def _consent_row(number: str = "9876500000", reference: str = "DLT-C-1", **kw: str) -> str:
    revoked = kw.get("revoked_at", "")
    return f"{number},1101SHOP,promotional,{kw.get('given_at', GIVEN)},,{revoked},{reference}\n"


def _consents(text: str | bytes) -> FileReport:
    data = text.encode() if isinstance(text, str) else text
    return consents_import(data=data, actor="cli:test")


def _suppressions(text: str | bytes, **kw: str) -> FileReport:
    data = text.encode() if isinstance(text, str) else text
    return suppressions_import(data=data, actor="cli:test", **kw)


def _lines(report: FileReport) -> list[int]:
    return [line for line, _ in report.errors]


# --- bad bytes and over-long values: row errors, not a DataError from PostgreSQL


def test_a_nul_byte_in_a_consent_reference_is_a_bad_row_and_nothing_is_applied() -> None:
    report = _consents(CONSENT_HEADER + _consent_row() + _consent_row("9876500001", "R\x00-2"))

    assert not report.applied
    assert _lines(report) == [3]
    assert "NUL" in report.errors[0][1]
    assert Consent.objects.count() == 0


def test_a_consent_reference_over_200_characters_is_a_bad_row() -> None:
    report = _consents(CONSENT_HEADER + _consent_row() + _consent_row("9876500001", "R" * 201))

    assert not report.applied
    assert _lines(report) == [3]
    assert "200" in report.errors[0][1]
    assert Consent.objects.count() == 0


def test_a_nul_byte_or_an_over_long_reason_in_a_suppression_file_is_a_bad_row() -> None:
    report = _suppressions(
        "number,reason\n9876543210,fine\n9876543211,bad\x00byte\n9876543212," + "x" * 201 + "\n"
    )

    assert not report.applied
    assert _lines(report) == [3, 4]
    assert Suppression.objects.count() == 0
    assert not AuditEntry.objects.filter(kind="suppression_added").exists()


def test_an_over_long_or_nul_default_reason_is_refused_before_reading() -> None:
    for reason in ("y" * 201, "a\x00b"):
        report = _suppressions("number\n9876543210\n", reason=reason)
        assert not report.applied
        assert _lines(report) == [0]
    assert Suppression.objects.count() == 0


# --- quoting and ragged rows


def test_an_unterminated_quote_in_a_consent_file_is_a_bad_row() -> None:
    text = CONSENT_HEADER + _consent_row() + _consent_row("9876500001", '"R-2').rstrip("\n")
    text += "\n" + _consent_row("9876500002", "R-3")

    report = _consents(text)

    assert not report.applied
    assert 3 in _lines(report)
    assert Consent.objects.count() == 0


def test_a_consent_row_with_too_few_fields_is_rejected_with_its_line() -> None:
    header = "number,sender,scope,given_at,reference,expires_at,revoked_at\n"
    whole = f"9876500000,1101SHOP,promotional,{GIVEN},R-1,,\n"
    short = f"9876500001,1101SHOP,promotional,{GIVEN},R-2\n"  # expires_at, revoked_at missing
    report = _consents(header + whole + short)

    assert not report.applied
    assert _lines(report) == [3]
    assert Consent.objects.count() == 0


def test_a_suppression_row_with_too_few_fields_is_rejected_with_its_line() -> None:
    report = _suppressions("number,sender,reason\n9876543210,1101SHOP,asked\n9876543211\n")

    assert not report.applied
    assert _lines(report) == [3]
    assert Suppression.objects.count() == 0


# --- duplicates and conflicts


def test_identical_consent_rows_are_duplicates_reported_with_their_lines() -> None:
    report = _consents(CONSENT_HEADER + _consent_row() * 10_000)

    assert report.applied
    assert (report.created, report.updated) == (1, 0)
    assert report.duplicates == 9_999
    assert report.duplicate_lines[:2] == [(3, 2), (4, 2)]
    assert "9999 duplicate" in report.summary()
    assert AuditEntry.objects.filter(kind="consent_added").count() == 1


def test_a_same_reference_with_other_values_in_one_consent_file_is_a_conflict() -> None:
    later = _consent_row(given_at="2026-11-02T00:00:00+05:30")
    report = _consents(CONSENT_HEADER + _consent_row() + later)

    assert not report.applied
    assert _lines(report) == [3]
    assert "line 2" in report.errors[0][1]
    assert Consent.objects.count() == 0


def test_identical_suppression_rows_are_duplicates_not_unchanged() -> None:
    report = _suppressions("number,reason\n" + "9876543210,asked\n" * 500 + "09876543210,asked\n")

    assert report.applied
    assert (report.created, report.unchanged) == (1, 0)
    assert report.duplicates == 500
    assert report.duplicate_lines[-1] == (502, 2)


def test_one_number_twice_with_different_reasons_is_a_conflict() -> None:
    report = _suppressions("number,reason\n9876543210,asked\n+919876543210,complaint\n")

    assert not report.applied
    assert _lines(report) == [3]
    assert Suppression.objects.count() == 0


def test_one_number_for_two_scopes_is_two_suppressions() -> None:
    report = _suppressions("number,sender\n9876543210,1101SHOP\n9876543210,\n9876543210,1101BANK\n")

    assert report.applied and report.created == 3


# --- the bulk path


def test_a_suppression_file_is_read_from_a_binary_stream() -> None:
    stream = io.BytesIO(b"number\n9876543210\n9876543211\n")

    report = suppressions_import(data=stream, actor="cli:test")

    assert report.applied and report.created == 2


def test_a_large_suppression_file_takes_a_bounded_number_of_queries(
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    rows = "".join(f"98765{i:05d},bulk\n" for i in range(3_000))
    with django_assert_max_num_queries(40):
        report = _suppressions("number,reason\n" + rows)

    assert report.applied and report.created == 3_000


def test_every_suppression_of_a_file_is_audited_with_its_actor_and_the_chain_verifies() -> None:
    before, _ = suppression_add(number="9876500005", actor="cli:before")
    lifted, _ = suppression_add(number="9876500006", actor="cli:before")
    suppression_lift(suppression_id=lifted.pk, actor="cli:before", reason="consent renewed")
    rows = "".join(f"98765{i:05d},bulk\n" for i in range(2_500))  # includes ...005 and ...006

    report = suppressions_import(data=("number,reason\n" + rows).encode(), actor="cli:ravi")

    assert report.applied
    assert (report.created, report.unchanged) == (2_499, 1)  # ...005 is already active
    added = AuditEntry.objects.filter(kind="suppression_added", actor="cli:ravi")
    assert added.count() == 2_499
    ids = set(added.values_list("detail__suppression_id", flat=True))
    assert ids == set(
        Suppression.objects.filter(created_by="cli:ravi").values_list("id", flat=True)
    )
    assert Suppression.objects.filter(number="+919876500006", lifted_at__isnull=True).count() == 1
    assert Suppression.objects.filter(number="+919876500005").get() == before
    assert audit_verify().intact


def test_a_rejected_suppression_file_leaves_no_row_and_no_audit_entry() -> None:
    rows = "".join(f"98765{i:05d},bulk\n" for i in range(12_000)) + "not-a-number,x\n"

    report = _suppressions("number,reason\n" + rows)

    assert not report.applied and _lines(report) == [12_002]
    assert Suppression.objects.count() == 0
    assert not AuditEntry.objects.filter(kind="suppression_added").exists()


def test_the_audit_chain_lock_is_not_held_while_a_file_is_being_read() -> None:
    """Every call's decision waits for the chain's lock, so a long import takes it only for
    its audit entries, at the end."""
    held: list[int] = []

    def requests() -> Iterator[SuppressionRequest]:
        for i in range(BATCH_SIZE + 10):  # the first batch is written before the last rows
            if i == BATCH_SIZE + 5:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND pid = pg_backend_pid() AND objid = %s",
                        [CHAIN_LOCK_KEY & 0xFFFFFFFF],
                    )
                    held.append(cursor.fetchone()[0])
            yield SuppressionRequest(f"+9198765{i:05d}", None, "bulk")

    counts = suppressions_add_many(requests=requests(), actor="cli:test")

    assert counts.created == BATCH_SIZE + 10 and held == [0]
    assert AuditEntry.objects.filter(kind="suppression_added").count() == BATCH_SIZE + 10


@pytest.mark.parametrize(
    ("data", "line", "why"),
    [
        (b"number,remarks\n9876543210,x\n", 1, "unknown column"),
        (b"number\n9876543210\n98765\xff43211\n", 3, "not UTF-8"),
        (b"", 0, "empty"),
    ],
)
def test_a_suppression_file_that_cannot_be_read_changes_nothing(
    data: bytes, line: int, why: str
) -> None:
    report = _suppressions(data)

    assert not report.applied and report.errors[0][0] == line and why in report.errors[0][1]
    assert Suppression.objects.count() == 0
