"""Claim and check: a worker claims a queued attempt, runs the last-moment compliance check on
it and records the decision. Allowed: the attempt is approved for an engine. Otherwise it ends
as blocked and nothing is dialed (compliance fails closed)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt, Campaign, CampaignStatus, Disposition
from campaigns.selectors import sender_cli_numbers
from campaigns.services.attempt_end import attempt_finalise
from compliance.decision_record import decision_record
from compliance.services import Decision, decide

log = logging.getLogger(__name__)


def attempt_claim(*, attempt_id: int) -> str | None:
    """queued -> dialing for exactly one worker; returns its claim token, or None if it lost."""
    token = uuid.uuid4().hex
    changed = CallAttempt.objects.filter(id=attempt_id, status=AttemptStatus.QUEUED).update(
        status=AttemptStatus.DIALING, claim_token=token, claimed_at=timezone.now()
    )
    return token if changed == 1 else None


def _choose_cli(*, campaign: Campaign, attempt_id: int) -> str:
    usable = campaign.caller_ids.filter(active=True, archived_at=None)
    clis = sorted(usable.values_list("number", flat=True))
    return clis[attempt_id % len(clis)] if clis else ""


def attempt_check(
    *, attempt_id: int, token: str, now: dt.datetime | None = None
) -> Decision | None:
    """Run the last-moment compliance check on a claimed attempt and record it.

    Allowed: the attempt is approved for an engine. Blocked, or the check could not run: the
    attempt is closed as blocked and nothing is dialed (compliance fails closed). None if the
    claim was lost meanwhile.
    """
    now = now or timezone.now()
    attempt = CallAttempt.objects.select_related("campaign__sender").get(id=attempt_id)
    campaign = attempt.campaign
    cli = _choose_cli(campaign=campaign, attempt_id=attempt_id)
    try:
        decision = decide(
            number=attempt.number,
            purpose=campaign.purpose,
            category=campaign.category,
            sender_dlt_id=campaign.sender.dlt_entity_id,
            sector=campaign.sender.sector,
            cli=cli,
            at=now,
            owned_clis=sender_cli_numbers(sender_id=campaign.sender_id),
        )
    except Exception:
        log.exception("attempt %s: compliance check could not run; not dialing", attempt_id)
        decision = Decision(
            number=attempt.number, purpose=campaign.purpose, reasons=("check_unavailable",)
        )
    with transaction.atomic():
        decision_record(
            decision=decision,
            attempt_id=attempt_id,
            campaign_id=campaign.pk,
            sender_dlt_id=campaign.sender.dlt_entity_id,
        )
        claimed = Q(status=AttemptStatus.DIALING, claim_token=token)
        if decision.allowed:
            approve = CallAttempt.objects.filter(claimed, id=attempt_id)
            done = approve.update(approved_at=now, cli=cli) == 1
        else:
            done = attempt_finalise(
                attempt_id=attempt_id,
                status=AttemptStatus.BLOCKED,
                disposition=Disposition.BLOCKED,
                ended_at=now,
                fields={"reasons": list(decision.reasons), "cli": cli},
                only_if=claimed,
                now=now,
            )
        if not done:
            transaction.set_rollback(True)
            return None
    return decision


def attempt_process(*, attempt_id: int) -> str:
    """The worker's whole job for one attempt: claim it, then check it. Safe to run twice."""
    status = (
        Campaign.objects.filter(attempts__id=attempt_id).values_list("status", flat=True).first()
    )
    if status == CampaignStatus.PAUSED:
        return "paused"  # left queued: the reaper sends it again, and it goes on after resume
    token = attempt_claim(attempt_id=attempt_id)
    if token is None:
        return "not_claimed"
    decision = attempt_check(attempt_id=attempt_id, token=token)
    if decision is None:
        return "claim_lost"
    return "approved" if decision.allowed else "blocked"
