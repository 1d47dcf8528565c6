"""Read-only queries about compliance data, for the commands, exports, scrub and the admin.

The last-moment check's own lookups are not here: they are one hand-written statement
(compliance.facts) because they run before every dial.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from compliance.keys import number_token
from compliance.models import AuditEntry, Consent, Sender, Suppression


def sender_by_dlt_id(*, dlt_entity_id: str) -> Sender | None:
    return Sender.objects.filter(dlt_entity_id=dlt_entity_id).first()


def audit_entry_list(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    campaign_id: int | None = None,
    number: str | None = None,
    sender_dlt_id: str | None = None,
) -> QuerySet[AuditEntry]:
    """Audit entries in id order (the chain's order), narrowed by each filter given."""
    entries = AuditEntry.objects.order_by("id")
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if until is not None:
        entries = entries.filter(created_at__lt=until)
    if campaign_id is not None:
        entries = entries.filter(campaign_id=campaign_id)
    if number is not None:
        # By token: entries about the number stay findable after its clear text was erased.
        entries = entries.filter(number_token=number_token(number))
    if sender_dlt_id is not None:
        entries = entries.filter(sender_dlt_id=sender_dlt_id)
    return entries


def consents_valid(*, sender_id: int, scope: str, at: dt.datetime) -> QuerySet[Consent]:
    """The sender's consents of this scope in force at `at`: given, not expired, not revoked."""
    return (
        Consent.objects.filter(sender_id=sender_id, scope=scope, given_at__lte=at)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=at))
    )


def suppressions_binding(*, sender_id: int | None) -> QuerySet[Suppression]:
    """Active suppressions that stop the sender's calls: its own, every sender's, and erasures'."""
    return Suppression.objects.filter(lifted_at__isnull=True).filter(
        Q(sender__isnull=True) | Q(sender_id=sender_id) | Q(erasure=True)
    )
