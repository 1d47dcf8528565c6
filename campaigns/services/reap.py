"""Reap: put work lost with a dead worker or engine back, or end it when it may have been dialed."""

from __future__ import annotations

import datetime as dt
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt, Disposition
from campaigns.models.attempt import FINAL_STATUSES
from campaigns.services.attempt_end import attempt_finalise
from telephony.models import EngineProcess


def reap_stale(*, now: dt.datetime | None = None) -> list[int]:
    """Recover from dead workers and engines. Returns the queued attempt ids it sends again.

    - a claim whose worker vanished before deciding goes back to the queue (nothing was dialed:
      engines only take approved attempts);
    - an attempt held by an engine whose heartbeat stopped is closed as failed (its INVITE may
      have gone out, so it is never dialed again; the retry policy decides about the contact);
    - queued attempts older than a few ticks get their Celery task sent again, once the
      caller's transaction commits (or at once, outside one).
    """
    now = now or timezone.now()
    claim_stale = now - dt.timedelta(seconds=settings.DIAL_CLAIM_STALE_S)
    CallAttempt.objects.filter(
        status=AttemptStatus.DIALING, approved_at=None, engine=None, claimed_at__lt=claim_stale
    ).update(status=AttemptStatus.QUEUED, claim_token="", claimed_at=None, queued_at=now)

    dead_before = now - dt.timedelta(seconds=settings.ENGINE_HEARTBEAT_STALE_S)
    dead_engines = EngineProcess.objects.filter(
        Q(heartbeat_at__lt=dead_before) | ~Q(stopped_at=None)
    )
    orphans = CallAttempt.objects.filter(engine__in=dead_engines).exclude(status__in=FINAL_STATUSES)
    for attempt_id in orphans.values_list("id", flat=True):
        attempt_finalise(
            attempt_id=attempt_id,
            status=AttemptStatus.FAILED,
            disposition=Disposition.FAILED,
            ended_at=now,
            fields={"hangup_cause": "engine_lost"},
            now=now,
        )
    lost = now - dt.timedelta(seconds=settings.DIAL_REQUEUE_AFTER_S)
    resend = list(
        CallAttempt.objects.filter(status=AttemptStatus.QUEUED, queued_at__lt=lost).values_list(
            "id", flat=True
        )
    )
    CallAttempt.objects.filter(id__in=resend, status=AttemptStatus.QUEUED).update(queued_at=now)
    for attempt_id in resend:
        # robust: a broker that is down must not fail the reap (or the engine pool calling it);
        # the attempt stays queued and the next reap sends it again.
        transaction.on_commit(partial(_dial, attempt_id), robust=True)
    return resend


def _dial(attempt_id: int) -> None:
    from campaigns.tasks import dial_attempt  # the tasks module imports this one

    dial_attempt.delay(attempt_id)
