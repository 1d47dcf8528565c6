"""Ending an attempt: the one place an attempt reaches a final status, and what follows from it
(the outcome's audit entry, the contact's next state). Every end goes through attempt_finalise:
the compliance block, the engine's report, the reaper's lost engine, the engine's dead letter,
a campaign's stop and a number's erasure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import Enum

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt, Contact, ContactStatus, Disposition
from campaigns.models.attempt import FINAL_STATUSES, NOT_DIALED_STATUSES
from campaigns.retry import MAX_TEMPORARY_BLOCKS, block_lifts_at, retry_delay
from compliance.audit import audit_outcome
from compliance.policy import callee_zone, policy_from_settings


class ContactNext(Enum):
    """What the attempt's contact does once the attempt has ended."""

    BY_POLICY = "by_policy"  # tried again later by the campaign's retry policy, or closed
    DONE = "done"  # closed: never tried again
    PENDING = "pending"  # back to pending, untouched otherwise (nothing was dialed)


def attempt_finalise(
    *,
    attempt_id: int,
    status: AttemptStatus,
    disposition: Disposition,
    ended_at: dt.datetime,
    fields: Mapping[str, object] | None = None,
    only_if: Q | None = None,
    contact_next: ContactNext = ContactNext.BY_POLICY,
    audit: bool = True,
    now: dt.datetime | None = None,
) -> bool:
    """Give an attempt its final status, once. True if this call ended it; False: nothing done.

    One conditional UPDATE sets status, disposition, ended_at and `fields`, only if the attempt
    is not final yet and `only_if` holds (a claim token, no engine...). Then, in the same
    transaction (the caller's, or its own): the outcome's audit entry and the contact's next
    state; BY_POLICY counts a retry's delay from `now` (default: the current time).

    audit=False is for the two ends the outcome entry cannot or need not record: the engine's
    dead letter (how the call ended could not be written; the entry waits for a replay of the
    dead letter) and a number's erasure (the erasure's own entry counts the attempts it ended).
    """
    if status not in FINAL_STATUSES:
        raise ValueError(f"attempt {attempt_id}: {status} is not a final status")
    guard = Q(id=attempt_id) & (only_if or Q())
    with transaction.atomic():
        changed = (
            CallAttempt.objects.filter(guard)
            .exclude(status__in=FINAL_STATUSES)
            .update(status=status, disposition=disposition, ended_at=ended_at, **(fields or {}))
        )
        if changed != 1:
            return False
        attempt = CallAttempt.objects.select_related("campaign__sender").get(id=attempt_id)
        if audit:
            _audit(attempt)
        contact = Contact.objects.filter(id=attempt.contact_id, status=ContactStatus.IN_PROGRESS)
        if contact_next is ContactNext.PENDING:
            contact.update(status=ContactStatus.PENDING)
        else:
            when = (
                _retry_at(attempt=attempt, now=now or timezone.now())
                if contact_next is ContactNext.BY_POLICY
                else None
            )
            contact.update(
                status=ContactStatus.PENDING if when else ContactStatus.DONE,
                next_attempt_at=when,
                last_disposition=disposition,
            )
    return True


def _audit(attempt: CallAttempt) -> None:
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


def _retry_at(*, attempt: CallAttempt, now: dt.datetime) -> dt.datetime | None:
    """When to try the contact again, by the campaign's policy; None: close it."""
    campaign = attempt.campaign
    attempts = CallAttempt.objects.filter(contact_id=attempt.contact_id)
    if attempt.status == AttemptStatus.BLOCKED:
        when = block_lifts_at(
            reasons=list(attempt.reasons),
            purpose=campaign.purpose,
            now=now,
            tz=callee_zone(attempt.number),
            policy=policy_from_settings(),
        )
        if attempts.filter(status=AttemptStatus.BLOCKED).count() > MAX_TEMPORARY_BLOCKS:
            return None
        return when
    # retry_delay never raises: a campaign saved before validation existed may hold any
    # JSON here, and an exception would undo this attempt's outcome (issue #10).
    delay = retry_delay(
        disposition=attempt.disposition, delays=campaign.retry_delays, campaign_id=campaign.pk
    )
    dialed = attempts.exclude(status__in=NOT_DIALED_STATUSES).count()
    return now + delay if delay is not None and dialed < campaign.max_attempts else None
