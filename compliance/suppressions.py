"""Adding and lifting suppressions: the only writers of compliance_suppression, each audited.

A suppression is never deleted. Lifting one keeps the row (lifted_at, lifted_by, lift_reason)
and appends a `suppression_lifted` entry, so the log shows when a number became callable again
and who decided it.
"""

from __future__ import annotations

import hmac
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from compliance.audit import audit_append_many
from compliance.keys import token_function
from compliance.models import AuditEntry, Sender, Suppression
from compliance.numbers import to_e164
from compliance.selectors import sender_by_dlt_id


class SuppressionError(ValueError):
    pass


class SuppressionRequest(NamedTuple):
    """A tuple, not a dataclass: a file makes millions, and a frozen dataclass costs twice as
    much to build."""

    number: str  # E.164
    sender_id: int | None
    reason: str


def _sender_id(sender_dlt_id: str | None) -> int | None:
    if not sender_dlt_id:
        return None
    sender = sender_by_dlt_id(dlt_entity_id=sender_dlt_id)
    if sender is None:
        raise SuppressionError(f"sender {sender_dlt_id!r} is not known")
    return sender.pk


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
    """Add a few at once, all or nothing: one audit entry per new suppression."""
    senders = dict(Sender.objects.values_list("id", "dlt_entity_id"))
    with transaction.atomic():
        return _add_batch(requests, actor=actor, senders=senders)


def _add_batch(
    batch: list[SuppressionRequest], *, actor: str, senders: dict[int, str]
) -> list[tuple[Suppression, bool]]:
    """Runs inside the caller's transaction, which also sees the batches before this one."""
    key, digest = token_function()
    tokens = [hmac.digest(key, req.number.encode(), digest).hex() for req in batch]
    active: dict[tuple[str, int | None], Suppression] = {}
    # Newest first, so that where a scope has several active rows the oldest is the one kept.
    for row in Suppression.objects.filter(
        number_token__in=set(tokens), lifted_at__isnull=True
    ).order_by("-id"):
        active[(row.number_token, row.sender_id)] = row
    results: list[tuple[Suppression, bool]] = []
    new: list[Suppression] = []
    for req, token in zip(batch, tokens, strict=True):
        existing = active.get((token, req.sender_id))
        if existing is not None:
            results.append((existing, False))
            continue
        suppression = Suppression(
            number=req.number,
            number_token=token,
            sender_id=req.sender_id,
            reason=req.reason[:200],
            created_by=actor[:150],
        )
        active[(token, req.sender_id)] = suppression
        new.append(suppression)
        results.append((suppression, True))
    Suppression.objects.bulk_create(new)  # sets the ids, which the audit entries name
    audit_append_many(
        [
            {
                "kind": AuditEntry.Kind.SUPPRESSION_ADDED,
                "actor": actor,
                "number": row.number,
                "token": row.number_token,
                "sender_dlt_id": senders.get(row.sender_id, "") if row.sender_id else "",
                "detail": {
                    "suppression_id": row.pk,
                    "scope": "sender" if row.sender_id else "all senders",
                    "reason": row.reason,
                },
            }
            for row in new
        ]
    )
    return results


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
