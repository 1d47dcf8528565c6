"""A campaign dialed by a real Celery worker (Redis broker) through a real engine pool to SIPp,
including a worker and an engine killed mid-campaign."""

from __future__ import annotations

import collections
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaigns.models import CallAttempt, Campaign, Contact
from campaigns.services.lifecycle import campaign_start
from compliance.models import AuditEntry
from dialer.processes import ManagedProcess, celery_cmd, manage_cmd
from telephony.models import EngineProcess
from tests.factories import make_caller_id, make_campaign, make_contact, make_sender, make_trunk
from tests.sipp_harness import SippUAS, free_udp_port
from tests.test_dial_sipp import dial_json


def _worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> ManagedProcess:
    beat_file = str(log_dir / f"{name}-beat")
    cmd = celery_cmd("worker", "-B", "-s", beat_file, "--pool", "prefork", "-c", "2",
                     "-Q", "dialer", "--loglevel", "INFO")  # fmt: skip
    return ManagedProcess(name, cmd, env=env, log_dir=log_dir)


def _engine_pool(env: dict[str, str], log_dir: Path, processes: int) -> ManagedProcess:
    base = free_udp_port()
    cmd = manage_cmd("run_engine", "--processes", str(processes), "--base-port", str(base),
                     "--drain-seconds", "5")  # fmt: skip
    return ManagedProcess("engine", cmd, env=env, log_dir=log_dir)


@pytest.fixture
def processes() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for proc in reversed(started):
        proc.stop(timeout=15)


def _campaign(uri: str, contacts: int, *, max_call_s: int) -> Campaign:
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


def _wait_completed(campaign_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Campaign.objects.get(id=campaign_id).status == "completed":
            return
        time.sleep(0.3)
    states = collections.Counter(
        CallAttempt.objects.filter(campaign_id=campaign_id).values_list("status", flat=True)
    )
    pytest.fail(f"campaign not completed in {timeout}s; attempts: {dict(states)}")


def _assert_each_contact_once(campaign: Campaign, invites: list[str]) -> None:
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


def test_celery_worker_and_engine_pool_dial_a_campaign(
    stack_env: dict[str, str], tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        campaign = _campaign(uas.uri, 6, max_call_s=1)
        processes.append(_engine_pool(stack_env, tmp_path, 1).start(ready="engine ready"))
        processes.append(_worker(stack_env, tmp_path).start(ready="ready."))
        campaign_start(campaign_id=campaign.pk)
        _wait_completed(campaign.pk, timeout=60)
        invites = uas.invites()
    assert len(invites) == 6
    _assert_each_contact_once(campaign, invites)
    dispositions = set(
        CallAttempt.objects.filter(campaign=campaign).values_list("disposition", flat=True)
    )
    assert dispositions == {"answered"}
    pdds = [a.pdd_ms for a in CallAttempt.objects.filter(campaign=campaign)]
    assert all(pdd is not None and pdd < 2000 for pdd in pdds), pdds


def test_killing_worker_and_engine_mid_campaign_loses_no_contact_and_dials_none_twice(
    stack_env: dict[str, str], tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        campaign = _campaign(uas.uri, 14, max_call_s=3)
        pool = _engine_pool(stack_env, tmp_path, 2).start(ready="engine ready")
        processes.append(pool)
        worker = _worker(stack_env, tmp_path).start(ready="ready.")
        processes.append(worker)
        campaign_start(campaign_id=campaign.pk)

        # Wait for live calls, then crash the worker (its tasks in flight) and one engine process.
        deadline = time.monotonic() + 30
        while CallAttempt.objects.filter(campaign=campaign, status="answered").count() < 2:
            assert time.monotonic() < deadline, "no call was answered"
            time.sleep(0.1)
        worker.kill_hard()
        live_call = CallAttempt.objects.filter(campaign=campaign, status="answered").first()
        assert live_call is not None and live_call.engine is not None
        os.kill(live_call.engine.pid, signal.SIGKILL)

        processes.append(_worker(stack_env, tmp_path, "worker2").start(ready="ready."))
        _wait_completed(campaign.pk, timeout=90)
        invites = uas.invites()

    _assert_each_contact_once(campaign, invites)
    lost = CallAttempt.objects.filter(campaign=campaign, hangup_cause="engine_lost")
    assert lost.exists(), "the killed engine's calls were not reconciled"
    assert set(lost.values_list("status", flat=True)) == {"failed"}
    answered = CallAttempt.objects.filter(campaign=campaign, disposition="answered").count()
    assert answered + lost.count() == 14


def test_the_pool_supervisor_spreads_calls_over_its_engines(
    stack_env: dict[str, str], tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        campaign = _campaign(uas.uri, 6, max_call_s=4)
        Campaign.objects.filter(id=campaign.pk).update(max_concurrent=12, max_cps=20)
        processes.append(_engine_pool(stack_env, tmp_path, 3).start(ready="engine ready"))
        processes.append(_worker(stack_env, tmp_path).start(ready="ready."))
        campaign_start(campaign_id=campaign.pk)
        _wait_completed(campaign.pk, timeout=60)
        invites = uas.invites()
    _assert_each_contact_once(campaign, invites)
    per_engine = collections.Counter(
        CallAttempt.objects.filter(campaign=campaign).values_list("engine_id", flat=True)
    )
    # Six overlapping calls, three engines: the supervisor gives each call to the engine with
    # the most room, so no engine carries more than two.
    assert len(per_engine) == 3 and max(per_engine.values()) == 2, per_engine


def test_engine_pool_drains_live_calls_on_sigterm(
    stack_env: dict[str, str], tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        campaign = _campaign(uas.uri, 2, max_call_s=3)
        pool = _engine_pool(stack_env, tmp_path, 1).start(ready="engine ready")
        processes.append(pool)
        processes.append(_worker(stack_env, tmp_path).start(ready="ready."))
        campaign_start(campaign_id=campaign.pk)
        deadline = time.monotonic() + 30
        while not CallAttempt.objects.filter(campaign=campaign, status="answered").exists():
            assert time.monotonic() < deadline, "no call was answered"
            time.sleep(0.1)
        assert pool.stop(timeout=20) == 0  # SIGTERM: stop taking work, let live calls end

    drained = CallAttempt.objects.filter(campaign=campaign, disposition="answered")
    assert drained.exists()
    assert set(drained.values_list("hangup_cause", flat=True)) == {"max_duration"}
    assert not EngineProcess.objects.filter(stopped_at=None).exists()


def test_dial_uses_a_running_pool_which_survives_garbage_on_its_sip_port(
    stack_env: dict[str, str], tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    base = free_udp_port()
    cmd = manage_cmd("run_engine", "--processes", "1", "--base-port", str(base))
    processes.append(ManagedProcess("engine", cmd, env=stack_env, log_dir=tmp_path))
    processes[-1].start(ready="engine ready")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (
            b"\x00\xff" * 300,
            b"INVITE nonsense\r\n\r\n",
            b"SIP/2.0 200\r\nVia: ;;\r\n\r\n",
        ):
            sock.sendto(junk, ("127.0.0.1", base))
    time.sleep(0.5)
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        result = dial_json(stack_env, "+919876543215", uas.uri, "--max-seconds", "1")
    assert result["disposition"] == "answered"
    attempt = CallAttempt.objects.select_related("engine").get(id=result["attempt_id"])
    assert attempt.engine is not None and attempt.engine.sip_port == base
    assert processes[-1].alive()
