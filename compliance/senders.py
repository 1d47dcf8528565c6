"""Saving and archiving senders, audited (a sender's sector decides its caller-ID series)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compliance.audit import audit_record_change
from compliance.models import AuditEntry, Sender

AUDITED_FIELDS = ("dlt_entity_id", "name", "sector", "archived_at")


class SenderError(ValueError):
    pass


def _values(sender: Sender) -> dict[str, object]:
    values = {name: getattr(sender, name) for name in AUDITED_FIELDS}
    values["archived_at"] = sender.archived_at.isoformat() if sender.archived_at else None
    return values


def sender_save(*, sender: Sender, actor: str) -> Sender:
    """Create or update a sender and audit what changed. Its DLT entity id is fixed once created:
    the daily caps and the audit log count by it, so a new id would reset them."""
    with transaction.atomic():
        before = None
        if sender.pk is not None:
            stored = Sender.objects.select_for_update().get(pk=sender.pk)
            if stored.dlt_entity_id != sender.dlt_entity_id:
                raise SenderError("a sender's DLT entity id cannot change: add a new sender")
            before = _values(stored)
        sender.save()
        audit_record_change(
            kind=AuditEntry.Kind.SENDER_CHANGED,
            actor=actor,
            sender_dlt_id=sender.dlt_entity_id,
            ref={"sender_id": sender.pk},
            before=before,
            after=_values(sender),
        )
    return sender


def sender_archive(*, sender_id: int, actor: str) -> bool:
    """Archive a sender (it keeps its history; new campaigns cannot pick it). False if it was."""
    with transaction.atomic():
        # Locked: two archives at once would otherwise both succeed and both be audited.
        sender = Sender.objects.select_for_update().get(pk=sender_id)
        if sender.archived_at is not None:
            return False
        sender.archived_at = timezone.now()
        sender_save(sender=sender, actor=actor)
    return True
