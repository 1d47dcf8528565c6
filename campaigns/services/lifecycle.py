"""Campaign lifecycle: start, pause, resume, stop. Each is a conditional UPDATE on the status."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from campaigns.services.preflight import campaign_preflight


class CampaignStateError(Exception):
    """The campaign is not in a state that allows the requested change."""


def _transition(
    *, campaign_id: int, allowed_from: tuple[str, ...], to: str, **extra: object
) -> None:
    changed = Campaign.objects.filter(id=campaign_id, status__in=allowed_from).update(
        status=to, **extra
    )
    if changed != 1:
        current = Campaign.objects.filter(id=campaign_id).values_list("status", flat=True).first()
        raise CampaignStateError(
            f"campaign {campaign_id} is {current or 'missing'}; cannot go to {to} "
            f"(only from {', '.join(allowed_from)})"
        )


@transaction.atomic
def campaign_start(*, campaign_id: int) -> None:
    """Start dialing a draft campaign. Its contacts become due now."""
    campaign = Campaign.objects.select_for_update().get(id=campaign_id)
    if not campaign.caller_ids.filter(active=True).exists():
        raise CampaignStateError(f"campaign {campaign_id} has no active caller ID")
    if not campaign.trunk.enabled:
        raise CampaignStateError(f"campaign {campaign_id}: trunk {campaign.trunk} is disabled")
    preflight = campaign_preflight(campaign_id=campaign_id)
    cli_issues: dict[str, list[str]] = preflight["cli_issues"]  # type: ignore[assignment]
    if cli_issues:
        # Every call from such a caller ID would be refused: fix the pool before dialing.
        problems = "; ".join(f"{cli}: {', '.join(why)}" for cli, why in cli_issues.items())
        raise CampaignStateError(f"campaign {campaign_id}: caller IDs not allowed ({problems})")
    _transition(
        campaign_id=campaign_id,
        allowed_from=(CampaignStatus.DRAFT,),
        to=CampaignStatus.RUNNING,
        started_at=timezone.now(),
    )


def campaign_pause(*, campaign_id: int) -> None:
    """Stop new dials at once; calls already placed finish normally."""
    _transition(
        campaign_id=campaign_id, allowed_from=(CampaignStatus.RUNNING,), to=CampaignStatus.PAUSED
    )


def campaign_resume(*, campaign_id: int) -> None:
    _transition(
        campaign_id=campaign_id, allowed_from=(CampaignStatus.PAUSED,), to=CampaignStatus.RUNNING
    )


def campaign_stop(*, campaign_id: int) -> None:
    """End the campaign for good: nothing more is dialed; live calls finish."""
    _transition(
        campaign_id=campaign_id,
        allowed_from=(CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED),
        to=CampaignStatus.STOPPED,
        finished_at=timezone.now(),
    )
