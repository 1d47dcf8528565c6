"""Saving caller IDs, audited: which numbers a sender may present is compliance data (the
series rule and the ownership rule of the check read it)."""

from __future__ import annotations

from django.db import transaction

from campaigns.models import CallerId
from compliance.audit import audit_record_change
from compliance.models import AuditEntry

AUDITED_FIELDS = ("number", "series", "sender_id", "trunk_id", "active", "daily_max")


def _values(caller_id: CallerId) -> dict[str, object]:
    values: dict[str, object] = {name: getattr(caller_id, name) for name in AUDITED_FIELDS}
    archived = getattr(caller_id, "archived_at", None)
    values["archived_at"] = archived.isoformat() if archived else None
    return values


def caller_id_save(*, caller_id: CallerId, actor: str) -> CallerId:
    """Create or update a caller ID and append a `caller_id_changed` entry with what changed."""
    with transaction.atomic():
        before = None
        if caller_id.pk is not None:
            stored = CallerId.objects.select_for_update().filter(pk=caller_id.pk).first()
            before = _values(stored) if stored else None
        caller_id.save()
        audit_record_change(
            kind=AuditEntry.Kind.CALLER_ID_CHANGED,
            actor=actor,
            sender_dlt_id=caller_id.sender.dlt_entity_id,
            ref={"caller_id": caller_id.pk},
            before=before,
            after=_values(caller_id),
        )
    return caller_id
