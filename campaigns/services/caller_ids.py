"""Saving caller IDs, audited: which numbers a sender may present is compliance data (the
series rule and the ownership rule of the check read it)."""

from __future__ import annotations

from django.db import transaction

from campaigns.models import CallerId
from compliance.audit import audit_append
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
        after = _values(caller_id)
        if before == after:
            return caller_id
        changed = {k: v for k, v in after.items() if before is None or before[k] != v}
        audit_append(
            kind=AuditEntry.Kind.CALLER_ID_CHANGED,
            actor=actor,
            sender_dlt_id=caller_id.sender.dlt_entity_id,
            detail={
                "caller_id": caller_id.pk,
                "created": before is None,
                "changed": changed,
                "before": {k: before[k] for k in changed} if before else None,
            },
        )
    return caller_id
