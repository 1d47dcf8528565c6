"""Erasing a person's number (DPDP): gone from every table in clear text, the audit chain still
verifies, and the person is never called again; the retention period does the same per campaign
without the suppression."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from campaigns.models import AttemptStatus, CampaignStatus, Contact
from campaigns.services.erasure import retention_apply
from compliance.audit import audit_decision, audit_outcome
from compliance.imports import consents_import
from compliance.keys import number_token
from compliance.models import AuditEntry, Erasure, Suppression
from compliance.services import decide
from compliance.verify import audit_verify
from tests.helpers.factories import make_call_attempt, make_campaign, make_contact

pytestmark = pytest.mark.django_db

NUMBER = "+919876543210"
AT = dt.datetime(2026, 5, 4, 6, 30, tzinfo=dt.UTC)  # 12:00 in India


def _check(number: str, *args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("check_number", number, *args, "--at", AT.isoformat(), "--json", stdout=out)
    return dict(json.loads(out.getvalue()))


def _history_of(number: str, admin_client: Client) -> dict[str, Any]:
    """A person's footprint: a contact with custom fields, a finished attempt with its decision
    and outcome in the audit log, a consent, a suppression added in the admin."""
    campaign = make_campaign()
    contact = make_contact(campaign=campaign, number=number, name="Asha Rao",
                           fields={"plan": "gold", "city": "Pune"})  # fmt: skip
    attempt = make_call_attempt(contact=contact, status=AttemptStatus.ENDED, disposition="busy")
    queued = make_call_attempt(contact=contact)  # not taken by any engine yet
    decision = decide(number=number, purpose="transactional",
                      sender_dlt_id=campaign.sender.dlt_entity_id, sector="other",
                      cli="+911600123456", at=AT)  # fmt: skip
    audit_decision(decision=decision, attempt_id=attempt.pk, campaign_id=campaign.pk,
                   sender_dlt_id=campaign.sender.dlt_entity_id)  # fmt: skip
    audit_outcome(attempt_id=attempt.pk, campaign_id=campaign.pk,
                  sender_dlt_id=campaign.sender.dlt_entity_id, number=number,
                  purpose="transactional", detail={"disposition": "busy"})  # fmt: skip
    consents_import(
        data=(
            "number,sender,scope,given_at,expires_at,revoked_at,reference\n"
            f"{number},{campaign.sender.dlt_entity_id},promotional,2026-05-01T00:00:00Z,,,DCA-7\n"
        ).encode(),
        actor="cli:ops",
    )
    response = admin_client.post(
        reverse("admin:compliance_suppression_add"),
        {"number": number[3:], "sender": campaign.sender.pk, "reason": "asked"},
    )
    assert response.status_code == 302
    return {"campaign": campaign, "contact": contact, "attempt": attempt, "queued": queued}


def test_erase_number_leaves_no_clear_text_and_the_chain_verifies(admin_client: Client) -> None:
    history = _history_of(NUMBER, admin_client)
    assert LogEntry.objects.filter(object_repr__contains="9876543210").exists()

    out = io.StringIO()
    call_command("erase_number", "09876543210", "--reason", "DPDP request 17", "--by", "meera",
                 stdout=out)  # fmt: skip

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert "9876543210" not in dump.getvalue()
    assert "Asha Rao" not in dump.getvalue() and "Pune" not in dump.getvalue()
    contact = Contact.objects.get(pk=history["contact"].pk)
    assert (contact.name, contact.fields, contact.status) == ("", {}, "done")
    queued = history["queued"]
    queued.refresh_from_db()
    assert (queued.status, queued.reasons) == (AttemptStatus.BLOCKED, ["erased"])

    report = audit_verify()
    assert report.intact, report.problem
    token = number_token(NUMBER)
    erasure = Erasure.objects.get()
    assert (erasure.number_token, erasure.requested_by) == (token, "cli:meera")
    assert erasure.counts["contacts"] == 1 and erasure.counts["audit_entries"] >= 3
    kinds = list(AuditEntry.objects.filter(number_token=token).values_list("kind", flat=True))
    assert kinds[-2:] == ["erasure", "suppression_added"]
    assert not AuditEntry.objects.filter(number_token=token).exclude(number="").exists()
    assert f"erasure {erasure.pk}" in out.getvalue()


@pytest.mark.parametrize("purpose", ["promotional", "service_implicit", "transactional"])
def test_an_erased_number_is_never_called_again(admin_client: Client, purpose: str) -> None:
    call_command("erase_number", NUMBER, stdout=io.StringIO())
    result = _check("9876543210", "--purpose", purpose, "--cli", "+911400123456", "--category",
                    "3")  # fmt: skip
    assert "erased" in result["reasons"]
    assert result["allowed"] is False


def test_an_erased_number_uploaded_again_is_blocked_at_the_check_and_the_scrub() -> None:
    call_command("erase_number", NUMBER, stdout=io.StringIO())
    campaign = make_campaign(purpose="transactional")
    make_contact(campaign=campaign, number=NUMBER)
    decision = decide(number=NUMBER, purpose="transactional",
                      sender_dlt_id=campaign.sender.dlt_entity_id, sector="other",
                      cli="+911600123456", at=AT)  # fmt: skip
    assert "erased" in decision.reasons

    from campaigns.services.preflight import campaign_preflight

    assert campaign_preflight(campaign_id=campaign.pk).by_reason.get("erased") == 1


def test_lifting_the_erasure_suppression_is_the_only_way_back(admin_client: Client) -> None:
    call_command("erase_number", NUMBER, stdout=io.StringIO())
    row = Suppression.objects.get(erasure=True)
    assert row.number == "" and row.sender is None
    call_command("suppress", "--lift", str(row.pk), "--reason", "person asked to be called",
                 stdout=io.StringIO())  # fmt: skip
    assert "erased" not in _check(NUMBER, "--purpose", "transactional")["reasons"]
    assert AuditEntry.objects.filter(kind="suppression_lifted").get().detail["erasure"] is True


def test_erasure_in_the_admin_needs_confirmation_and_names_the_officer(
    admin_client: Client,
) -> None:
    url = reverse("admin:compliance_erasure_add")
    unconfirmed = admin_client.post(url, {"number": "9876543210", "reason": "ticket 9"})
    assert unconfirmed.status_code == 200 and not Erasure.objects.exists()
    invalid = admin_client.post(url, {"number": "98765", "confirm": "on"})
    assert "is not a valid phone number" in invalid.content.decode()

    done = admin_client.post(url, {"number": "9876543210", "reason": "ticket 9", "confirm": "on"})
    assert done.status_code == 302
    erasure = Erasure.objects.get()
    assert erasure.requested_by == "user:admin"
    assert not LogEntry.objects.filter(change_message__contains="9876543210").exists()
    assert not LogEntry.objects.filter(object_repr__contains="9876543210").exists()


def test_erasure_refuses_an_invalid_number() -> None:
    with pytest.raises(CommandError, match="is not a valid number"):
        call_command("erase_number", "12345", stdout=io.StringIO())
    assert not Erasure.objects.exists() and not Suppression.objects.exists()


# Retention


def _finished(days_ago: int) -> Any:
    campaign = make_campaign(status=CampaignStatus.COMPLETED)
    campaign.finished_at = timezone.now() - dt.timedelta(days=days_ago)
    campaign.save(update_fields=["finished_at"])
    contact = make_contact(campaign=campaign, name="Ravi", fields={"plan": "silver"})
    attempt = make_call_attempt(contact=contact, status=AttemptStatus.ENDED)
    audit_outcome(attempt_id=attempt.pk, campaign_id=campaign.pk,
                  sender_dlt_id=campaign.sender.dlt_entity_id, number=contact.number,
                  purpose=campaign.purpose, detail={})  # fmt: skip
    return campaign, contact


@override_settings(DATA_RETENTION_DAYS=365)
def test_retention_erases_finished_campaigns_past_the_period_once() -> None:
    old, old_contact = _finished(400)
    recent, recent_contact = _finished(30)

    assert retention_apply(actor="system:test") == 1
    assert retention_apply(actor="system:test") == 0

    old_contact.refresh_from_db()
    recent_contact.refresh_from_db()
    assert old_contact.number.startswith("erased-") and old_contact.name == ""
    assert recent_contact.name == "Ravi"
    assert not AuditEntry.objects.filter(campaign_id=old.pk, kind="outcome").get().number
    assert AuditEntry.objects.filter(campaign_id=recent.pk, kind="outcome").get().number
    entry = AuditEntry.objects.get(kind="retention")
    assert (entry.campaign_id, entry.actor, entry.detail["days"]) == (old.pk, "system:test", 365)
    assert audit_verify().intact
    assert not Suppression.objects.exists()  # retention is not an opt-out


@override_settings(DATA_RETENTION_DAYS=100)
def test_a_retention_period_under_a_year_is_refused() -> None:
    errors = [e for e in run_checks() if e.id == "compliance.E001"]
    assert errors and "365" in errors[0].msg
    with pytest.raises(ValueError, match="at least 365"):
        retention_apply()
