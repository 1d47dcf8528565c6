"""Why a running campaign places no call, said from the dialer's own facts (issue 13: a campaign
showed Running with 19 pending and 0 attempts, and nothing said why)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.dialing_status import campaign_idle_reasons
from campaigns.models import CallAttempt, Campaign, CampaignStatus, Contact, Trunk
from campaigns.services.dispatch import dispatch_due
from campaigns.services.lifecycle import campaign_pause
from telephony.pool.models import EngineProcess
from tests.helpers.factories import make_engine_process, make_started_campaign

NOON_IST = dt.datetime(2026, 12, 4, 6, 30, tzinfo=dt.UTC)


def _reasons(campaign: Campaign, now: dt.datetime = NOON_IST) -> list[str]:
    campaign.refresh_from_db()
    return campaign_idle_reasons(campaign=campaign, now=now)


@pytest.mark.django_db
def test_a_running_campaign_with_an_engine_and_due_contacts_has_nothing_in_its_way() -> None:
    campaign = make_started_campaign()
    make_engine_process()
    assert _reasons(campaign, dt.datetime.now(dt.UTC)) == []


@pytest.mark.django_db
def test_no_live_engine_is_said() -> None:
    campaign = make_started_campaign()
    make_engine_process(age_s=3600)  # its heartbeat stopped an hour ago
    assert _reasons(campaign, dt.datetime.now(dt.UTC)) == [
        "No engine is running: start `manage.py run_engine` to place calls."
    ]


@pytest.mark.django_db
def test_outside_the_window_for_every_waiting_contact_is_said() -> None:
    campaign = make_started_campaign()
    make_engine_process()
    EngineProcess.objects.update(heartbeat_at=NOON_IST)  # alive at the moment asked about
    Campaign.objects.filter(id=campaign.pk).update(
        window_start=dt.time(18, 0), window_end=dt.time(20, 0)
    )
    (reason,) = _reasons(campaign)
    assert reason.startswith("Outside the campaign's calling window (18:00-20:00")


@pytest.mark.django_db
def test_contacts_waiting_for_their_retry_say_when_the_next_is_due() -> None:
    campaign = make_started_campaign()
    make_engine_process()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    Contact.objects.filter(campaign=campaign).update(next_attempt_at=later)
    (reason,) = _reasons(campaign, dt.datetime.now(dt.UTC))
    assert reason.startswith("Every waiting contact waits for a retry; the next is at ")
    assert reason.endswith(" IST.")


@pytest.mark.django_db
def test_pause_and_a_disabled_trunk_are_said() -> None:
    campaign = make_started_campaign()
    make_engine_process()
    Trunk.objects.filter(id=campaign.trunk_id).update(enabled=False)
    assert _reasons(campaign, dt.datetime.now(dt.UTC))[0].startswith("Trunk ")
    campaign_pause(campaign_id=campaign.pk)
    assert _reasons(campaign) == [
        "Paused: no new calls until it is resumed; calls already placed go on."
    ]


@pytest.mark.django_db
def test_attempts_no_worker_checks_point_at_the_worker() -> None:
    campaign = make_started_campaign()
    make_engine_process()
    ids = dispatch_due()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    CallAttempt.objects.filter(id__in=ids).update(created_at=long_ago)
    reasons = _reasons(campaign, dt.datetime.now(dt.UTC))
    assert any("is a Celery worker running?" in r for r in reasons), reasons


@pytest.mark.django_db
def test_the_campaign_page_shows_why_it_is_not_dialing(admin_client: Client) -> None:
    campaign = make_started_campaign()
    assert Campaign.objects.get(id=campaign.pk).status == CampaignStatus.RUNNING
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "No engine is running" in page.content.decode()
