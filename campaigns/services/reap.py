"""Reap: put work lost with a dead worker or engine back, or end it when it may have been dialed."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt
from campaigns.models.attempt import FINAL_STATUSES
from campaigns.services.outcomes import attempt_close
from telephony.models import EngineProcess


def reap_stale(*, now: dt.datetime | None = None) -> list[int]:
    """Recover from dead workers and engines. Returns queued attempt ids to (re-)enqueue.

    - a claim whose worker vanished before deciding goes back to the queue (nothing was dialed:
      engines only take approved attempts);
    - an attempt held by an engine whose heartbeat stopped is closed as failed (its INVITE may
      have gone out, so it is never dialed again; the retry policy decides about the contact);
    - queued attempts older than a few ticks are returned so their Celery task is sent again.
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
        with transaction.atomic():
            closed = (
                CallAttempt.objects.filter(id=attempt_id)
                .exclude(status__in=FINAL_STATUSES)
                .update(
                    status=AttemptStatus.FAILED,
                    disposition="failed",
                    ended_at=now,
                    hangup_cause="engine_lost",
                )
            )
            if closed == 1:
                attempt_close(attempt_id=attempt_id, now=now)
    lost = now - dt.timedelta(seconds=settings.DIAL_REQUEUE_AFTER_S)
    resend = list(
        CallAttempt.objects.filter(status=AttemptStatus.QUEUED, queued_at__lt=lost).values_list(
            "id", flat=True
        )
    )
    CallAttempt.objects.filter(id__in=resend, status=AttemptStatus.QUEUED).update(queued_at=now)
    return resend
