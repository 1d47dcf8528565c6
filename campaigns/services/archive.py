"""Archiving: what has call history is put away, never deleted (the attempts PROTECT it).

An archived campaign is hidden from the admin's default list, read-only, and can never start
again; an archived caller ID is never presented on a call.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from campaigns.models import CallerId, Campaign, CampaignStatus
from campaigns.services.caller_ids import caller_id_save
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


def callerid_archive(*, caller_id_id: int, actor: str) -> bool:
    """Never present this number again (its campaigns keep it in their promised pool, unused).
    False if it was archived already. Audited, like every caller-ID change."""
    with transaction.atomic():
        caller_id = CallerId.objects.select_for_update().get(id=caller_id_id)
        if caller_id.archived_at is not None:
            return False
        caller_id.archived_at, caller_id.active = timezone.now(), False
        caller_id_save(caller_id=caller_id, actor=actor)
    return True
