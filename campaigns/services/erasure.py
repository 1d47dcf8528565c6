"""The campaigns' part of an erasure (compliance.erasure) and of the retention period: contact
names, custom fields and numbers, and the numbers on call attempts."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.dispatch import receiver
from django.utils import timezone

from campaigns.models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Disposition,
)
from campaigns.models.attempt import FINAL_STATUSES
from campaigns.services.attempt_end import ContactNext, attempt_finalise
from compliance.audit import audit_append
from compliance.checks import MIN_RETENTION_DAYS
from compliance.erasure import number_erasing
from compliance.models import AuditEntry

log = logging.getLogger(__name__)


@receiver(number_erasing, dispatch_uid="campaigns.contacts_erase")
def _on_number_erasing(sender: object, *, number: str, token: str, **_: Any) -> dict[str, int]:
    attempts = CallAttempt.objects.filter(number=number)
    # An attempt no engine has taken is never placed now; a live call ends as it would. No
    # outcome entry: the erasure's own entry counts them (attempts_cancelled).
    untaken = Q(engine__isnull=True)
    now = timezone.now()
    cancelled = sum(
        attempt_finalise(
            attempt_id=attempt_id,
            status=AttemptStatus.BLOCKED,
            disposition=Disposition.BLOCKED,
            ended_at=now,
            fields={"reasons": ["erased"]},
            only_if=untaken,
            contact_next=ContactNext.DONE,
            audit=False,
        )
        for attempt_id in attempts.exclude(status__in=FINAL_STATUSES)
        .filter(untaken)
        .values_list("id", flat=True)
    )
    return {
        "contacts": _contacts_erase(Contact.objects.filter(number=number)),
        "attempts": attempts.update(number=""),
        "attempts_cancelled": cancelled,
    }


def _contacts_erase(contacts: QuerySet[Contact]) -> int:
    count = 0
    for contact_id in contacts.values_list("id", flat=True):
        # A placeholder, not "": the number is unique per campaign. Done, so never dialed.
        count += Contact.objects.filter(id=contact_id).update(
            number=f"erased-{contact_id}",
            name="",
            fields={},
            status=ContactStatus.DONE,
            next_attempt_at=None,
            last_disposition="erased",
        )
    return count


def retention_due(*, now: dt.datetime, days: int) -> QuerySet[Campaign]:
    """Finished campaigns older than the retention period whose data is not erased yet."""
    done = AuditEntry.objects.filter(kind=AuditEntry.Kind.RETENTION).values("campaign_id")
    return Campaign.objects.filter(
        status__in=(CampaignStatus.COMPLETED, CampaignStatus.STOPPED),
        finished_at__lt=now - dt.timedelta(days=days),
    ).exclude(id__in=done)


def retention_apply(*, now: dt.datetime | None = None, actor: str = "system:retention") -> int:
    """Erase the contact data of campaigns that finished more than DATA_RETENTION_DAYS ago.

    Contacts lose number, name and custom fields; attempts and the campaign's audit entries lose
    the clear-text number (the audit log keeps the token). Not a suppression: the people did not
    ask for anything. Returns the number of campaigns done; 0 when the setting is off.
    """
    days = int(getattr(settings, "DATA_RETENTION_DAYS", 0) or 0)
    if days <= 0:
        return 0
    if days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"DATA_RETENTION_DAYS={days}: the DPDP Rules keep logs at least {MIN_RETENTION_DAYS}"
        )
    now = now or timezone.now()
    done = 0
    for campaign_id in retention_due(now=now, days=days).values_list("id", flat=True):
        with transaction.atomic(durable=True):
            counts = {
                "contacts": _contacts_erase(Contact.objects.filter(campaign_id=campaign_id)),
                "attempts": CallAttempt.objects.filter(campaign_id=campaign_id)
                .exclude(number="")
                .update(number=""),
                "audit_entries": AuditEntry.objects.filter(campaign_id=campaign_id)
                .exclude(number="")
                .update(number=""),
            }
            audit_append(
                kind=AuditEntry.Kind.RETENTION,
                actor=actor,
                campaign_id=campaign_id,
                detail={"days": days, "counts": counts},
            )
        log.info("campaign %s: contact data erased after %s days (%s)", campaign_id, days, counts)
        done += 1
    return done
