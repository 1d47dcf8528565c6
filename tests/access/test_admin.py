from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from campaigns.models import CampaignStatus, Contact, ContactList, Disposition
from compliance.models import AuditEntry
from tests.helpers.factories import make_call_attempt, make_campaign, make_contact

pytestmark = pytest.mark.django_db


def _messages(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def _act(client: Client, action: str, *campaign_ids: int) -> list[tuple[str, str]]:
    response = client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in campaign_ids]},
        follow=True,
    )
    assert response.status_code == 200
    return _messages(response)


def _upload(client: Client, campaign_id: int, csv: bytes, **extra: str) -> str:
    response = client.post(
        reverse("admin:campaigns_campaign_upload_contacts", args=[campaign_id]),
        {"file": SimpleUploadedFile("leads.csv", csv), "list_name": "May leads", **extra},
    )
    assert response.status_code == 200
    return response.content.decode()


def test_campaign_list_shows_status_and_counts(admin_client: Client) -> None:
    campaign = make_campaign(name="Renewals")
    make_call_attempt(contact=make_contact(campaign=campaign))
    make_contact(campaign=campaign)

    response = admin_client.get(reverse("admin:campaigns_campaign_changelist"))

    assert response.status_code == 200
    row = response.context["cl"].result_list.get(pk=campaign.pk)
    assert (row.n_contacts, row.n_pending, row.n_attempts) == (2, 2, 1)
    assert "Renewals" in response.content.decode()


def test_campaign_change_page_shows_disposition_and_contact_counts(admin_client: Client) -> None:
    campaign = make_campaign()
    for disposition in (Disposition.ANSWERED, Disposition.ANSWERED, Disposition.BUSY):
        make_call_attempt(contact=make_contact(campaign=campaign), disposition=disposition)
    make_call_attempt(contact=make_contact(campaign=campaign))

    response = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Dispositions" in page
    # Dispositions in the attempts' words, as the lists show them.
    assert "<tr><td>Answered</td><td>2</td></tr>" in page
    assert "<tr><td>Busy</td><td>1</td></tr>" in page
    assert "<tr><td>In Progress</td><td>1</td></tr>" in page
    assert "<tr><td>pending</td><td>4</td></tr>" in page
    assert reverse("admin:campaigns_campaign_upload_contacts", args=[campaign.pk]) in page


def test_lifecycle_actions_move_the_campaign_through_its_states(admin_client: Client) -> None:
    campaign = make_campaign()

    for action, done, status in [
        ("start_campaigns", "Started", CampaignStatus.RUNNING),
        ("pause_campaigns", "Paused", CampaignStatus.PAUSED),
        ("resume_campaigns", "Resumed", CampaignStatus.RUNNING),
        ("stop_campaigns", "Stopped", CampaignStatus.STOPPED),
    ]:
        assert _act(admin_client, action, campaign.pk) == [("success", f"{done} 1 campaign(s).")]
        campaign.refresh_from_db()
        assert campaign.status == status


def test_an_invalid_transition_shows_an_error_per_campaign_and_changes_nothing(
    admin_client: Client,
) -> None:
    draft = make_campaign(name="Draft one")
    paused = make_campaign(name="Paused one", status=CampaignStatus.PAUSED)

    messages = _act(admin_client, "resume_campaigns", draft.pk, paused.pk)

    assert ("success", "Resumed 1 campaign(s).") in messages
    errors = [text for level, text in messages if level == "error"]
    assert len(errors) == 1
    assert errors[0].startswith("Draft one: ") and "cannot go to running" in errors[0]
    draft.refresh_from_db()
    paused.refresh_from_db()
    assert (draft.status, paused.status) == (CampaignStatus.DRAFT, CampaignStatus.RUNNING)


def test_starting_a_campaign_without_caller_id_reports_why(admin_client: Client) -> None:
    campaign = make_campaign(name="No CLI", caller_ids=[])

    messages = _act(admin_client, "start_campaigns", campaign.pk)

    assert messages == [("error", f"No CLI: campaign {campaign.pk} has no active caller ID")]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_upload_view_imports_the_csv_and_shows_the_report(admin_client: Client) -> None:
    campaign = make_campaign()

    page = _upload(admin_client, campaign.pk, b"number,name\n9876543210,Asha\n9876543210,Again\n")

    assert "Imported 1 contact" in page
    assert "Contacts imported: 1" in page
    assert "<td>line 3</td>" in page
    assert ContactList.objects.get(campaign=campaign).name == "May leads"
    assert Contact.objects.get(campaign=campaign).number == "+919876543210"


