"""A whole dialing stack for end-to-end tests: a Celery worker with beat, an engine pool, and a
campaign for them to dial, with the checks every such test makes at the end."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from campaigns.models import CallAttempt, Campaign, Contact
from compliance.models import AuditEntry
from dialer.processes import ManagedProcess, celery_cmd, manage_cmd
from tests.helpers.factories import (
    make_caller_id,
    make_campaign,
    make_contact,
    make_sender,
    make_trunk,
)
from tests.helpers.sipp import free_udp_port
from tests.helpers.wait import wait_for


def worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> ManagedProcess:
    beat_file = str(log_dir / f"{name}-beat")
    cmd = celery_cmd("worker", "-B", "-s", beat_file, "--pool", "prefork", "-c", "2",
                     "-Q", "dialer", "--loglevel", "INFO")  # fmt: skip
    return ManagedProcess(name, cmd, env=env, log_dir=log_dir)


def engine_pool(
    env: dict[str, str], log_dir: Path, processes: int, *, drain_seconds: int = 5
) -> ManagedProcess:
    base = free_udp_port()
    cmd = manage_cmd("run_engine", "--processes", str(processes), "--base-port", str(base),
                     "--drain-seconds", str(drain_seconds))  # fmt: skip
    return ManagedProcess("engine", cmd, env=env, log_dir=log_dir)


def stack_campaign(uri: str, contacts: int, *, max_call_s: int) -> Campaign:
    """A transactional campaign on a trunk at `uri`, one attempt per contact."""
    sender = make_sender(sector="bfsi")
    trunk = make_trunk(sip_uri=uri, max_cps=20)
    cli = make_caller_id(number="+911600123456", sender=sender, trunk=trunk)
    campaign = make_campaign(
        sender=sender, trunk=trunk, caller_ids=[cli], purpose="transactional",
        max_cps=4, max_concurrent=4, ring_timeout_s=5, max_call_s=max_call_s, max_attempts=1,
    )  # fmt: skip
    for i in range(contacts):
        make_contact(campaign=campaign, number=f"+9198765{i:05d}")
    return campaign


def wait_answered(campaign: Campaign, count: int = 1, timeout: float = 30) -> None:
    wait_for(
        lambda: CallAttempt.objects.filter(campaign=campaign, status="answered").count() >= count,
        timeout=timeout,
        interval=0.1,
        what=f"{count} answered call(s)",
    )


def wait_completed(campaign_id: int, timeout: float) -> None:
    try:
        wait_for(
            lambda: Campaign.objects.get(id=campaign_id).status == "completed",
            timeout=timeout,
            interval=0.3,
            what="the campaign to complete",
        )
    except AssertionError:
        states = collections.Counter(
            CallAttempt.objects.filter(campaign_id=campaign_id).values_list("status", flat=True)
        )
        pytest.fail(f"campaign not completed in {timeout}s; attempts: {dict(states)}")


def assert_each_contact_once(campaign: Campaign, invites: list[str]) -> None:
    numbers = [uri.split("sip:", 1)[1].split("@", 1)[0] for uri in invites]
    dialed_twice = [n for n, c in collections.Counter(numbers).items() if c > 1]
    assert dialed_twice == [], f"INVITEd more than once: {dialed_twice}"
    for contact in Contact.objects.filter(campaign=campaign):
        assert contact.status == "done", (contact.number, contact.status)
        assert contact.call_attempts.count() == 1
    # The audit log is complete: a decision before every dial, an outcome after every end.
    for attempt in CallAttempt.objects.filter(campaign=campaign):
        kinds = sorted(
            AuditEntry.objects.filter(attempt_id=attempt.pk).values_list("kind", flat=True)
        )
        assert kinds == ["decision", "outcome"], (attempt.pk, attempt.status, kinds)
    sent = CallAttempt.objects.filter(campaign=campaign, invite_at__isnull=False).count()
    assert len(invites) <= sent <= len(invites) + 4  # a killed engine may die right after sending
