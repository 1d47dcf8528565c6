"""Dispatch: due contacts of running campaigns become queued attempts, within every limit.

The first stage of the dial pipeline (README, "One call"): dispatch, claim and check
(campaigns.services.claim_check), engine take (campaigns.services.engine_take), reap
(campaigns.services.reap). Every state change is a conditional UPDATE that must change exactly
one row; a step that loses the race does nothing, so a redelivered task or two dispatchers are
harmless.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
)
from compliance.policy import in_window, zone_or_default
from telephony.pool.selectors import engines_live

LIVE_STATUSES = (
    AttemptStatus.QUEUED,
    AttemptStatus.DIALING,
    AttemptStatus.RINGING,
    AttemptStatus.ANSWERED,
)


def engine_free_slots(*, now: dt.datetime) -> int:
    """Free call slots across live engines, less approved attempts no engine has taken yet."""
    slots = sum(e.slots - e.live_calls for e in engines_live(now=now))
    waiting = CallAttempt.objects.filter(
        status__in=(AttemptStatus.QUEUED, AttemptStatus.DIALING), engine=None
    ).count()
    return max(0, slots - waiting)


def _per_tick(cps: float) -> int:
    return max(1, math.floor(cps * settings.DIALER_TICK_SECONDS))


FULL_DAY = (dt.time(0, 0), dt.time(23, 59, 59))


def campaign_open_zones(*, campaign: Campaign, now: dt.datetime) -> list[str] | None:
    """The time zones, among the campaign's waiting contacts, where it is now inside the
    campaign's daily window (half-open, callee's local time); None: the window is all day."""
    window = (campaign.window_start, campaign.window_end)
    if window == FULL_DAY:
        return None
    zones = (
        Contact.objects.filter(campaign=campaign, status=ContactStatus.PENDING)
        .values_list("time_zone", flat=True)
        .distinct()
    )
    default = settings.COMPLIANCE_DEFAULT_TZ
    return [
        z for z in zones if in_window(window, now.astimezone(zone_or_default(z, default)).time())
    ]


def dispatch_due(*, now: dt.datetime | None = None) -> list[int]:
    """Queue attempts for due contacts of running campaigns, within the campaign's window and
    concurrency, its trunk's channels, calls-per-tick of both, and the engines' free slots.

    Returns the new attempt ids; the caller enqueues them once the transaction has committed.
    """
    now = now or timezone.now()
    capacity = engine_free_slots(now=now)
    trunk_room: dict[int, int] = {}
    created: list[int] = []
    running = Campaign.objects.filter(status=CampaignStatus.RUNNING).select_related("trunk")
    for campaign in running.order_by("id"):
        if capacity <= 0:
            break
        zones = campaign_open_zones(campaign=campaign, now=now)
        if zones == []:
            continue  # outside the window for every callee waiting
        trunk = campaign.trunk
        if not trunk.enabled:
            continue
        if trunk.pk not in trunk_room:
            on_trunk = CallAttempt.objects.filter(
                campaign__trunk=trunk, status__in=LIVE_STATUSES
            ).count()
            trunk_room[trunk.pk] = min(trunk.max_channels - on_trunk, _per_tick(trunk.max_cps))
        live = CallAttempt.objects.filter(campaign=campaign, status__in=LIVE_STATUSES).count()
        budget = min(
            capacity,
            trunk_room[trunk.pk],
            campaign.max_concurrent - live,
            _per_tick(campaign.max_cps),
        )
        if budget <= 0:
            continue
        new_ids = _queue_for_campaign(campaign=campaign, budget=budget, now=now, zones=zones)
        capacity -= len(new_ids)
        trunk_room[trunk.pk] -= len(new_ids)
        created.extend(new_ids)
        if not new_ids:
            campaign_complete_if_done(campaign_id=campaign.pk)
    return created


def _queue_for_campaign(
    *, campaign: Campaign, budget: int, now: dt.datetime, zones: list[str] | None
) -> list[int]:
    due = Contact.objects.filter(campaign=campaign, status=ContactStatus.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    if zones is not None:
        due = due.filter(time_zone__in=zones)
    rows = due.order_by(F("next_attempt_at").asc(nulls_first=True), "id").values_list(
        "id", "number", "attempts"
    )[:budget]
    created: list[int] = []
    for contact_id, number, attempts in rows:
        with transaction.atomic():
            taken = Contact.objects.filter(id=contact_id, status=ContactStatus.PENDING).update(
                status=ContactStatus.IN_PROGRESS, attempts=attempts + 1
            )
            if taken != 1:
                continue  # another dispatcher got it
            attempt = CallAttempt.objects.create(
                campaign=campaign,
                contact_id=contact_id,
                attempt_number=attempts + 1,
                number=number,
                queued_at=now,
            )
        created.append(attempt.pk)
    return created


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """A running campaign with no contact left to dial is completed."""
    if Contact.objects.filter(
        campaign_id=campaign_id, status__in=(ContactStatus.PENDING, ContactStatus.IN_PROGRESS)
    ).exists():
        return False
    return (
        Campaign.objects.filter(id=campaign_id, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.COMPLETED, finished_at=timezone.now()
        )
        == 1
    )
