"""The pre-flight scrub at upload, at start and on demand, with its report."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.lifecycle import CampaignStateError, campaign_start
from campaigns.services.preflight import campaign_preflight, campaign_preflight_rows
from compliance.models import Consent, Suppression
from compliance.registry import registry_replace
from compliance.scrub import scrub_numbers
from tests.helpers.factories import make_caller_id, make_campaign, make_contact, make_sender

pytestmark = pytest.mark.django_db


@pytest.fixture
def promo(settings: Any) -> Campaign:
    settings.COMPLIANCE_PROMO_WINDOW = "00:00-24:00"  # the scrub's result must not hang on the hour
    sender = make_sender(sector="other")
    campaign = make_campaign(
        sender=sender,
        purpose="promotional",
        category=3,
        caller_ids=[make_caller_id(number="+911401230000", sender=sender)],
    )
    registry_replace(
        rows=[("9876500000", "0"), ("9876500001", "3"), ("9876500002", "1;2"), ("9876500003", "0")],
        as_of=timezone.now(),
    )
    for number in (
        "+919876500000",
        "+919876500001",
        "+919876500002",
        "+919876500003",
        "+919876500004",
        "+919876500005",
    ):
        make_contact(campaign=campaign, number=number)
    Suppression.objects.create(number="+919876500004", sender=sender)
    Consent.objects.create(
        number="+919876500003",
        sender=sender,
        scope="promotional",
        reference="C-1",
        given_at=timezone.now() - dt.timedelta(days=1),
    )
    return campaign


def test_scrub_counts_who_would_be_blocked_and_why(promo: Campaign) -> None:
    summary = campaign_preflight(campaign_id=promo.pk)
    assert summary.total == 6
    assert summary.blocked == 3
    assert summary.by_reason == {
        "dnd_category_blocked": 1,
        "dnd_fully_blocked": 1,
        "suppressed": 1,
    }
    assert summary.campaign_reasons == [] and summary.cli_issues == {}
    assert Campaign.objects.get(id=promo.pk).preflight == asdict(summary)
    rows = list(campaign_preflight_rows(campaign_id=promo.pk))
    assert [(n, r) for n, _, r in rows] == [
        ("+919876500000", "dnd_fully_blocked"),
        ("+919876500002", "dnd_category_blocked"),
        ("+919876500004", "suppressed"),
    ]


def test_bulk_scrub_agrees_with_the_last_moment_check(promo: Campaign) -> None:
    from compliance.services import decide

    numbers = [*promo.contacts.values_list("number", flat=True), "+14155550100", "+91123"]
    at = timezone.now()
    kwargs: dict[str, Any] = {
        "purpose": "promotional",
        "sender_dlt_id": promo.sender.dlt_entity_id,
        "sector": "other",
        "cli": "+911401230000",
        "at": at,
        "category": 3,
    }
    bulk = scrub_numbers(numbers=numbers, **kwargs)
    per_number_only = {
        "invalid_number",
        "out_of_jurisdiction",
        "suppressed",
        "dnd_fully_blocked",
        "dnd_category_blocked",
        "no_consent",
    }
    for number in numbers:
        single = [r for r in decide(number=number, **kwargs).reasons if r in per_number_only]
        assert bulk.blocked.get(number, []) == single, number


def test_stale_registry_is_reported_for_the_whole_campaign(promo: Campaign) -> None:
    registry_replace(rows=[], as_of=timezone.now() - dt.timedelta(days=2))
    assert campaign_preflight(campaign_id=promo.pk).campaign_reasons == ["registry_stale"]


def test_start_runs_the_scrub_and_refuses_a_caller_id_that_may_not_be_used(
    promo: Campaign,
) -> None:
    promo.caller_ids.add(make_caller_id(number="+919812345678", sender=promo.sender))
    with pytest.raises(CampaignStateError, match=r"\+919812345678: cli_series_mismatch"):
        campaign_start(campaign_id=promo.pk)
    assert Campaign.objects.get(id=promo.pk).status == "draft"
    promo.caller_ids.remove(promo.caller_ids.get(number="+919812345678"))
    campaign_start(campaign_id=promo.pk)
    preflight = Campaign.objects.get(id=promo.pk).preflight
    assert preflight is not None and preflight["blocked"] == 3


def test_admin_shows_the_scrub_and_serves_the_report(promo: Campaign) -> None:
    boss = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(boss)
    csv_file = b"number,name\n9876500010,Zoya\n9876500000,Blocked Bob\n"
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = reverse("admin:campaigns_campaign_upload_contacts", args=[promo.pk])
    page = client.post(upload, {"file": SimpleUploadedFile("c.csv", csv_file), "list_name": "more"})
    body = page.content.decode()
    assert 'id="preflight"' in body and "3 of 7 contacts would be blocked" in body
    change = client.get(reverse("admin:campaigns_campaign_change", args=[promo.pk]))
    assert "would be blocked" in change.content.decode()
    report = client.get(reverse("admin:campaigns_campaign_preflight_report", args=[promo.pk]))
    lines = b"".join(report.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    assert lines[0] == "number,name,reasons"
    assert "+919876500000,,dnd_fully_blocked" in lines
    assert len(lines) == 4


def _admin_page(campaign: Campaign) -> str:
    boss = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(boss)
    return client.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    ).content.decode()


def test_a_stale_registry_blocks_every_contact_and_says_so(promo: Campaign) -> None:
    registry_replace(rows=[], as_of=timezone.now() - dt.timedelta(days=2))
    summary = campaign_preflight(campaign_id=promo.pk)
    assert summary.blocked == summary.total == 6
    assert summary.by_reason["registry_stale"] == 6
    assert summary.by_reason["suppressed"] == 1  # the per-number reasons are still there
    rows = list(campaign_preflight_rows(campaign_id=promo.pk))
    assert len(rows) == 6 and all("registry_stale" in r for _, _, r in rows)
    body = _admin_page(promo)
    assert "Nobody would be blocked" not in body
    assert "All 6 would be blocked now: DND registry out of date" in body


def test_an_unowned_caller_id_pool_blocks_every_contact(promo: Campaign) -> None:
    promo.caller_ids.set([make_caller_id(number="+911401239999")])  # another sender's
    summary = campaign_preflight(campaign_id=promo.pk)
    assert summary.blocked == summary.total == 6
    assert summary.by_reason["cli_not_owned"] == 6
    assert "All 6 would be blocked now: caller ID not owned by the sender" in _admin_page(promo)


def test_outside_the_calling_window_everyone_is_blocked_until_it_opens(
    promo: Campaign, settings: Any
) -> None:
    settings.COMPLIANCE_PROMO_WINDOW = "10:00-21:00"
    today = timezone.now().astimezone(ZoneInfo("Asia/Kolkata"))  # the consent dates from yesterday
    night = today.replace(hour=22, minute=30)
    summary = campaign_preflight(campaign_id=promo.pk, now=night)
    assert summary.blocked == summary.total == 6
    assert summary.by_reason["outside_calling_hours"] == 6
    assert summary.opens_at == "10:00 Asia/Kolkata"
    assert "outside the calling window until 10:00 Asia/Kolkata" in _admin_page(promo)
    promo.window_start = dt.time(11, 30)
    promo.save()
    assert campaign_preflight(campaign_id=promo.pk, now=night).opens_at == "11:30 Asia/Kolkata"
    noon = night.replace(hour=12)
    assert campaign_preflight(campaign_id=promo.pk, now=noon).blocked == 3
