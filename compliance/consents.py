"""Adding, changing and revoking consents: the only writers of compliance_consent, audited.

A consent is keyed by (sender, reference). Its number and scope never change (a reference is
one person's consent for one purpose); a revocation is permanent: nothing un-revokes it or moves
it later, and a renewed consent arrives under a new reference (DCA issues a new one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from compliance.audit import audit_append_many, iso_utc
from compliance.keys import number_token
from compliance.models import AuditEntry, Consent, Sender


class ConsentError(ValueError):
    pass


@dataclass(frozen=True)
class ConsentData:
    number: str  # E.164
    sender_id: int
    scope: str
    given_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    reference: str


@dataclass
class ConsentChanges:
    created: int = 0
    changed: int = 0
    revoked: int = 0
    unchanged: int = 0


def _when(value: dt.datetime | None) -> str | None:
    return iso_utc(value) if value else None


def consent_conflict(*, existing: Consent, data: ConsentData) -> str | None:
    """Why applying `data` over `existing` is refused, or None."""
    if existing.number_token != number_token(data.number):
        return f"reference {data.reference!r} belongs to another number"
    if existing.scope != data.scope:
        return f"reference {data.reference!r} is a {existing.scope} consent"
    if existing.revoked_at and (data.revoked_at is None or data.revoked_at > existing.revoked_at):
        return (
            f"reference {data.reference!r} was revoked at {iso_utc(existing.revoked_at)}: a "
            "revocation is permanent (a renewed consent needs a new reference)"
        )
    return None


def consents_apply(*, rows: list[ConsentData], actor: str) -> ConsentChanges:
    """Create or update consents, all or nothing, with one audit entry per change. Raises
    ConsentError (nothing applied) when a row would change a consent's number or scope or
    lift a revocation."""
    changes = ConsentChanges()
    senders = dict(Sender.objects.values_list("id", "dlt_entity_id"))
    audits: list[dict[str, object]] = []
    with transaction.atomic():
        for data in rows:
            existing = (
                Consent.objects.select_for_update()
                .filter(sender_id=data.sender_id, reference=data.reference)
                .first()
            )
            base = {
                "actor": actor,
                "number": data.number,
                "sender_dlt_id": senders.get(data.sender_id, ""),
                "purpose": data.scope,
            }
            if existing is None:
                consent = Consent.objects.create(
                    number=data.number,
                    number_token=number_token(data.number),
                    sender_id=data.sender_id,
                    scope=data.scope,
                    given_at=data.given_at,
                    expires_at=data.expires_at,
                    revoked_at=data.revoked_at,
                    reference=data.reference,
                )
                changes.created += 1
                audits.append({**base, "kind": AuditEntry.Kind.CONSENT_ADDED,
                               "detail": _detail(consent)})  # fmt: skip
                continue
            if problem := consent_conflict(existing=existing, data=data):
                raise ConsentError(problem)
            before = _detail(existing)
            existing.given_at, existing.expires_at = data.given_at, data.expires_at
            if data.revoked_at is not None:
                existing.revoked_at = data.revoked_at
            after = _detail(existing)
            if after == before:
                changes.unchanged += 1
                continue
            existing.save(update_fields=["given_at", "expires_at", "revoked_at"])
            revoked = before["revoked_at"] != after["revoked_at"]
            changes.revoked += revoked
            changes.changed += not revoked
            kind = AuditEntry.Kind.CONSENT_REVOKED if revoked else AuditEntry.Kind.CONSENT_CHANGED
            audits.append({**base, "kind": kind, "detail": {**after, "before": before}})
        audit_append_many(audits)
    return changes


def consent_revoke(*, consent_id: int, actor: str, at: dt.datetime | None = None) -> bool:
    """Revoke a consent now (or at `at`, never later than an earlier revocation)."""
    at = at or timezone.now()
    with transaction.atomic():
        consent = Consent.objects.select_for_update().select_related("sender").get(id=consent_id)
        if consent.revoked_at is not None and consent.revoked_at <= at:
            return False
        before = _detail(consent)
        consent.revoked_at = at
        consent.save(update_fields=["revoked_at"])
        audit_append_many(
            [
                {
                    "kind": AuditEntry.Kind.CONSENT_REVOKED,
                    "actor": actor,
                    "number": consent.number,
                    "token": consent.number_token,
                    "sender_dlt_id": consent.sender.dlt_entity_id,
                    "purpose": consent.scope,
                    "detail": {**_detail(consent), "before": before},
                }
            ]
        )
    return True


def _detail(consent: Consent) -> dict[str, object]:
    return {
        "consent_id": consent.pk,
        "reference": consent.reference,
        "scope": consent.scope,
        "given_at": _when(consent.given_at),
        "expires_at": _when(consent.expires_at),
        "revoked_at": _when(consent.revoked_at),
    }
