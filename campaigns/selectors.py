"""Read-only queries about campaigns, for the admin, the demo and reports."""

from __future__ import annotations

from django.db.models import Count

from campaigns.models import CallAttempt, Contact


def campaign_disposition_counts(*, campaign_id: int) -> dict[str, int]:
    """Attempts per disposition ('' = still in progress)."""
    rows = (
        CallAttempt.objects.filter(campaign_id=campaign_id)
        .values("disposition")
        .annotate(n=Count("id"))
    )
    return {row["disposition"] or "in_progress": row["n"] for row in rows}


def campaign_contact_counts(*, campaign_id: int) -> dict[str, int]:
    rows = Contact.objects.filter(campaign_id=campaign_id).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}
