"""Archiving: what has call history is put away, never deleted (the attempts PROTECT it).

An archived campaign is hidden from the admin's default list, read-only, and can never start
again; an archived caller ID is never presented on a call. Each is one conditional UPDATE.
"""

from __future__ import annotations

from django.utils import timezone

from campaigns.models import CallerId, Campaign, CampaignStatus
from campaigns.services.lifecycle import CampaignStateError

# Not scheduled, running or paused: those would still dial, so they are stopped first.
ARCHIVABLE = (CampaignStatus.DRAFT, CampaignStatus.STOPPED, CampaignStatus.COMPLETED)


def campaign_archive(*, campaign_id: int) -> None:
    changed = Campaign.objects.filter(
        id=campaign_id, status__in=ARCHIVABLE, archived_at=None
    ).update(archived_at=timezone.now())
    if changed == 1:
        return
    row = Campaign.objects.filter(id=campaign_id).values("status", "archived_at").first()
    if row is None:
        raise CampaignStateError(f"campaign {campaign_id} is missing")
    if row["archived_at"] is not None:
        raise CampaignStateError(f"campaign {campaign_id} is already archived")
    raise CampaignStateError(
        f"campaign {campaign_id} is {row['status']}: stop it before archiving it"
    )


def callerid_archive(*, caller_id_id: int) -> bool:
    """Never present this number again (its campaigns keep it in their promised pool, unused).
    False if it was archived already."""
    changed = CallerId.objects.filter(id=caller_id_id, archived_at=None).update(
        archived_at=timezone.now(), active=False
    )
    return changed == 1
