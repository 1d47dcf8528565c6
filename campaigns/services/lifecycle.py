"""Campaign lifecycle: schedule, start, pause, resume, stop; each a conditional UPDATE on the
status. Scheduled campaigns open and close themselves (campaigns_open_and_close, run by beat)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt, Campaign, CampaignStatus, Disposition
from campaigns.services.attempt_end import ContactNext, attempt_finalise
from campaigns.services.preflight import campaign_preflight

log = logging.getLogger(__name__)


class CampaignStateError(Exception):
    """The campaign is not in a state that allows the requested change."""


def _transition(
    *, campaign_id: int, allowed_from: tuple[str, ...], to: str, **extra: object
) -> None:
    # An archived campaign is done for good: no transition takes it anywhere.
    changed = Campaign.objects.filter(
        id=campaign_id, status__in=allowed_from, archived_at=None
    ).update(status=to, **extra)
    if changed != 1:
        row = Campaign.objects.filter(id=campaign_id).values("status", "archived_at").first()
        if row is not None and row["archived_at"] is not None:
            raise CampaignStateError(f"campaign {campaign_id} is archived; make a new campaign")
        current = row["status"] if row else None
        raise CampaignStateError(
            f"campaign {campaign_id} is {current or 'missing'}; cannot go to {to} "
            f"(only from {', '.join(allowed_from)})"
        )


@transaction.atomic
def campaign_start(*, campaign_id: int) -> None:
    """Start dialing a draft campaign. Its contacts become due now."""
    # NO KEY: a contact import's foreign-key checks hold KEY SHARE on the campaign row for the
    # whole import; a plain FOR UPDATE would wait for it (and could hit the statement timeout).
    campaign = Campaign.objects.select_for_update(no_key=True).get(id=campaign_id)
    if campaign.archived_at is not None:
        raise CampaignStateError(f"campaign {campaign_id} is archived; make a new campaign")
    if not campaign.caller_ids.filter(active=True, archived_at=None).exists():
        raise CampaignStateError(f"campaign {campaign_id} has no active caller ID")
    if not campaign.trunk.enabled:
        raise CampaignStateError(f"campaign {campaign_id}: trunk {campaign.trunk} is disabled")
    cli_issues = campaign_preflight(campaign_id=campaign_id).cli_issues
    if cli_issues:
        # Every call from such a caller ID would be refused: fix the pool before dialing.
        problems = "; ".join(f"{cli}: {', '.join(why)}" for cli, why in cli_issues.items())
        raise CampaignStateError(f"campaign {campaign_id}: caller IDs not allowed ({problems})")
    _transition(
        campaign_id=campaign_id,
        allowed_from=(CampaignStatus.DRAFT, CampaignStatus.SCHEDULED),
        to=CampaignStatus.RUNNING,
        started_at=timezone.now(),
    )


def campaign_schedule(*, campaign_id: int) -> None:
    """A draft with a start time waits for it; beat starts it then (with the pre-flight)."""
    campaign = Campaign.objects.get(id=campaign_id)
    if campaign.starts_at is None:
        raise CampaignStateError(f"campaign {campaign_id} has no start time to schedule it at")
    if campaign.ends_at is not None and campaign.ends_at <= campaign.starts_at:
        raise CampaignStateError(f"campaign {campaign_id} ends before it starts")
    _transition(
        campaign_id=campaign_id, allowed_from=(CampaignStatus.DRAFT,), to=CampaignStatus.SCHEDULED
    )


def campaigns_open_and_close(*, now: dt.datetime | None = None) -> list[str]:
    """Start scheduled campaigns whose time has come and stop those past their end; returns what
    it did, one line each (a campaign that cannot start stays scheduled and says why)."""
    now = now or timezone.now()
    done: list[str] = []
    due = Campaign.objects.filter(status=CampaignStatus.SCHEDULED, starts_at__lte=now)
    for campaign_id in due.values_list("id", flat=True):
        try:
            campaign_start(campaign_id=campaign_id)
            done.append(f"started {campaign_id}")
        except CampaignStateError as exc:
            log.warning("scheduled campaign %s cannot start: %s", campaign_id, exc)
            done.append(f"not started {campaign_id}: {exc}")
    over = Campaign.objects.filter(
        status__in=(CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED),
        ends_at__lte=now,
    )
    for campaign_id in over.values_list("id", flat=True):
        campaign_stop(campaign_id=campaign_id)
        done.append(f"stopped {campaign_id}")
    return done


def campaign_pause(*, campaign_id: int) -> None:
    """Stop new dials at once; calls already placed finish normally."""
    _transition(
        campaign_id=campaign_id, allowed_from=(CampaignStatus.RUNNING,), to=CampaignStatus.PAUSED
    )


def campaign_resume(*, campaign_id: int) -> None:
    _transition(
        campaign_id=campaign_id, allowed_from=(CampaignStatus.PAUSED,), to=CampaignStatus.RUNNING
    )


@transaction.atomic
def campaign_stop(*, campaign_id: int) -> None:
    """End the campaign for good: nothing more is dialed; live calls finish.

    Attempts no engine has taken yet are cancelled, each with its outcome audited (they were
    never dialed); their contacts go back to pending, so the list shows who was never reached.
    """
    now = timezone.now()
    _transition(
        campaign_id=campaign_id,
        allowed_from=(
            CampaignStatus.DRAFT,
            CampaignStatus.SCHEDULED,
            CampaignStatus.RUNNING,
            CampaignStatus.PAUSED,
        ),
        to=CampaignStatus.STOPPED,
        finished_at=now,
    )
    untaken = Q(status__in=(AttemptStatus.QUEUED, AttemptStatus.DIALING), engine=None)
    for attempt_id in CallAttempt.objects.filter(untaken, campaign_id=campaign_id).values_list(
        "id", flat=True
    ):
        attempt_finalise(
            attempt_id=attempt_id,
            status=AttemptStatus.CANCELLED,
            disposition=Disposition.CANCELLED,
            ended_at=now,
            fields={"hangup_cause": "campaign_stopped"},
            only_if=untaken,  # an engine may take it meanwhile: then it is live, left alone
            contact_next=ContactNext.PENDING,
        )
