"""Recording what happened to an attempt, and what that means for its contact."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt, Contact, ContactStatus
from campaigns.models.attempt import FINAL_STATUSES
from campaigns.retry import MAX_TEMPORARY_BLOCKS, block_lifts_at, retry_delay
from compliance.audit import audit_append, audit_outcome, iso_utc
from compliance.models import AuditEntry
from compliance.policy import callee_zone, policy_from_settings
from compliance.suppressions import SuppressionRequest, suppressions_add
from telephony.engine.events import CallEvent

log = logging.getLogger(__name__)


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
    _schedule_contact(attempt=attempt, now=now)


def _schedule_contact(*, attempt: CallAttempt, now: dt.datetime) -> None:
    """Retry the contact later, by the campaign's policy, or close it."""
    campaign, contact = attempt.campaign, attempt.contact
    attempts = contact.call_attempts
    if attempt.status == AttemptStatus.BLOCKED:
        info = callee_zone(attempt.number)
        when = block_lifts_at(
            reasons=list(attempt.reasons),
            purpose=campaign.purpose,
            now=now,
            tz=info,
            policy=policy_from_settings(),
        )
        if attempts.filter(status=AttemptStatus.BLOCKED).count() > MAX_TEMPORARY_BLOCKS:
            when = None
    else:
        # retry_delay never raises: a campaign saved before validation existed may hold any
        # JSON here, and an exception would undo this attempt's outcome (issue #10).
        delay = retry_delay(
            disposition=attempt.disposition, delays=campaign.retry_delays, campaign_id=campaign.pk
        )
        dialed = attempts.exclude(status=AttemptStatus.BLOCKED).count()
        when = now + delay if delay is not None and dialed < campaign.max_attempts else None
    Contact.objects.filter(id=contact.pk, status=ContactStatus.IN_PROGRESS).update(
        status=ContactStatus.PENDING if when else ContactStatus.DONE,
        next_attempt_at=when,
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
                **_quality_fields(event.quality),
            )
            if changed == 1:
                attempt_close(attempt_id=event.attempt_id, now=timezone.now())
    elif event.kind == "opt_out":
        attempt_opt_out(attempt_id=event.attempt_id, digit=event.digit, at=event.at)
    else:
        log.warning("attempt %s: unknown engine event %r", event.attempt_id, event.kind)


def attempt_end_unrecorded(*, event: CallEvent) -> bool:
    """An engine gave up recording how this call ended (campaigns.event_writer dead-lettered
    the write): end the attempt with what the engine saw and close its contact, no retry. Left
    open, the attempt would be closed as failed/engine_lost when its engine next stops, and the
    contact called again, though the call may have been answered (issue #10). The outcome's
    audit entry is missing until someone replays the dead letter. True if it was still open."""
    with transaction.atomic():
        closed = (
            CallAttempt.objects.filter(id=event.attempt_id)
            .exclude(status__in=FINAL_STATUSES)
            .update(
                status=AttemptStatus.ENDED,
                disposition=event.disposition,
                sip_code=event.sip_code,
                ended_at=event.at,
                duration_s=event.duration_s,
                hangup_cause="not_recorded",
            )
        )
        if closed == 1:
            Contact.objects.filter(
                call_attempts=event.attempt_id, status=ContactStatus.IN_PROGRESS
            ).update(
                status=ContactStatus.DONE, next_attempt_at=None, last_disposition=event.disposition
            )
    log.error("attempt %s: its end was not recorded; closed without a retry", event.attempt_id)
    return closed == 1


def _quality_fields(quality: dict[str, float] | None) -> dict[str, float | None]:
    if not quality:
        return {}
    return {k: quality.get(k) for k in ("rx_loss_pct", "jitter_ms", "rtt_ms", "mos")}


def attempt_opt_out(*, attempt_id: int, digit: str, at: dt.datetime) -> bool:
    """The callee pressed the campaign's opt-out key: suppress the number for the campaign's
    sender at once (the next check refuses it) and audit it. True if newly suppressed."""
    attempt = CallAttempt.objects.select_related("campaign__sender").get(id=attempt_id)
    campaign = attempt.campaign
    if not attempt.number:  # erased while the call was live: already suppressed everywhere
        return False
    with transaction.atomic():
        ((_, created),) = suppressions_add(
            requests=[
                SuppressionRequest(
                    number=attempt.number,
                    sender_id=campaign.sender_id,
                    reason=f"opt-out: DTMF {digit} during attempt {attempt_id}",
                )
            ],
            actor="callee:dtmf",
        )
        audit_append(
            kind=AuditEntry.Kind.OPT_OUT,
            attempt_id=attempt_id,
            campaign_id=campaign.pk,
            sender_dlt_id=campaign.sender.dlt_entity_id,
            number=attempt.number,
            purpose=campaign.purpose,
            detail={"method": "dtmf", "digit": digit, "at": iso_utc(at), "new": created},
        )
    log.info("attempt %s: %s opted out (DTMF %s)", attempt_id, attempt.number, digit)
    return created