def test_upload_view_shows_line_numbered_errors_and_imports_nothing(admin_client: Client) -> None:
    campaign = make_campaign()

    page = _upload(admin_client, campaign.pk, b"number\n9876543210\nnot-a-number\n12\n")

    assert "Rejected: nothing was imported" in page
    assert "<td>line 3</td><td>not-a-number</td>" in page
    assert "<td>line 4</td><td>12</td>" in page
    assert not Contact.objects.exists()
    assert not ContactList.objects.exists()


def test_upload_view_with_skip_invalid_imports_the_valid_rows(admin_client: Client) -> None:
    campaign = make_campaign()

    page = _upload(admin_client, campaign.pk, b"number\n9876543210\nbad\n", skip_invalid="on")

    assert "skipped 1 invalid row" in page
    assert Contact.objects.count() == 1


def test_upload_view_reports_a_malformed_file(admin_client: Client) -> None:
    campaign = make_campaign()

    page = _upload(admin_client, campaign.pk, b"name\nAsha\n")

    assert "no number column" in page
    assert not Contact.objects.exists()


def test_upload_view_shows_the_form_on_get(admin_client: Client) -> None:
    campaign = make_campaign()

    response = admin_client.get(
        reverse("admin:campaigns_campaign_upload_contacts", args=[campaign.pk])
    )

    assert response.status_code == 200
    assert 'type="file"' in response.content.decode()


def test_call_attempt_admin_is_read_only(admin_client: Client) -> None:
    attempt = make_call_attempt(disposition=Disposition.BUSY, sip_code=486)
    change_url = reverse("admin:campaigns_callattempt_change", args=[attempt.pk])

    assert admin_client.get(reverse("admin:campaigns_callattempt_add")).status_code == 403
    assert admin_client.get(change_url).status_code == 200  # viewable
    assert admin_client.post(change_url, {"sip_code": "200"}).status_code == 403
    delete_url = reverse("admin:campaigns_callattempt_delete", args=[attempt.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    attempt.refresh_from_db()
    assert attempt.sip_code == 486
    changelist = admin_client.get(reverse("admin:campaigns_callattempt_changelist"))
    assert "486" in changelist.content.decode()
    assert "delete_selected" not in changelist.content.decode()


def test_audit_entry_admin_is_strictly_read_only(admin_client: Client) -> None:
    entry = AuditEntry.objects.create(kind=AuditEntry.Kind.DECISION, number="+919876543210")
    change_url = reverse("admin:compliance_auditentry_change", args=[entry.pk])

    assert admin_client.get(reverse("admin:compliance_auditentry_add")).status_code == 403
    assert admin_client.post(change_url, {"number": "+910000000000"}).status_code == 403
    delete_url = reverse("admin:compliance_auditentry_delete", args=[entry.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.number == "+919876543210"
    changelist = admin_client.get(reverse("admin:compliance_auditentry_changelist"))
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.content.decode()


@pytest.mark.parametrize(
    "name",
    [
        "compliance_sender",
        "compliance_consent",
        "compliance_registryversion",
        "compliance_suppression",
        "compliance_auditentry",
        "campaigns_trunk",
        "campaigns_callerid",
        "campaigns_campaign",
        "campaigns_contactlist",
        "campaigns_contact",
        "campaigns_callattempt",
    ],
)
def test_every_changelist_renders(admin_client: Client, name: str) -> None:
    make_call_attempt()

    assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_contact_admin_searches_by_number_and_filters_by_status(admin_client: Client) -> None:
    campaign = make_campaign()
    make_contact(campaign=campaign, number="+919876543210")
    make_contact(campaign=campaign, number="+919876500000", status="done")
    url = reverse("admin:campaigns_contact_changelist")

    found = admin_client.get(url, {"q": "9876543210"}).context["cl"].result_list
    pending = admin_client.get(url, {"status__exact": "pending"}).context["cl"].result_list

    assert [c.number for c in found] == ["+919876543210"]
    assert [c.number for c in pending] == ["+919876543210"]


def test_campaign_add_page_renders_without_upload_button(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:campaigns_campaign_add"))

    assert response.status_code == 200
    assert "Save the campaign first." in response.content.decode()


def test_upload_view_for_an_unknown_campaign_is_404(admin_client: Client) -> None:
    url = reverse("admin:campaigns_campaign_upload_contacts", args=[999_999])

    assert admin_client.get(url).status_code == 404


def test_upload_view_needs_an_admin_login(client: Client) -> None:
    campaign = make_campaign()
    url = reverse("admin:campaigns_campaign_upload_contacts", args=[campaign.pk])

    response = client.post(url, {"file": SimpleUploadedFile("a.csv", b"number\n9876543210\n")})

    assert response.status_code == 302
    assert not Contact.objects.exists()
