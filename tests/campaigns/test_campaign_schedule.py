"""Scheduled campaigns open and close themselves; pause holds new dials, stop cancels them."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from campaigns.models import CallAttempt, Campaign, Contact
from campaigns.services.claim_check import attempt_process
from campaigns.services.dispatch import dispatch_due
from campaigns.services.engine_take import engine_take_next
from campaigns.services.lifecycle import (
    CampaignStateError,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_stop,
    campaigns_open_and_close,
)
from compliance.models import AuditEntry
from tests.helpers.factories import (
    make_caller_id,
    make_campaign,
    make_contact,
    make_engine_process,
    make_sender,
    make_started_campaign,
)

pytestmark = pytest.mark.django_db
_n = itertools.count(100000)


def _draft(**overrides: object) -> Campaign:
    sender = make_sender(sector="bfsi")
    cli = make_caller_id(number=f"+911600{next(_n):06d}", sender=sender)
    campaign = make_campaign(sender=sender, caller_ids=[cli], purpose="transactional", **overrides)
    make_contact(campaign=campaign)
    return campaign


def test_a_scheduled_campaign_starts_at_its_time_and_stops_at_its_end() -> None:
    now = timezone.now()
    campaign = _draft(starts_at=now + dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=3))
    campaign_schedule(campaign_id=campaign.pk)
    assert campaigns_open_and_close(now=now) == []
    assert Campaign.objects.get(id=campaign.pk).status == "scheduled"
    assert campaigns_open_and_close(now=now + dt.timedelta(hours=1)) == [f"started {campaign.pk}"]
    started = Campaign.objects.get(id=campaign.pk)
    assert started.status == "running" and started.preflight is not None
    assert campaigns_open_and_close(now=now + dt.timedelta(hours=3)) == [f"stopped {campaign.pk}"]
    assert Campaign.objects.get(id=campaign.pk).status == "stopped"


def test_scheduling_needs_a_start_before_the_end() -> None:
    with pytest.raises(CampaignStateError, match="no start time"):
        campaign_schedule(campaign_id=_draft().pk)
    now = timezone.now()
    backwards = _draft(starts_at=now, ends_at=now - dt.timedelta(minutes=1))
    with pytest.raises(CampaignStateError, match="ends before it starts"):
        campaign_schedule(campaign_id=backwards.pk)


def test_pause_holds_approved_calls_until_resume() -> None:
    campaign = make_started_campaign(contacts=2)
    engine = make_engine_process()
    first, second = dispatch_due()
    assert attempt_process(attempt_id=first) == "approved"
    campaign_pause(campaign_id=campaign.pk)
    assert engine_take_next(engine_id=engine.pk) is None  # approved, but paused: not dialed
    assert attempt_process(attempt_id=second) == "paused"
    assert CallAttempt.objects.get(id=second).status == "queued"
    campaign_resume(campaign_id=campaign.pk)
    taken = engine_take_next(engine_id=engine.pk)
    assert taken is not None and taken[0].attempt_id == first
    assert attempt_process(attempt_id=second) == "approved"


def test_stop_cancels_what_no_engine_has_taken() -> None:
    campaign = make_started_campaign(contacts=3)
    engine = make_engine_process()
    taken, approved, queued = dispatch_due()
    attempt_process(attempt_id=taken)
    engine_take_next(engine_id=engine.pk)
    attempt_process(attempt_id=approved)
    campaign_stop(campaign_id=campaign.pk)
    assert CallAttempt.objects.get(id=taken).status == "dialing"  # live: it finishes normally
    assert not AuditEntry.objects.filter(kind="outcome", attempt_id=taken).exists()
    for attempt_id in (approved, queued):
        attempt = CallAttempt.objects.get(id=attempt_id)
        assert (attempt.status, attempt.disposition, attempt.hangup_cause) == (
            "cancelled", "cancelled", "campaign_stopped",
        )  # fmt: skip
        assert Contact.objects.get(id=attempt.contact_id).status == "pending"
        # Never dialed, and audited like every other end of an attempt.
        outcome = AuditEntry.objects.get(kind="outcome", attempt_id=attempt_id)
        assert outcome.detail["status"] == outcome.detail["disposition"] == "cancelled"
    assert engine_take_next(engine_id=engine.pk) is None
