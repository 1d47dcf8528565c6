"""A change to any rule value is itself recorded in the audit log, before the next decision."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from compliance import decision_record as decision_record_module
from compliance.decision_record import decision_record
from compliance.models import AuditEntry
from compliance.services import decide
from compliance.verify import audit_verify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_process_memory() -> None:
    decision_record_module._recorded_fingerprint = None  # as in a newly started worker


def _decide_and_record() -> None:
    decision = decide(
        number="+919876543210",
        purpose="transactional",
        sender_dlt_id=None,
        sector="other",
        cli="+911600123456",
        at=timezone.now(),
    )
    decision_record(decision=decision, attempt_id=None, campaign_id=None, sender_dlt_id="")


def test_policy_is_recorded_once_then_again_when_a_value_changes(settings: Any) -> None:
    _decide_and_record()
    _decide_and_record()
    policies = list(AuditEntry.objects.filter(kind="policy").order_by("id"))
    assert len(policies) == 1
    first = policies[0].detail
    assert first["promo_window"] == "10:00-21:00" and first["max_attempts_per_day"] == 3

    settings.COMPLIANCE_PROMO_WINDOW = "09:00-21:00"
    _decide_and_record()
    policies = list(AuditEntry.objects.filter(kind="policy").order_by("id"))
    assert len(policies) == 2
    assert policies[1].detail["promo_window"] == "09:00-21:00"
    assert policies[1].detail["previous"] == first["fingerprint"]
    decisions = AuditEntry.objects.filter(kind="decision").order_by("id")
    assert decisions.last().detail["policy"] == policies[1].detail["fingerprint"]  # type: ignore[union-attr]
    assert audit_verify().first_broken_id is None


def test_a_restarted_process_does_not_record_an_unchanged_policy() -> None:
    _decide_and_record()
    decision_record_module._recorded_fingerprint = None
    _decide_and_record()
    assert AuditEntry.objects.filter(kind="policy").count() == 1
