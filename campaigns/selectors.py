"""Read-only queries about campaigns, for the admin, the demo and reports."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery

from campaigns.models import (
    CallAttempt,
    CallerId,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Trunk,
)


def campaigns_with_counts(*, campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """The campaigns annotated with n_contacts, n_pending (contacts) and n_attempts."""
    return campaigns.annotate(
        n_contacts=_count_of(Contact),
        n_pending=_count_of(Contact, status=ContactStatus.PENDING),
        n_attempts=_count_of(CallAttempt),
    )


def _count_of(model: type[Contact] | type[CallAttempt], **filters: Any) -> Subquery:
    # A subquery per count: joining both contacts and attempts would multiply the rows.
    rows = (
        model.objects.filter(campaign=OuterRef("pk"), **filters)
        .order_by()
        .values("campaign")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Subquery(rows, output_field=IntegerField())


def campaign_disposition_counts(*, campaign_id: int) -> dict[str, int]:
    """Attempts per disposition ('' = still in progress)."""
    rows = (
        CallAttempt.objects.filter(campaign_id=campaign_id)
        .values("disposition")
        .annotate(n=Count("id"))
    )
    return {row["disposition"] or "in_progress": row["n"] for row in rows}


def sender_cli_numbers(*, sender_id: int) -> set[str]:
    """The caller IDs a sender owns and may present now (switched on, not archived): what the
    last-moment check holds a call's caller ID against (cli_not_owned)."""
    usable = CallerId.objects.filter(sender_id=sender_id, active=True, archived_at=None)
    return set(usable.values_list("number", flat=True))


def campaign_contact_counts(*, campaign_id: int) -> dict[str, int]:
    rows = Contact.objects.filter(campaign_id=campaign_id).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


# -- call history: what has it is archived, never deleted ----------------------------------------
def campaign_has_history(*, campaign: Campaign) -> bool:
    return CallAttempt.objects.filter(campaign_id=campaign.pk).exists()


def callerid_has_history(*, caller_id: CallerId) -> bool:
    """Part of a campaign that left draft (its promised pool), or of one that made calls."""
    return (
        caller_id.campaigns.exclude(status=CampaignStatus.DRAFT).exists()
        or CallAttempt.objects.filter(campaign__caller_ids=caller_id).exists()
    )


def trunk_has_history(*, trunk: Trunk) -> bool:
    return CallAttempt.objects.filter(trunk_id=trunk.pk).exists()
