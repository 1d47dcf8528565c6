"""What a campaign promised stays promised, and call history is never deleted.

The compliance gate checks each call against the campaign's purpose, category, sender and caller
IDs, and the pre-flight scrubbed its list for exactly those. Changing them once the campaign has
left draft (say promotional to transactional, which skips the DND registry, suppression and the
calling windows) would dial people under rules they were never checked for: make a new campaign
instead. The admin shows these fields read-only after draft; the receivers here refuse the change
on every other path (a forged POST, a shell, a command). QuerySet.update() bypasses model
signals, so services never update these fields that way.

Connected in CampaignsConfig.ready().
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.db.models.signals import m2m_changed, pre_delete, pre_save
from django.dispatch import receiver

from campaigns.models import CallerId, Campaign, CampaignStatus
from campaigns.selectors import callerid_has_history

# Field name -> column attribute; and caller_ids, below.
_PROMISED = {"sender": "sender_id", "purpose": "purpose", "category": "category"}
PROMISED_FIELDS = tuple(_PROMISED)


class CampaignLockedError(ValidationError):
    """A change to what a campaign promised after it left draft."""


def _locked(*, campaign_id: int, status: str, changed: str) -> CampaignLockedError:
    return CampaignLockedError(
        f"campaign {campaign_id} has left draft ({status}): its sender, purpose, category and "
        f"caller IDs are fixed; make a new campaign to change them (changed: {changed})"
    )


@receiver(pre_save, sender=Campaign, dispatch_uid="campaign_promises_kept")
def _promised_fields_kept(sender: type[Campaign], instance: Campaign, **kwargs: Any) -> None:
    if instance._state.adding or instance.pk is None:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not set(update_fields) & {*_PROMISED, *_PROMISED.values()}:
        return
    stored = Campaign.objects.filter(pk=instance.pk).values("status", *_PROMISED.values()).first()
    if stored is None or stored["status"] == CampaignStatus.DRAFT:
        return
    changed = [name for name, att in _PROMISED.items() if stored[att] != getattr(instance, att)]
    if changed:
        raise _locked(campaign_id=instance.pk, status=stored["status"], changed=", ".join(changed))


@receiver(m2m_changed, sender=Campaign.caller_ids.through, dispatch_uid="campaign_clis_kept")
def _caller_ids_kept(
    sender: type,
    instance: Campaign | CallerId,
    action: str,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    if action not in ("pre_add", "pre_remove", "pre_clear") or pk_set == set():
        return
    if not isinstance(instance, CallerId):
        campaigns = Campaign.objects.filter(pk=instance.pk)
    elif pk_set is None:  # callerid.campaigns.clear()
        campaigns = instance.campaigns.all()
    else:  # callerid.campaigns.add(...) / remove(...): pk_set holds campaigns
        campaigns = Campaign.objects.filter(pk__in=pk_set)
    # A campaign created straight into a running state by code (the dial command, benches) gets
    # its caller IDs right after: the first set of an empty pool is part of creating it.
    locked = (
        campaigns.exclude(status=CampaignStatus.DRAFT)
        .filter(caller_ids__isnull=False)
        .values_list("pk", "status")
        .first()
    )
    if locked is not None:
        raise _locked(campaign_id=locked[0], status=locked[1], changed="caller IDs")


@receiver(pre_delete, sender=CallerId, dispatch_uid="caller_id_history_kept")
def _caller_id_history_kept(sender: type[CallerId], instance: CallerId, **kwargs: Any) -> None:
    # Nothing references a caller ID by foreign key (attempts keep the number), so PROTECT
    # cannot do this; deleting one would also silently shrink its campaigns' promised pool.
    if callerid_has_history(caller_id=instance):
        raise ProtectedError(
            f"caller ID {instance} has call history: archive it instead", {instance}
        )
