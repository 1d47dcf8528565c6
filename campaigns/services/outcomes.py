"""Recording what happened to an attempt, and what that means for its contact."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt, Contact, ContactStatus
from campaigns.models.attempt import FINAL_STATUSES
from compliance.audit import audit_outcome
from telephony.engine.events import CallEvent

log = logging.getLogger(__name__)

# Dispositions worth another try later; the others close the contact at once.
RETRYABLE = frozenset({"busy", "no_answer", "failed"})


def attempt_close(*, attempt_id: int, now: dt.datetime) -> None:
    """After an attempt reached a final status: audit the outcome, retry or close the contact.

    Runs inside the caller's transaction, right after the filtered update that finalised it.
    """
    attempt = CallAttempt.objects.select_related("campaign__sender", "contact").get(id=attempt_id)
    campaign = attempt.campaign
    audit_outcome(
        attempt_id=attempt.pk,
        campaign_id=campaign.pk,
        sender_dlt_id=campaign.sender.dlt_entity_id,
        number=attempt.number,
        purpose=campaign.purpose,
        detail={
            "status": attempt.status,
            "disposition": attempt.disposition,
            "sip_code": attempt.sip_code,
            "cli": attempt.cli,
            "pdd_ms": attempt.pdd_ms,
            "duration_s": attempt.duration_s,
            "reasons": attempt.reasons,
            "hangup_cause": attempt.hangup_cause,
        },
    )
    contact = attempt.contact
    retry = attempt.disposition in RETRYABLE and contact.attempts < campaign.max_attempts
    Contact.objects.filter(id=contact.pk, status=ContactStatus.IN_PROGRESS).update(
        status=ContactStatus.PENDING if retry else ContactStatus.DONE,
        next_attempt_at=now + dt.timedelta(seconds=campaign.retry_delay_s) if retry else None,
        last_disposition=attempt.disposition,
    )


def attempt_record_event(*, event: CallEvent) -> None:
    """Write an engine event onto its attempt with a filtered update (never move backwards)."""
    attempt = CallAttempt.objects.filter(id=event.attempt_id)
    if event.kind == "invite_sent":
        attempt.filter(invite_at=None).update(invite_at=event.at)
    elif event.kind == "ringing":
        attempt.filter(status=AttemptStatus.DIALING).update(
            status=AttemptStatus.RINGING, ringing_at=event.at, pdd_ms=event.pdd_ms
        )
    elif event.kind == "answered":
        attempt.filter(status__in=(AttemptStatus.DIALING, AttemptStatus.RINGING)).update(
            status=AttemptStatus.ANSWERED, answered_at=event.at
        )
    elif event.kind == "ended":
        failed = event.disposition == "failed" and event.sip_code is None
        with transaction.atomic():
            changed = attempt.exclude(status__in=FINAL_STATUSES).update(
                status=AttemptStatus.FAILED if failed else AttemptStatus.ENDED,
                disposition=event.disposition,
                sip_code=event.sip_code,
                sip_reason=event.sip_reason[:200],
                ended_at=event.at,
                duration_s=event.duration_s,
                agent_frames_in=event.frames_from_agent,
                agent_frames_out=event.frames_to_agent,
                hangup_cause=event.hangup_cause[:100],
            )
            if changed == 1:
                attempt_close(attempt_id=event.attempt_id, now=timezone.now())
    else:
        log.warning("attempt %s: unknown engine event %r", event.attempt_id, event.kind)
