"""Adding and lifting suppressions: the only writers of compliance_suppression, each audited.

A suppression is never deleted. Lifting one keeps the row (lifted_at, lifted_by, lift_reason)
and appends a `suppression_lifted` entry, so the log shows when a number became callable again
and who decided it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from compliance.audit import audit_append_many
from compliance.keys import number_token
from compliance.models import AuditEntry, Sender, Suppression
from compliance.numbers import to_e164


class SuppressionError(ValueError):
    pass


@dataclass(frozen=True)
class SuppressionRequest:
    number: str  # E.164
    sender_id: int | None
    reason: str


def _sender_id(sender_dlt_id: str | None) -> int | None:
    if not sender_dlt_id:
        return None
    sender_id = (
        Sender.objects.filter(dlt_entity_id=sender_dlt_id).values_list("id", flat=True).first()
    )
    if sender_id is None:
        raise SuppressionError(f"sender {sender_dlt_id!r} is not known")
    return sender_id


def suppression_add(
    *, number: str, actor: str, sender_dlt_id: str | None = None, reason: str = ""
) -> tuple[Suppression, bool]:
    """Suppress a number (national, trunk-0 or E.164) for one sender or all; effective at the
    next check. Returns the active suppression and whether it is new. Raises InvalidNumber or
    SuppressionError."""
    request = SuppressionRequest(to_e164(number, region="IN"), _sender_id(sender_dlt_id), reason)
    ((suppression, created),) = suppressions_add(requests=[request], actor=actor)
    return suppression, created


def suppressions_add(
    *, requests: list[SuppressionRequest], actor: str
) -> list[tuple[Suppression, bool]]:
    """Add many at once (a file), all or nothing: one audit entry per new suppression."""
    senders = dict(Sender.objects.values_list("id", "dlt_entity_id"))
    results: list[tuple[Suppression, bool]] = []
    audits: list[dict[str, object]] = []
    with transaction.atomic():
        seen: dict[tuple[str, int | None], Suppression] = {}
        for req in requests:
            token = number_token(req.number)
            key = (token, req.sender_id)
            existing = seen.get(key) or _active(token=token, sender_id=req.sender_id)
            if existing is not None:
                results.append((existing, False))
                continue
            suppression = Suppression.objects.create(
                number=req.number,
                number_token=token,
                sender_id=req.sender_id,
                reason=req.reason[:200],
                created_by=actor[:150],
            )
            seen[key] = suppression
            results.append((suppression, True))
            audits.append(
                {
                    "kind": AuditEntry.Kind.SUPPRESSION_ADDED,
                    "actor": actor,
                    "number": req.number,
                    "sender_dlt_id": senders.get(req.sender_id, "") if req.sender_id else "",
                    "detail": {
                        "suppression_id": suppression.pk,
                        "scope": "sender" if req.sender_id else "all senders",
                        "reason": suppression.reason,
                    },
                }
            )
        audit_append_many(audits)
    return results


def _active(*, token: str, sender_id: int | None) -> Suppression | None:
    rows = Suppression.objects.filter(number_token=token, lifted_at__isnull=True)
    if sender_id is None:
        return rows.filter(sender__isnull=True).order_by("id").first()
    return rows.filter(sender_id=sender_id).order_by("id").first()


def suppression_lift(*, suppression_id: int, actor: str, reason: str) -> bool:
    """Lift one suppression (the number becomes callable again for its scope). False if it was
    already lifted. A reason is required: lifting is a decision someone must be able to explain."""
    if not reason.strip():
        raise SuppressionError("a reason is required to lift a suppression")
    now = timezone.now()
    with transaction.atomic():
        lifted = Suppression.objects.filter(id=suppression_id, lifted_at__isnull=True).update(
            lifted_at=now, lifted_by=actor[:150], lift_reason=reason[:200]
        )
        if not lifted:
            return False
        row = Suppression.objects.select_related("sender").get(id=suppression_id)
        audit_append_many(
            [
                {
                    "kind": AuditEntry.Kind.SUPPRESSION_LIFTED,
                    "actor": actor,
                    "number": row.number,
                    "token": row.number_token,
                    "sender_dlt_id": row.sender.dlt_entity_id if row.sender else "",
                    "detail": {
                        "suppression_id": row.pk,
                        "reason": reason[:200],
                        "erasure": row.erasure,
                    },
                }
            ]
        )
    return True
