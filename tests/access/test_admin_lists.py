"""The admin's lists as an operator reads them (issue 13, point 5): attempts with reasons and MOS,
the audit log newest first with its reasons, campaign and sender filters and an "Export all
filtered" link, a contact's attempts on its page, its next attempt on the callee's clock, and a
disposition labelled the same way everywhere."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import cast

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from campaigns.models import Disposition
from compliance.audit import audit_append
from compliance.models import AuditEntry
from tests.helpers.admin import admin_form_data
from tests.helpers.factories import make_call_attempt, make_contact, make_sender, make_user

AUDIT_LIST = "admin:compliance_auditentry_changelist"


def _blocked(campaign_id: int, sender: str, *reasons: str) -> AuditEntry:
    return audit_append(
        kind=AuditEntry.Kind.DECISION, number="+919876543210", campaign_id=campaign_id,
        sender_dlt_id=sender, purpose="promotional", allowed=False, reasons=list(reasons),
    )  # fmt: skip


@pytest.fixture
def log() -> list[AuditEntry]:
    first, second = make_sender(), make_sender()
    return [
        _blocked(1, first.dlt_entity_id, "suppressed"),
        _blocked(2, second.dlt_entity_id, "dnd_fully_blocked", "outside_calling_hours"),
        _blocked(1, second.dlt_entity_id, "frequency_cap"),
    ]


def _export_links(page: str) -> dict[str, str]:
    """The "Export all filtered (FMT)" links of the page, by format."""
    links = {}
    for fmt in ("CSV", "JSONL"):
        label = f"Export all filtered ({fmt})"
        if label in page:
            href = page[: page.index(label)].rsplit('href="', 1)[1].split('"', 1)[0]
            links[fmt] = href.replace("&amp;", "&")
    return links


@pytest.mark.django_db
def test_the_audit_list_is_newest_first_with_its_reasons_in_words(
    admin_client: Client, log: list[AuditEntry]
) -> None:
    # Before: ordered by id (oldest first), and no reasons column at all.
    response = admin_client.get(reverse(AUDIT_LIST))

    assert [e.pk for e in response.context["cl"].result_list] == [e.pk for e in reversed(log)]
    page = response.content.decode()
    assert "on the DND registry (fully blocked), outside the calling window" in page
    assert "daily call limit reached" in page


@pytest.mark.django_db
def test_the_audit_list_filters_by_campaign_and_by_sender(
    admin_client: Client, log: list[AuditEntry]
) -> None:
    # Before: neither filter was offered (the parameters narrowed the list only when typed in).
    response = admin_client.get(reverse(AUDIT_LIST), {"campaign_id": "1"})

    assert {e.pk for e in response.context["cl"].result_list} == {log[0].pk, log[2].pk}
    titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"campaign", "sender"} <= titles
    page = response.content.decode()
    assert "campaign 2" in page and f"({log[1].sender_dlt_id})" in page
    by_sender = admin_client.get(reverse(AUDIT_LIST), {"sender_dlt_id": log[1].sender_dlt_id})
    assert {e.pk for e in by_sender.context["cl"].result_list} == {log[1].pk, log[2].pk}


@pytest.mark.django_db
def test_export_all_filtered_downloads_exactly_the_filtered_entries(
    admin_client: Client, log: list[AuditEntry]
) -> None:
    # Before: no such link on the page.
    page = admin_client.get(reverse(AUDIT_LIST), {"campaign_id": "1"}).content.decode()

    links = _export_links(page)
    assert set(links) == {"CSV", "JSONL"}
    response = admin_client.get(links["CSV"])
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(cast(Iterator[bytes], response.streaming_content)).decode()
    assert [int(row["id"]) for row in csv.DictReader(io.StringIO(body))] == [log[0].pk, log[2].pk]


@pytest.mark.django_db
def test_only_who_may_export_sees_export_all(client: Client, log: list[AuditEntry]) -> None:
    viewer = make_user(perms=("compliance.view_auditentry",))
    exporter = make_user(perms=("compliance.view_auditentry", "compliance.export_auditentry"))

    client.force_login(viewer)
    assert _export_links(client.get(reverse(AUDIT_LIST)).content.decode()) == {}
    client.force_login(exporter)
    assert set(_export_links(client.get(reverse(AUDIT_LIST)).content.decode())) == {"CSV", "JSONL"}


@pytest.mark.django_db
def test_the_attempt_list_shows_campaign_reasons_and_mos(admin_client: Client) -> None:
    make_call_attempt(status="blocked", disposition=Disposition.BLOCKED, reasons=["no_consent"])
    make_call_attempt(
        status="ended", disposition=Disposition.NO_ANSWER, sip_code=480, mos=4.31, pdd_ms=2100
    )

    response = admin_client.get(reverse("admin:campaigns_callattempt_changelist"))

    # Before: neither reasons, MOS nor campaign was a column.
    page = response.content.decode()
    assert "no explicit consent on record" in page
    assert "4.31" in page and "2100" in page
    assert "No Answer" in page and "no_answer</td>" not in page
    headers = {str(h["text"]) for h in response.context["result_headers"]}
    assert {"campaign", "reasons", "MOS"} <= headers


@pytest.mark.django_db
def test_a_contacts_page_lists_its_attempts_newest_first(admin_client: Client) -> None:
    contact = make_contact(last_disposition=Disposition.NO_ANSWER)
    older = make_call_attempt(contact=contact, disposition=Disposition.BUSY, sip_code=486)
    newer = make_call_attempt(
        contact=contact, disposition=Disposition.BLOCKED, reasons=["suppressed"]
    )

    response = admin_client.get(reverse("admin:campaigns_contact_change", args=[contact.pk]))

    # Before: the page had no attempts on it.
    page = response.content.decode()
    shown = [form.instance.pk for form in response.context["inline_admin_formsets"][0].formset]
    assert shown == [newer.pk, older.pk]
    assert "on the suppression list" in page and "486" in page
    assert "No Answer" in page  # the contact's last disposition, in the attempts' words


@pytest.mark.django_db
def test_a_contacts_next_attempt_shows_on_the_callees_clock_too(admin_client: Client) -> None:
    when = dt.datetime(2026, 12, 4, 6, 0, tzinfo=dt.UTC)
    contact = make_contact(number="+971501234567", next_attempt_at=when)
    assert contact.time_zone == "Asia/Dubai"

    page = admin_client.get(
        reverse("admin:campaigns_contact_change", args=[contact.pk])
    ).content.decode()
    listing = admin_client.get(reverse("admin:campaigns_contact_changelist")).content.decode()

    # Before: only the operator's clock (11:30:00 IST) was shown.
    for text in (page, listing):
        assert "2026-12-04 11:30:00 IST" in text
        assert "2026-12-04 10:00:00 +04 (Asia/Dubai, callee)" in text


@pytest.mark.django_db
def test_a_contacts_dialing_state_stays_out_of_its_form(admin_client: Client) -> None:
    contact = make_contact(last_disposition=Disposition.BUSY)
    url = reverse("admin:campaigns_contact_change", args=[contact.pk])

    no_attempts = {"call_attempts-TOTAL_FORMS": "0", "call_attempts-INITIAL_FORMS": "0"}
    forged = {"last_disposition": "answered", "name": "Asha"}

    response = admin_client.post(url, admin_form_data(admin_client, url) | no_attempts | forged)

    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.name, contact.last_disposition) == ("Asha", Disposition.BUSY)
