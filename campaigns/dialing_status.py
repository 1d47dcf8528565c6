"""Why a campaign is not dialing right now, in words for the person watching it (a selector).

Each sentence comes from the same facts the dialer acts on: the campaign's status and trunk,
its contacts' due times and zones against its window (campaigns.services.dispatch), the live
engines (telephony.pool.selectors) and attempts no worker has claimed. An empty list means
nothing visible stands in the way; the dispatcher may still be waiting for its next tick.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Min
from django.utils import formats, timezone

from campaigns.models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
)
from campaigns.services.dispatch import campaign_open_zones
from telephony.pool.selectors import engines_live


def _when(at: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(at), "DATETIME_FORMAT")


def campaign_idle_reasons(*, campaign: Campaign, now: dt.datetime | None = None) -> list[str]:
    """What keeps this campaign from placing calls now; [] when nothing does (or it is over)."""
    now = now or timezone.now()
    if campaign.status == CampaignStatus.DRAFT:
        return ["Draft: it dials nothing until it is started."]
    if campaign.status == CampaignStatus.SCHEDULED:
        start = _when(campaign.starts_at) if campaign.starts_at else "its start time"
        return [f"Scheduled: it starts by itself at {start}."]
    if campaign.status == CampaignStatus.PAUSED:
        return ["Paused: no new calls until it is resumed; calls already placed go on."]
    if campaign.status != CampaignStatus.RUNNING:
        return []
    reasons: list[str] = []
    if not campaign.trunk.enabled:
        reasons.append(f"Trunk {campaign.trunk} is disabled: nothing is dialed until it is on.")
    pending = Contact.objects.filter(campaign=campaign, status=ContactStatus.PENDING)
    if pending.exists():
        due = pending.exclude(next_attempt_at__gt=now)
        if not due.exists():
            nxt = pending.aggregate(at=Min("next_attempt_at"))["at"]
            reasons.append(f"Every waiting contact waits for a retry; the next is at {_when(nxt)}.")
        elif campaign_open_zones(campaign=campaign, now=now) == []:
            opens, closes = campaign.window_start, campaign.window_end
            reasons.append(
                f"Outside the campaign's calling window ({opens:%H:%M}-{closes:%H:%M}, the callee's"
                " local time) for every waiting contact."
            )
        if not engines_live(now=now).exists():
            reasons.append("No engine is running: start `manage.py run_engine` to place calls.")
    unclaimed = now - dt.timedelta(seconds=2 * settings.DIAL_REQUEUE_AFTER_S)
    waiting = CallAttempt.objects.filter(
        campaign=campaign, status=AttemptStatus.QUEUED, created_at__lt=unclaimed
    ).count()
    if waiting:
        reasons.append(
            f"{waiting} attempt(s) have waited over {2 * settings.DIAL_REQUEUE_AFTER_S} s for a"
            " worker's compliance check: is a Celery worker running?"
        )
    return reasons
