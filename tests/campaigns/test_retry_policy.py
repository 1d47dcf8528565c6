"""The retry policy, as pure functions and through the dial steps."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import CallAttempt, Contact
from campaigns.retry import SHORT_WAIT, block_lifts_at, retry_delay
from campaigns.services.claim_check import attempt_process
from campaigns.services.dispatch import dispatch_due
from campaigns.services.engine_take import engine_take_next
from campaigns.services.outcomes import attempt_record_event
from compliance.policy import policy_from_settings
from telephony.engine.events import CallEvent, Disposition, EventKind
from tests.helpers.factories import make_engine_process, make_started_campaign

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("disposition", "delays", "expected"),
    [
        ("busy", None, 600),
        ("no_answer", None, 3600),
        ("failed", None, 300),
        ("busy", {"busy": 120}, 120),
        ("no_answer", {"busy": 120}, 3600),
        ("answered", None, None),
        ("rejected", None, None),
        ("invalid_number", None, None),
        ("blocked", {"blocked": 5}, None),
    ],
)
def test_retry_delay_per_disposition(
    disposition: str, delays: dict | None, expected: int | None
) -> None:
    delay = retry_delay(disposition=disposition, delays=delays)
    assert (delay.total_seconds() if delay else None) == expected


def _lifts(reasons: list[str], at: dt.datetime, purpose: str = "promotional") -> dt.datetime | None:
    return block_lifts_at(
        reasons=reasons, purpose=purpose, now=at, tz="Asia/Kolkata", policy=policy_from_settings()
    )


@pytest.mark.django_db
def test_temporary_blocks_lift_at_the_right_moment() -> None:
    night = dt.datetime(2026, 11, 24, 22, 30, tzinfo=IST)
    assert _lifts(["outside_calling_hours"], night) == dt.datetime(2026, 11, 25, 10, 0, tzinfo=IST)
    morning = dt.datetime(2026, 11, 24, 8, 0, tzinfo=IST)
    assert _lifts(["outside_calling_hours"], morning) == dt.datetime(
        2026, 11, 24, 10, 0, tzinfo=IST
    )
    assert _lifts(["outside_calling_hours"], morning, "service_implicit") == morning.replace(hour=9)
    noon = dt.datetime(2026, 11, 24, 12, 0, tzinfo=IST)
    assert _lifts(["frequency_cap"], noon) == dt.datetime(2026, 11, 25, 10, 0, tzinfo=IST)
    assert _lifts(["registry_stale"], noon) == noon + dt.timedelta(minutes=15)
    assert _lifts(["registry_stale", "dnd_fully_blocked"], noon) is None  # one permanent reason
    assert _lifts([], noon) is None


@pytest.mark.django_db
def test_no_answer_is_retried_after_its_own_delay_and_the_schedule_is_on_the_contact() -> None:
    campaign = make_started_campaign(contacts=1, max_attempts=3, retry_delays={"no_answer": 7200})
    engine = make_engine_process()
    (attempt_id,) = dispatch_due()
    attempt_process(attempt_id=attempt_id)
    engine_take_next(engine_id=engine.pk)
    attempt_record_event(
        event=CallEvent(
            attempt_id,
            EventKind.ENDED,
            timezone.now(),
            sip_code=480,
            disposition=Disposition.NO_ANSWER,
        )
    )
    contact = Contact.objects.get(campaign=campaign)
    assert contact.status == "pending" and contact.last_disposition == "no_answer"
    assert contact.next_attempt_at is not None
    wait = contact.next_attempt_at - timezone.now()
    assert dt.timedelta(seconds=7190) < wait <= dt.timedelta(seconds=7200)


@pytest.mark.django_db
def test_a_temporary_block_reschedules_without_using_an_attempt(settings) -> None:  # type: ignore[no-untyped-def]
    campaign = make_started_campaign(contacts=1, max_attempts=1, purpose="service_implicit")
    settings.COMPLIANCE_SERVICE_WINDOW = "00:00-00:01"  # closed almost all day
    make_engine_process()
    (attempt_id,) = dispatch_due()
    if attempt_process(attempt_id=attempt_id) != "blocked":
        pytest.skip("ran in the one open minute of the test window")
    attempt = CallAttempt.objects.get(id=attempt_id)
    assert attempt.reasons == ["outside_calling_hours"]
    contact = Contact.objects.get(campaign=campaign)
    assert contact.status == "pending"  # not closed: the block lifts at the window's opening
    assert contact.next_attempt_at is not None
    local = contact.next_attempt_at.astimezone(IST)
    # The window's next opening, unless that is sooner than the short wait every block keeps
    # (run between 23:50 and midnight IST, the opening is minutes away).
    soon = timezone.now() + SHORT_WAIT
    assert (local.hour, local.minute) == (0, 0) or (
        abs(contact.next_attempt_at - soon) < dt.timedelta(seconds=30)
    )
