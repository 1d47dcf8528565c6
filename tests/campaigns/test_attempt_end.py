"""attempt_finalise is the one way an attempt ends: once, audited, its contact moved on."""

from __future__ import annotations

import ast
import datetime as dt
from types import SimpleNamespace

import pytest
from django.db.models import Q
from django.utils import timezone
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks, Settings

from campaigns.models import AttemptStatus, CallAttempt, Contact, Disposition
from campaigns.models.attempt import FINAL_STATUSES
from campaigns.services import reap
from campaigns.services.attempt_end import ContactNext, attempt_finalise
from campaigns.services.dispatch import dispatch_due
from compliance.models import AuditEntry
from tests.helpers.factories import make_engine_process, make_started_campaign
from tests.helpers.paths import REPO

FINAL_NAMES = {s.name for s in FINAL_STATUSES}
FINAL_VALUES = {s.value for s in FINAL_STATUSES}


def _sets_a_final_status(call: ast.Call) -> bool:
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "update"):
        return False
    for keyword in call.keywords:
        if keyword.arg != "status":
            continue
        # Anywhere in the value: `A.FAILED if failed else A.ENDED` sets a final status too.
        for node in ast.walk(keyword.value):
            if isinstance(node, ast.Attribute) and node.attr in FINAL_NAMES:
                return True
            if isinstance(node, ast.Constant) and node.value in FINAL_VALUES:
                return True
    return False


def test_only_attempt_finalise_updates_an_attempt_to_a_final_status() -> None:
    offenders = []
    for package in ("campaigns", "telephony", "compliance", "dialer"):
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts or path.name == "attempt_end.py":
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            offenders += [
                f"{path.relative_to(REPO)}:{node.lineno}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Call) and _sets_a_final_status(node)
            ]
    assert offenders == [], "end attempts through campaigns.services.attempt_end"


@pytest.mark.django_db
def test_an_attempt_is_finalised_once_and_audited_once() -> None:
    make_started_campaign(contacts=1)
    make_engine_process()
    (attempt_id,) = dispatch_due()

    def end(disposition: Disposition) -> bool:
        return attempt_finalise(
            attempt_id=attempt_id,
            status=AttemptStatus.FAILED,
            disposition=disposition,
            ended_at=timezone.now(),
            contact_next=ContactNext.DONE,
        )

    assert end(Disposition.FAILED) is True
    assert end(Disposition.BUSY) is False  # a late second end changes nothing
    attempt = CallAttempt.objects.get(id=attempt_id)
    assert (attempt.status, attempt.disposition) == ("failed", "failed")
    assert AuditEntry.objects.filter(kind="outcome", attempt_id=attempt_id).count() == 1
    contact = Contact.objects.get(id=attempt.contact_id)
    assert (contact.status, contact.last_disposition) == ("done", "failed")


@pytest.mark.django_db
def test_a_guard_that_does_not_hold_leaves_the_attempt_alone() -> None:
    make_started_campaign(contacts=1)
    make_engine_process()
    (attempt_id,) = dispatch_due()
    assert not attempt_finalise(
        attempt_id=attempt_id,
        status=AttemptStatus.BLOCKED,
        disposition=Disposition.BLOCKED,
        ended_at=timezone.now(),
        only_if=Q(claim_token="someone-else"),
    )
    assert CallAttempt.objects.get(id=attempt_id).status == "queued"
    assert not AuditEntry.objects.filter(kind="outcome", attempt_id=attempt_id).exists()


def test_a_status_that_is_not_final_is_refused() -> None:
    with pytest.raises(ValueError, match="not a final status"):
        attempt_finalise(
            attempt_id=1,
            status=AttemptStatus.RINGING,
            disposition=Disposition.ANSWERED,
            ended_at=timezone.now(),
        )


@pytest.mark.django_db
def test_reap_sends_lost_tasks_again_once_its_transaction_commits(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    make_started_campaign(contacts=1)
    make_engine_process()
    (attempt_id,) = dispatch_due()
    sent: list[int] = []
    monkeypatch.setattr("campaigns.tasks.dial_attempt", SimpleNamespace(delay=sent.append))
    later = timezone.now() + dt.timedelta(seconds=settings.DIAL_REQUEUE_AFTER_S + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert reap.reap_stale(now=later) == [attempt_id]
        assert sent == []  # not before the commit
    assert sent == [attempt_id]
