"""Celery tasks: thin wrappers over campaigns.services, with plain ids as arguments."""

from __future__ import annotations

from functools import partial

from celery import shared_task
from django.db import transaction

from campaigns.services.claim_check import attempt_process
from campaigns.services.dispatch import dispatch_due
from campaigns.services.erasure import retention_apply
from campaigns.services.lifecycle import campaigns_open_and_close
from campaigns.services.reap import reap_stale


def _enqueue_after_commit(attempt_ids: list[int]) -> None:
    for attempt_id in attempt_ids:
        transaction.on_commit(partial(dial_attempt.delay, attempt_id))


@shared_task(name="campaigns.dispatch", queue="dialer", ignore_result=True)
def dispatch() -> int:
    """Queue attempts for due contacts (beat runs this every tick)."""
    with transaction.atomic():
        created = dispatch_due()
        _enqueue_after_commit(created)
    return len(created)


# Idempotent by construction (the claim is a conditional UPDATE), so a redelivered or repeated
# task is harmless: acks_late lets a killed worker's task come back instead of being lost.
@shared_task(
    name="campaigns.dial_attempt",
    queue="dialer",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def dial_attempt(attempt_id: int) -> str:
    return attempt_process(attempt_id=attempt_id)


@shared_task(name="campaigns.reap", queue="dialer", ignore_result=True)
def reap() -> int:
    """Put back work lost to dead workers and engines."""
    with transaction.atomic():
        return len(reap_stale())  # it sends the lost tasks again itself, on commit


@shared_task(name="campaigns.schedule", queue="dialer", ignore_result=True)
def schedule() -> int:
    """Open scheduled campaigns whose start time came, close those past their end."""
    return len(campaigns_open_and_close())


@shared_task(name="campaigns.retention", queue="dialer", ignore_result=True)
def retention() -> int:
    """Erase the contact data of campaigns finished longer ago than DATA_RETENTION_DAYS."""
    return retention_apply()
