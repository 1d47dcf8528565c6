"""Every write to compliance data goes through an audited service naming who made it: the admin,
the commands and the files alike; numbers are normalised in every form; revocations and
suppressions are never undone silently."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import CallerId
from campaigns.services.one_off_call import OneOffCallError
from campaigns.services.one_off_call import one_off_call_prepare as prepare_one_off_call
from compliance.imports import consents_import
from compliance.keys import number_token
from compliance.models import AuditEntry, Consent, Sender, Suppression
from compliance.suppressions import suppression_add
from tests.helpers.factories import make_sender

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.UTC)


def _check(number: str, *args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("check_number", number, *args, "--json", stdout=out)
    return dict(json.loads(out.getvalue()))


def _entries(kind: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(kind=kind).order_by("id"))


# Suppressions


def test_suppression_added_in_the_admin_as_national_number_blocks_the_e164_number(
    admin_client: Client,
) -> None:
    sender = make_sender()
    response = admin_client.post(
        reverse("admin:compliance_suppression_add"),
        {"number": "9876543210", "sender": sender.pk, "reason": "asked on the phone"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    row = Suppression.objects.get()
    assert (row.number, row.number_token) == ("+919876543210", number_token("+919876543210"))
    result = _check("9876543210", "--purpose", "service_implicit", "--sender",
                    sender.dlt_entity_id, "--at", "2026-05-04T12:00:00+05:30")  # fmt: skip
    assert "suppressed" in result["reasons"]
    (entry,) = _entries(AuditEntry.Kind.SUPPRESSION_ADDED)
    assert (entry.actor, entry.number, entry.sender_dlt_id) == (
        "user:admin", "+919876543210", sender.dlt_entity_id,
    )  # fmt: skip
    assert entry.detail["suppression_id"] == row.pk


@pytest.mark.parametrize(
    "number",
    [
        "12345",
        "+1 555",
        "98765 43211x",  # phonenumbers would drop the "x" (an extension) and accept it
        "9876543210 ext 12",
        "+91 98765 43210;ext=1",
        "98765-FLOWER",
        "\u0669\u0668\u0667\u0666\u0665\u0664\u0663\u0662\u0661\u0660",  # Arabic-Indic
        "98765\u00a043210",
    ],
)
def test_invalid_number_in_the_suppression_form_is_a_form_error(
    admin_client: Client, number: str
) -> None:
    response = admin_client.post(
        reverse("admin:compliance_suppression_add"), {"number": number, "reason": "x"}
    )
    assert response.status_code == 200
    assert "is not a valid phone number" in response.content.decode()
    assert not Suppression.objects.exists()
    assert not AuditEntry.objects.exists()


def test_lifting_a_suppression_keeps_the_row_and_audits_who_and_why(admin_client: Client) -> None:
    sender = make_sender()
    row, _ = suppression_add(
        number="9876543210", actor="cli:ops", sender_dlt_id=sender.dlt_entity_id
    )
    url = reverse("admin:compliance_suppression_changelist")
    asked = admin_client.post(url, {"action": "lift_suppressions", "_selected_action": [row.pk]})
    assert (
        asked.status_code == 200 and "why this number may be called again" in asked.content.decode()
    )
    assert Suppression.objects.get().lifted_at is None  # not before the reason is given

    done = admin_client.post(
        url,
        {"action": "lift_suppressions", "_selected_action": [row.pk], "apply": "1",
         "reason": "consent renewed, ticket 42"},
        follow=True,
    )  # fmt: skip
    assert done.status_code == 200
    row.refresh_from_db()
    assert row.lifted_at is not None and row.lifted_by == "user:admin"
    (entry,) = _entries(AuditEntry.Kind.SUPPRESSION_LIFTED)
    assert (entry.actor, entry.detail["reason"]) == ("user:admin", "consent renewed, ticket 42")
    result = _check("+919876543210", "--purpose", "service_implicit", "--sender",
                    sender.dlt_entity_id, "--at", "2026-05-04T12:00:00+05:30")  # fmt: skip
    assert "suppressed" not in result["reasons"]


def test_suppressions_are_never_deleted_or_edited_in_the_admin(admin_client: Client) -> None:
    row, _ = suppression_add(number="9876543210", actor="cli:ops")
    changelist = admin_client.get(reverse("admin:compliance_suppression_changelist"))
    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    forged = admin_client.post(reverse("admin:compliance_suppression_delete", args=[row.pk]),
                               {"post": "yes"})  # fmt: skip
    assert forged.status_code == 403
    edit = admin_client.post(
        reverse("admin:compliance_suppression_change", args=[row.pk]),
        {"number": "9876543219", "reason": "typo"},
    )
    assert edit.status_code == 403
    assert Suppression.objects.get().number == "+919876543210"


def test_suppress_command_names_its_actor_and_can_lift(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("suppress", "09876543210", "--by", "asha", stdout=out)
    row = Suppression.objects.get()
    assert row.number == "+919876543210" and row.created_by == "cli:asha"
    call_command("suppress", "--lift", str(row.pk), "--reason", "mistake", "--by", "asha",
                 stdout=out)  # fmt: skip
    kinds = [(e.kind, e.actor) for e in AuditEntry.objects.order_by("id")]
    assert kinds == [("suppression_added", "cli:asha"), ("suppression_lifted", "cli:asha")]


# Consents


def _consent_csv(*rows: str) -> bytes:
    header = "number,sender,scope,given_at,expires_at,revoked_at,reference\n"
    return (header + "".join(r + "\n" for r in rows)).encode()


def test_reimporting_an_older_consent_file_never_unrevokes() -> None:
    sender = make_sender()
    dlt = sender.dlt_entity_id
    original = _consent_csv(f"9876543210,{dlt},promotional,2026-05-01T00:00:00Z,,,DCA-1")
    revocation = _consent_csv(
        f"9876543210,{dlt},promotional,2026-05-01T00:00:00Z,,2026-05-03T00:00:00Z,DCA-1"
    )
    assert consents_import(data=original, actor="cli:ops").applied
    assert consents_import(data=revocation, actor="cli:ops").applied

    report = consents_import(data=original, actor="cli:ops")

    assert not report.applied
    assert report.errors == [
        (
            2,
            "reference 'DCA-1' was revoked at 2026-05-03T00:00:00+00:00: a revocation is "
            "permanent (a renewed consent needs a new reference)",
        )
    ]
    assert Consent.objects.get().revoked_at == dt.datetime(2026, 5, 3, tzinfo=dt.UTC)
    kinds = [e.kind for e in AuditEntry.objects.order_by("id")]
    assert kinds == ["consent_added", "consent_revoked"]


def test_a_consent_reference_keeps_its_number_and_scope() -> None:
    sender = make_sender()
    dlt = sender.dlt_entity_id
    consents_import(
        data=_consent_csv(f"9876543210,{dlt},promotional,2026-05-01T00:00:00Z,,,DCA-1"),
        actor="cli:ops",
    )
    report = consents_import(
        data=_consent_csv(
            f"9876543211,{dlt},promotional,2026-05-01T00:00:00Z,,,DCA-1",
            f"9876543210,{dlt},service_explicit,2026-05-01T00:00:00Z,,,DCA-1",
        ),
        actor="cli:ops",
    )
    assert [line for line, _ in report.errors] == [2, 3]
    assert Consent.objects.get().number == "+919876543210"


def test_identical_reimport_is_unchanged_and_not_audited_again() -> None:
    sender = make_sender()
    data = _consent_csv(
        f"9876543210,{sender.dlt_entity_id},promotional,2026-05-01T00:00:00Z,,,DCA-1"
    )
    consents_import(data=data, actor="cli:ops")
    report = consents_import(data=data, actor="cli:ops")
    assert (report.applied, report.created, report.updated, report.unchanged) == (True, 0, 0, 1)
    assert AuditEntry.objects.count() == 1


def test_consent_added_and_revoked_in_the_admin_is_audited(admin_client: Client) -> None:
    sender = make_sender()
    response = admin_client.post(
        reverse("admin:compliance_consent_add"),
        {"number": "098765 43210", "sender": sender.pk, "scope": "promotional",
         "given_at_0": "2026-05-01", "given_at_1": "10:00:00", "reference": "DCA-9"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    consent = Consent.objects.get()
    assert consent.number == "+919876543210"

    admin_client.post(
        reverse("admin:compliance_consent_changelist"),
        {"action": "revoke_now", "_selected_action": [consent.pk]},
    )
    consent.refresh_from_db()
    assert consent.revoked_at is not None
    kinds = [(e.kind, e.actor) for e in AuditEntry.objects.order_by("id")]
    assert kinds == [("consent_added", "user:admin"), ("consent_revoked", "user:admin")]


def test_consent_edits_are_refused_in_the_admin(admin_client: Client) -> None:
    sender = make_sender()
    consents_import(
        data=_consent_csv(
            f"9876543210,{sender.dlt_entity_id},promotional,2026-05-01T00:00:00Z,,"
            "2026-05-02T00:00:00Z,DCA-1"
        ),
        actor="cli:ops",
    )
    consent = Consent.objects.get()
    response = admin_client.post(
        reverse("admin:compliance_consent_change", args=[consent.pk]),
        {"number": consent.number, "sender": sender.pk, "scope": "promotional",
         "given_at_0": "2026-05-01", "given_at_1": "00:00:00", "reference": "DCA-1",
         "revoked_at_0": "", "revoked_at_1": ""},
    )  # fmt: skip
    assert response.status_code == 403
    consent.refresh_from_db()
    assert consent.revoked_at is not None


# Registry loads and senders


def test_registry_load_is_audited_with_its_actor(tmp_path: Path) -> None:
    path = tmp_path / "ncpr.csv"
    path.write_text("number,preferences\n9876543210,0\n9876543211,1;3\n")
    call_command("load_registry", str(path), "--as-of", "2026-05-04T06:00:00Z",
                 "--by", "ravi", stdout=io.StringIO())  # fmt: skip
    (entry,) = _entries(AuditEntry.Kind.REGISTRY_LOADED)
    assert entry.actor == "cli:ravi"
    assert (entry.detail["rows_read"], entry.detail["entries"], entry.detail["kind"]) == (
        2, 2, "full",
    )  # fmt: skip


def test_sender_changes_are_audited_and_its_dlt_id_is_fixed(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:compliance_sender_add"),
        {"dlt_entity_id": "1101AAA", "name": "Acme", "sector": "other"},
    )
    assert response.status_code == 302
    sender = Sender.objects.get()
    admin_client.post(
        reverse("admin:compliance_sender_change", args=[sender.pk]),
        {"dlt_entity_id": "1101BBB", "name": "Acme Bank", "sector": "bfsi"},
    )
    sender.refresh_from_db()
    assert (sender.dlt_entity_id, sender.sector) == ("1101AAA", "bfsi")
    entries = _entries(AuditEntry.Kind.SENDER_CHANGED)
    assert [e.detail["changed"] for e in entries][1] == {"name": "Acme Bank", "sector": "bfsi"}
    assert entries[1].detail["before"] == {"name": "Acme", "sector": "other"}
    assert {e.actor for e in entries} == {"user:admin"}


def test_senders_are_archived_never_deleted(admin_client: Client) -> None:
    sender = make_sender()
    suppression_add(number="9876543210", actor="cli:ops", sender_dlt_id=sender.dlt_entity_id)
    forged = admin_client.post(reverse("admin:compliance_sender_delete", args=[sender.pk]),
                               {"post": "yes"})  # fmt: skip
    assert forged.status_code == 403
    admin_client.post(
        reverse("admin:compliance_sender_changelist"),
        {"action": "archive_senders", "_selected_action": [sender.pk]},
    )
    sender.refresh_from_db()
    assert sender.archived_at is not None
    assert Suppression.objects.count() == 1
    listed = admin_client.get(reverse("admin:compliance_sender_changelist"))
    assert sender.dlt_entity_id not in listed.content.decode()  # archived ones are hidden
    assert timezone.now() >= sender.archived_at


def test_caller_id_changes_and_archiving_are_audited(admin_client: Client) -> None:
    sender = make_sender()
    response = admin_client.post(
        reverse("admin:campaigns_callerid_add"),
        {"number": "+911401234567", "sender": sender.pk, "active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    caller_id = CallerId.objects.get()
    admin_client.post(
        reverse("admin:campaigns_callerid_changelist"),
        {"action": "archive_caller_ids", "_selected_action": [caller_id.pk]},
    )
    entries = _entries(AuditEntry.Kind.CALLER_ID_CHANGED)
    assert [(e.actor, e.sender_dlt_id) for e in entries] == [
        ("user:admin", sender.dlt_entity_id)
    ] * 2
    assert entries[0].detail["created"] is True
    assert entries[0].detail["changed"]["number"] == "+911401234567"
    assert set(entries[1].detail["changed"]) == {"active", "archived_at"}


def test_a_test_call_never_changes_a_senders_sector() -> None:
    sender = make_sender(sector="bfsi")
    common: dict[str, Any] = {
        "number": "9876543210", "trunk_uri": "sip:127.0.0.1:5070", "cli": "1600123456",
        "purpose": "transactional", "sender_dlt_id": sender.dlt_entity_id, "category": None,
        "ring_timeout_s": 5, "max_call_s": 5, "agent_url": "",
    }  # fmt: skip
    with pytest.raises(OneOffCallError, match="is in sector bfsi"):
        prepare_one_off_call(sector="other", **common)
    assert prepare_one_off_call(sector=None, **common)
    sender.refresh_from_db()
    assert sender.sector == "bfsi"
    assert CallerId.objects.get().number == "+911600123456"
    assert _entries(AuditEntry.Kind.CALLER_ID_CHANGED)[0].actor == "cli:dial"
