"""Writing the audit log: every decision before the call, every outcome after it."""

from __future__ import annotations

from compliance.models import AuditEntry
from compliance.services import Decision


def audit_decision(
    *, decision: Decision, attempt_id: int | None, campaign_id: int | None, sender_dlt_id: str
) -> AuditEntry:
    return AuditEntry.objects.create(
        kind=AuditEntry.Kind.DECISION,
        attempt_id=attempt_id,
        campaign_id=campaign_id,
        sender_dlt_id=sender_dlt_id,
        number=decision.number,
        purpose=decision.purpose,
        allowed=decision.allowed,
        reasons=list(decision.reasons),
        detail={
            **decision.inputs,
            "local_time": decision.local_time,
            "registry_version": decision.registry_version,
            "consent": decision.consent,
        },
    )


def audit_outcome(
    *,
    attempt_id: int,
    campaign_id: int,
    sender_dlt_id: str,
    number: str,
    purpose: str,
    detail: dict[str, object],
) -> AuditEntry:
    return AuditEntry.objects.create(
        kind=AuditEntry.Kind.OUTCOME,
        attempt_id=attempt_id,
        campaign_id=campaign_id,
        sender_dlt_id=sender_dlt_id,
        number=number,
        purpose=purpose,
        detail=detail,
    )
