"""The dial pipeline's steps, called directly against the real database (no SIP)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import redis
from django.utils import timezone

from campaigns.models import CallAttempt, CallerId, Campaign, Contact, Trunk
from campaigns.services.claim_check import attempt_claim, attempt_process
from campaigns.services.dispatch import dispatch_due
from campaigns.services.engine_take import attempt_return, engine_take_next
from campaigns.services.lifecycle import campaign_pause, campaign_start
from campaigns.services.one_off_call import one_off_call_prepare as prepare_one_off_call
from campaigns.services.outcomes import attempt_record_event
from campaigns.services.reap import reap_stale
from compliance.models import AuditEntry
from dialer.pacing import Pacer, PacingUnavailable, lease_id
from telephony.engine.events import CallEvent, Disposition, EventKind
from telephony.pool.models import EngineProcess
from tests.helpers.factories import (
    make_campaign,
    make_contact,
    make_engine_process,
    make_started_campaign,
    make_trunk,
)

pytestmark = pytest.mark.django_db


def test_nothing_is_dispatched_without_a_live_engine() -> None:
    make_started_campaign()
    make_engine_process(age_s=60)  # heartbeat long stale
    assert dispatch_due() == []


def test_dispatch_respects_engine_slots_and_campaign_concurrency() -> None:
    campaign = make_started_campaign(contacts=6, max_concurrent=3)
    make_engine_process(slots=4)
    first = dispatch_due()
    assert len(first) == 3  # the campaign's limit, under the engine's 4 slots
    assert dispatch_due() == []  # its 3 live attempts fill the campaign
    assert Contact.objects.filter(campaign=campaign, status="in_progress").count() == 3


def test_paused_campaign_dispatches_nothing() -> None:
    campaign = make_started_campaign()
    make_engine_process()
    campaign_pause(campaign_id=campaign.pk)
    assert dispatch_due() == []


def test_an_attempt_is_claimed_once_however_often_its_task_runs() -> None:
    make_started_campaign(contacts=1)
    make_engine_process()
    (attempt_id,) = dispatch_due()
    assert attempt_process(attempt_id=attempt_id) == "approved"
    assert attempt_process(attempt_id=attempt_id) == "not_claimed"  # redelivered task
    assert AuditEntry.objects.filter(attempt_id=attempt_id, kind="decision").count() == 1


def test_an_approved_attempt_goes_to_one_engine_only() -> None:
    make_started_campaign(contacts=1)
    one, two = make_engine_process(), make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    taken = engine_take_next(engine_id=one.pk)
    assert taken is not None
    job, scopes = taken
    assert job.attempt_id == attempt_id and scopes == []  # no pacer given
    assert job.cli == "+911600123456" and job.target_uri.endswith("@127.0.0.1:5999")
    assert engine_take_next(engine_id=two.pk) is None


def test_an_old_approval_is_checked_again_before_dialing(settings) -> None:  # type: ignore[no-untyped-def]
    make_started_campaign(contacts=1)
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    later = timezone.now() + dt.timedelta(seconds=settings.DIAL_APPROVAL_MAX_AGE_S + 1)
    assert engine_take_next(engine_id=engine.pk, now=later) is None
    assert CallAttempt.objects.get(id=attempt_id).status == "queued"
    assert attempt_process(attempt_id=attempt_id) == "approved"


def test_blocked_attempt_closes_the_contact_without_dialing() -> None:
    campaign = make_started_campaign(contacts=0)
    contact = make_contact(campaign=campaign, number="+14155550100")  # outside India
    make_engine_process()
    (attempt_id,) = dispatch_due()
    assert attempt_process(attempt_id=attempt_id) == "blocked"
    attempt = CallAttempt.objects.get(id=attempt_id)
    assert attempt.disposition == "blocked" and attempt.reasons == ["out_of_jurisdiction"]
    contact.refresh_from_db()
    assert contact.status == "done" and contact.last_disposition == "blocked"


def test_busy_is_retried_later_up_to_max_attempts() -> None:
    campaign = make_started_campaign(contacts=1, max_attempts=2, retry_delays={"busy": 600})
    engine = make_engine_process()
    for attempt_number in (1, 2):
        when = timezone.now() + dt.timedelta(hours=attempt_number - 1)
        EngineProcess.objects.filter(id=engine.pk).update(heartbeat_at=when)
        (attempt_id,) = dispatch_due(now=when)
        attempt_process(attempt_id=attempt_id)
        engine_take_next(engine_id=engine.pk)
        ended = CallEvent(
            attempt_id, EventKind.ENDED, timezone.now(), sip_code=486, disposition=Disposition.BUSY
        )
        attempt_record_event(event=ended)
        contact = Contact.objects.get(campaign=campaign)
        assert contact.attempts == attempt_number
        if attempt_number == 1:
            assert contact.status == "pending"
            assert contact.next_attempt_at is not None
            assert contact.next_attempt_at > timezone.now() + dt.timedelta(seconds=590)
            assert dispatch_due() == []  # not due yet
    assert contact.status == "done" and contact.last_disposition == "busy"
    campaign.refresh_from_db()
    dispatch_due()
    campaign.refresh_from_db()
    assert campaign.status == "completed"


def test_a_dead_workers_claim_goes_back_to_the_queue(settings) -> None:  # type: ignore[no-untyped-def]
    make_started_campaign(contacts=1)
    make_engine_process()
    (attempt_id,) = dispatch_due()
    assert attempt_claim(attempt_id=attempt_id)  # the worker dies here, before deciding
    later = timezone.now() + dt.timedelta(seconds=settings.DIAL_CLAIM_STALE_S + 1)
    reap_stale(now=later)
    assert CallAttempt.objects.get(id=attempt_id).status == "queued"


def test_a_dead_engines_calls_are_closed_as_failed_and_never_redialed(settings) -> None:  # type: ignore[no-untyped-def]
    campaign = make_started_campaign(contacts=1)
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    engine_take_next(engine_id=engine.pk)
    later = timezone.now() + dt.timedelta(seconds=settings.ENGINE_HEARTBEAT_STALE_S + 1)
    reap_stale(now=later)
    attempt = CallAttempt.objects.get(id=attempt_id)
    assert (attempt.status, attempt.hangup_cause) == ("failed", "engine_lost")
    assert Contact.objects.get(campaign=campaign).status == "done"  # max_attempts is 1
    # A late event from the lost engine cannot reopen or overwrite it.
    attempt_record_event(event=CallEvent(attempt_id, EventKind.ENDED, timezone.now(), sip_code=200,
                                         disposition=Disposition.ANSWERED))  # fmt: skip
    assert CallAttempt.objects.get(id=attempt_id).disposition == "failed"


def test_a_lost_task_is_sent_again(settings) -> None:  # type: ignore[no-untyped-def]
    make_started_campaign(contacts=1)
    make_engine_process()
    (attempt_id,) = dispatch_due()
    assert reap_stale() == []
    later = timezone.now() + dt.timedelta(seconds=settings.DIAL_REQUEUE_AFTER_S + 1)
    assert reap_stale(now=later) == [attempt_id]
    assert reap_stale(now=later) == []  # not again until another full wait


def test_trunk_channels_cap_dispatch_across_campaigns() -> None:
    first = make_started_campaign(contacts=3)
    second = make_campaign(sender=first.sender, trunk=first.trunk, purpose="transactional",
                           caller_ids=list(first.caller_ids.all()), max_cps=100)  # fmt: skip
    for _ in range(3):
        make_contact(campaign=second)
    campaign_start(campaign_id=second.pk)
    Trunk.objects.filter(id=first.trunk_id).update(max_channels=4)
    make_engine_process(slots=4)
    make_engine_process(slots=4)
    assert len(dispatch_due()) == 4  # 8 engine slots, 6 due contacts, 4 trunk channels


def test_campaign_dials_only_inside_its_own_window() -> None:
    campaign = make_started_campaign(contacts=2)
    Campaign.objects.filter(id=campaign.pk).update(
        window_start=dt.time(10, 0), window_end=dt.time(18, 0)
    )
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    evening = dt.datetime(2026, 11, 24, 18, 0, tzinfo=ist)
    make_engine_process()
    EngineProcess.objects.update(heartbeat_at=evening)
    assert dispatch_due(now=evening) == []  # 18:00 is outside [10:00, 18:00)
    campaign.refresh_from_db()
    assert campaign.status == "running"  # not completed: its contacts are still pending
    morning = evening.replace(hour=10)
    EngineProcess.objects.update(heartbeat_at=morning)
    assert len(dispatch_due(now=morning)) == 2


def test_campaign_window_is_the_callees_local_time() -> None:
    campaign = make_started_campaign(contacts=0)
    Campaign.objects.filter(id=campaign.pk).update(
        window_start=dt.time(10, 0), window_end=dt.time(18, 0)
    )
    india = make_contact(campaign=campaign, number="+919876500001")
    london = make_contact(campaign=campaign, number="+442079460123")  # a London landline
    assert (india.time_zone, london.time_zone) == ("Asia/Kolkata", "Europe/London")
    make_engine_process(slots=8)
    # 10:30 in India is 05:00 in London (GMT): only the Indian callee is inside 10:00-18:00.
    at = dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.UTC)
    EngineProcess.objects.update(heartbeat_at=at)
    (first,) = dispatch_due(now=at)
    assert CallAttempt.objects.get(id=first).number == india.number
    # 12:00 in London is 17:30 in India: now the London callee is due too.
    later = at.replace(hour=12)
    EngineProcess.objects.update(heartbeat_at=later)
    (second,) = dispatch_due(now=later)
    assert CallAttempt.objects.get(id=second).number == london.number


@pytest.fixture
def pacer() -> Iterator[Pacer]:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/13")
    client.flushdb()
    yield Pacer(client)
    client.flushdb()


def test_engines_take_work_only_within_the_trunks_limits(pacer: Pacer) -> None:
    campaign = make_started_campaign(contacts=3)
    engine = make_engine_process()
    for attempt_id in dispatch_due():
        attempt_process(attempt_id=attempt_id)
    # Lowered after dispatch: the engines' gate is what must hold it (other dispatchers, retries).
    Trunk.objects.filter(id=campaign.trunk_id).update(max_channels=2, max_cps=100)
    first = engine_take_next(engine_id=engine.pk, pacer=pacer)
    second = engine_take_next(engine_id=engine.pk, pacer=pacer)
    assert first is not None and second is not None
    assert f"trunk:{campaign.trunk_id}" in first[1]
    assert engine_take_next(engine_id=engine.pk, pacer=pacer) is None  # both channels busy
    pacer.release(lease_id=lease_id(first[0].attempt_id), scopes=first[1])  # a call ended
    assert engine_take_next(engine_id=engine.pk, pacer=pacer) is not None


def test_a_caller_ids_daily_limit_holds_its_calls(pacer: Pacer) -> None:
    campaign = make_started_campaign(contacts=2)
    CallerId.objects.filter(campaigns=campaign).update(daily_max=1)
    engine = make_engine_process()
    for attempt_id in dispatch_due():
        attempt_process(attempt_id=attempt_id)
    assert engine_take_next(engine_id=engine.pk, pacer=pacer) is not None
    assert engine_take_next(engine_id=engine.pk, pacer=pacer) is None


def test_no_redis_means_no_dial(pacer: Pacer) -> None:
    make_started_campaign(contacts=1)
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    down = Pacer.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(PacingUnavailable):
        engine_take_next(engine_id=engine.pk, pacer=down)
    assert CallAttempt.objects.get(id=attempt_id).engine is None  # nothing was taken


def test_an_attempt_the_engine_could_not_send_goes_back_for_another_engine() -> None:
    make_started_campaign(contacts=1)
    one, two = make_engine_process(), make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    assert engine_take_next(engine_id=one.pk) is not None
    assert attempt_return(attempt_id=attempt_id, engine_id=one.pk)
    taken = engine_take_next(engine_id=two.pk)
    assert taken is not None and taken[0].attempt_id == attempt_id
    CallAttempt.objects.filter(id=attempt_id).update(invite_at=timezone.now())
    assert not attempt_return(attempt_id=attempt_id, engine_id=two.pk)  # sent: never handed back


def test_a_trunk_over_its_limit_is_held_back_with_doubling_holds(pacer: Pacer) -> None:
    campaign = make_started_campaign(contacts=1)
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    trunk = f"trunk:{campaign.trunk_id}"
    assert [pacer.backoff(scope=trunk, base_ms=100) for _ in range(3)] == [100, 200, 400]
    assert engine_take_next(engine_id=engine.pk, pacer=pacer) is None  # held: not dialed
    pacer.clear_backoff(scope=trunk)  # it answered normally again
    assert pacer.backoff(scope=trunk, base_ms=100) == 100
    time.sleep(0.15)  # the hold expires by itself
    assert engine_take_next(engine_id=engine.pk, pacer=pacer) is not None


def test_a_held_back_trunk_fails_over_to_the_campaigns_fallback_trunk(pacer: Pacer) -> None:
    campaign = make_started_campaign(contacts=1)
    fallback = make_trunk(sip_uri="sip:127.0.0.1:5998")
    Campaign.objects.filter(id=campaign.pk).update(fallback_trunk=fallback)
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    pacer.backoff(scope=f"trunk:{campaign.trunk_id}")  # the primary answered 503
    taken = engine_take_next(engine_id=engine.pk, pacer=pacer)
    assert taken is not None
    job, scopes = taken
    assert job.target_uri.endswith("@127.0.0.1:5998")
    assert f"trunk:{fallback.pk}" in scopes and f"trunk:{campaign.trunk_id}" not in scopes
    assert CallAttempt.objects.get(id=attempt_id).trunk_id == fallback.pk


def test_a_test_call_to_an_address_two_trunks_share_uses_the_oldest() -> None:
    first = make_trunk(name="carrier-a", sip_uri="sip:127.0.0.1:5070")
    make_trunk(name="carrier-b", sip_uri="sip:127.0.0.1:5070")
    attempt_id = prepare_one_off_call(
        number="9876543210", trunk_uri="sip:127.0.0.1:5070", cli="1600123456",
        purpose="transactional", sender_dlt_id="1101TRUNKS", sector=None, category=None,
        ring_timeout_s=5, max_call_s=5, agent_url="",
    )  # fmt: skip
    assert CallAttempt.objects.get(id=attempt_id).campaign.trunk_id == first.pk
