"""Issue #10's finding, end to end: a campaign whose retry_delays were stored before validation
existed ({"busy": "ten minutes"}) must not get anyone called twice.

What happened: the first busy result raised ValueError in the engine's database writer, which
killed its thread. The engine kept taking calls, but nothing it did was written any more, its
heartbeat included: the reaper closed its answered call as failed/engine_lost, the retry policy
called the contact again, and the person answered twice.

Real processes: a Celery worker with beat, a 2-process engine pool and the built-in pjsua2
callee (numbers ending 5 are busy, ending 0 answer). One call at a time, so both calls meet the
same engine (the supervisor gives a call to the first engine with the most room).
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import CallAttempt, Campaign, Contact
from campaigns.services.lifecycle import campaign_start
from dialer.processes import ManagedProcess
from tests.helpers.factories import (
    make_caller_id,
    make_campaign,
    make_contact,
    make_sender,
    make_trunk,
)
from tests.helpers.processes import CalleeProcess
from tests.helpers.stack import engine_pool, worker
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.slow

BUSY, ANSWERS = "+919876500015", "+919876500010"
# Stored before validation: the bad busy delay, and a short wait after a failed attempt so that
# a contact closed as engine_lost is called again within the test (the default is 300 s).
OLD_RETRY_DELAYS = {"busy": "ten minutes", "failed": 2}


@pytest.fixture
def stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[CalleeProcess, Path]]:
    callee = CalleeProcess(tmp_path)
    started: list[ManagedProcess] = []
    try:
        # Listed before they start, so that one that fails to start is stopped too.
        started.append(engine_pool(stack_env, tmp_path, 2, drain_seconds=3))
        started[-1].start(ready="engine ready")
        started.append(worker(stack_env, tmp_path))
        started[-1].start(ready="ready.")
        yield callee, tmp_path
    finally:
        for proc in reversed(started):
            proc.stop(timeout=15)
        callee.stop()


def _invites(callee: CalleeProcess) -> collections.Counter[str]:
    """INVITEs the callee received, by the number's last four digits (one log line per incoming
    call; logs may mask the rest of a number)."""
    users = re.findall(r"call \d+ to '([^']*)': first response", callee.output())
    return collections.Counter(user[-4:] for user in users)


def test_an_old_bad_retry_delay_gets_nobody_called_twice(
    stack: tuple[CalleeProcess, Path],
) -> None:
    callee, logs = stack
    sender = make_sender(sector="bfsi")
    trunk = make_trunk(sip_uri=f"sip:127.0.0.1:{callee.port}", max_cps=20)
    cli = make_caller_id(number="+911600123456", sender=sender, trunk=trunk)
    campaign = make_campaign(
        sender=sender, trunk=trunk, caller_ids=[cli], purpose="transactional",
        max_cps=4, max_concurrent=1, ring_timeout_s=5, max_call_s=2, max_attempts=3,
    )  # fmt: skip
    Campaign.objects.filter(id=campaign.pk).update(retry_delays=OLD_RETRY_DELAYS)
    busy = make_contact(campaign=campaign, number=BUSY)  # dialed first: it was created first
    answers = make_contact(campaign=campaign, number=ANSWERS)

    campaign_start(campaign_id=campaign.pk)
    wait_for(
        lambda: (
            _invites(callee)[ANSWERS[-4:]] >= 2
            or Contact.objects.get(id=answers.pk).status == "done"
        ),
        timeout=60,
        interval=0.2,
        what="the answering contact to be done (or called twice)",
    )
    # Long enough for the reaper to act on an engine whose heartbeat stopped (stale after 3 s,
    # reaped every 5 s), had it stopped: waiting for something not to happen has no condition.
    time.sleep(9)
    invites = _invites(callee)

    attempts = list(CallAttempt.objects.filter(campaign=campaign).order_by("id"))
    story = [(a.number, a.status, a.disposition, a.hangup_cause) for a in attempts]
    engine_log = (logs / "engine.log").read_text(errors="replace")
    writer_errors = [line for line in engine_log.splitlines() if "Error" in line][:5]
    context = f"invites {dict(invites)}; attempts {story}; engine log errors {writer_errors}"

    assert invites[ANSWERS[-4:]] == 1, f"the answering contact was not called once: {context}"
    assert not [a for a in attempts if a.hangup_cause == "engine_lost"], context
    answered = [a for a in attempts if a.number == ANSWERS]
    assert len([a for a in answered if a.taken_at is not None]) == 1, context
    assert [(a.status, a.disposition) for a in answered] == [("ended", "answered")], context
    # The busy contact waits the default busy delay instead of the stored nonsense.
    (busy_attempt,) = [a for a in attempts if a.number == BUSY]
    assert busy_attempt.disposition == "busy", context
    busy.refresh_from_db()
    assert busy.status == "pending" and busy.next_attempt_at is not None
    wait = (busy.next_attempt_at - timezone.now()).total_seconds()
    assert 500 < wait <= 600, wait
