"""Recording what an engine reports about an attempt; its end goes through attempt_finalise."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import transaction

from campaigns.models import AttemptStatus, CallAttempt, Disposition
from campaigns.services.attempt_end import ContactNext, attempt_finalise
from compliance.audit import audit_append, iso_utc
from compliance.models import AuditEntry
from compliance.suppressions import SuppressionRequest, suppressions_add
from telephony.engine.events import CallEvent, EventKind

log = logging.getLogger(__name__)


def _on_invite_sent(event: CallEvent) -> None:
    CallAttempt.objects.filter(id=event.attempt_id, invite_at=None).update(invite_at=event.at)


def _on_ringing(event: CallEvent) -> None:
    CallAttempt.objects.filter(id=event.attempt_id, status=AttemptStatus.DIALING).update(
        status=AttemptStatus.RINGING, ringing_at=event.at, pdd_ms=event.pdd_ms
    )


def _on_answered(event: CallEvent) -> None:
    CallAttempt.objects.filter(
        id=event.attempt_id, status__in=(AttemptStatus.DIALING, AttemptStatus.RINGING)
    ).update(status=AttemptStatus.ANSWERED, answered_at=event.at)


def _on_opt_out(event: CallEvent) -> None:
    attempt_opt_out(attempt_id=event.attempt_id, digit=event.digit, at=event.at)


def _on_ended(event: CallEvent) -> None:
    # An ended event always carries a disposition; without one, nothing says the call went out.
    disposition = event.disposition or Disposition.FAILED
    not_placed = disposition == Disposition.FAILED and event.sip_code is None
    attempt_finalise(
        attempt_id=event.attempt_id,
        status=AttemptStatus.FAILED if not_placed else AttemptStatus.ENDED,
        disposition=disposition,
        ended_at=event.at,
        fields={
            "sip_code": event.sip_code,
            "sip_reason": event.sip_reason[:200],
            "duration_s": event.duration_s,
            "agent_frames_in": event.frames_from_agent,
            "agent_frames_out": event.frames_to_agent,
            "hangup_cause": event.hangup_cause[:100],
            **_quality_fields(event.quality),
        },
    )


_HANDLERS: dict[EventKind, Callable[[CallEvent], None]] = {
    EventKind.INVITE_SENT: _on_invite_sent,
    EventKind.RINGING: _on_ringing,
    EventKind.ANSWERED: _on_answered,
    EventKind.OPT_OUT: _on_opt_out,
    EventKind.ENDED: _on_ended,
}


def attempt_record_event(*, event: CallEvent) -> None:
    """Write an engine event onto its attempt with a filtered update (never move backwards)."""
    handler = _HANDLERS.get(event.kind)
    if handler is None:
        log.warning("attempt %s: unknown engine event %r", event.attempt_id, event.kind)
        return
    handler(event)


def attempt_end_unrecorded(*, event: CallEvent) -> bool:
    """An engine gave up recording how this call ended (telephony.pool.event_writer dead-lettered
    the write): end the attempt with what the engine saw and close its contact, no retry. Left
    open, the attempt would be closed as failed/engine_lost when its engine next stops, and the
    contact called again, though the call may have been answered (issue #10). The outcome's
    audit entry is missing until someone replays the dead letter. True if it was still open."""
    closed = attempt_finalise(
        attempt_id=event.attempt_id,
        status=AttemptStatus.ENDED,
        disposition=event.disposition or Disposition.FAILED,
        ended_at=event.at,
        fields={
            "sip_code": event.sip_code,
            "duration_s": event.duration_s,
            "hangup_cause": "not_recorded",
        },
        contact_next=ContactNext.DONE,
        audit=False,
    )
    log.error("attempt %s: its end was not recorded; closed without a retry", event.attempt_id)
    return closed


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
