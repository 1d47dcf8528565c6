"""Recording decisions: the rule values in force are logged whenever they change, then the
decision itself, so every decision in the log can be tied to the exact policy it applied."""

from __future__ import annotations

from compliance.audit import audit_decision, audit_policy
from compliance.models import AuditEntry
from compliance.policy import Policy, policy_from_settings
from compliance.services import Decision

# The fingerprint this process last saw recorded; saves a query per decision.
_recorded_fingerprint: str | None = None


def policy_record_if_changed(*, policy: Policy) -> bool:
    """Write a 'policy' audit entry when the rule values differ from the last recorded ones."""
    global _recorded_fingerprint
    fingerprint = policy.fingerprint()
    if fingerprint == _recorded_fingerprint:
        return False
    last = (
        AuditEntry.objects.filter(kind=AuditEntry.Kind.POLICY)
        .order_by("-id")
        .values_list("detail", flat=True)
        .first()
    )
    previous = last.get("fingerprint") if isinstance(last, dict) else None
    changed = previous != fingerprint
    if changed:
        audit_policy(
            policy={**policy.as_dict(), "fingerprint": fingerprint, "previous": previous},
            previous_hash=previous,
        )
    _recorded_fingerprint = fingerprint
    return changed


def decision_record(
    *, decision: Decision, attempt_id: int | None, campaign_id: int | None, sender_dlt_id: str
) -> None:
    policy_record_if_changed(policy=policy_from_settings())
    audit_decision(
        decision=decision,
        attempt_id=attempt_id,
        campaign_id=campaign_id,
        sender_dlt_id=sender_dlt_id,
    )
