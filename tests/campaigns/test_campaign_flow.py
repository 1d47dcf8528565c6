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

from campaigns.models import CallAttempt, Campaign
from campaigns.services.lifecycle import campaign_start
from dialer.processes import ManagedProcess, manage_cmd
from telephony.pool.models import EngineProcess
from tests.helpers.processes import dial_json
from tests.helpers.sipp import SippUAS, free_udp_port
from tests.helpers.stack import (
    assert_each_contact_once,
    engine_pool,
    stack_campaign,
    wait_answered,
    wait_completed,
    worker,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def processes() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for proc in reversed(started):
        proc.stop(timeout=15)


def test_celery_worker_and_engine_pool_dial_a_campaign(
    stack_env: dict[str, str], tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        campaign = stack_campaign(uas.uri, 6, max_call_s=1)
        processes.append(engine_pool(stack_env, tmp_path, 1).start(ready="engine ready"))
        processes.append(worker(stack_env, tmp_path).start(ready="ready."))
        campaign_start(campaign_id=campaign.pk)
        wait_completed(campaign.pk, timeout=60)
        invites = uas.invites()
    assert len(invites) == 6
    assert_each_contact_once(campaign, invites)
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
        campaign = stack_campaign(uas.uri, 14, max_call_s=3)
        pool = engine_pool(stack_env, tmp_path, 2).start(ready="engine ready")
        processes.append(pool)
        first_worker = worker(stack_env, tmp_path).start(ready="ready.")
        processes.append(first_worker)
        campaign_start(campaign_id=campaign.pk)

        # Wait for live calls, then crash the worker (its tasks in flight) and one engine process.
        wait_answered(campaign, 2)
        first_worker.kill_hard()
        live_call = CallAttempt.objects.filter(campaign=campaign, status="answered").first()
        assert live_call is not None and live_call.engine is not None
        os.kill(live_call.engine.pid, signal.SIGKILL)

        processes.append(worker(stack_env, tmp_path, "worker2").start(ready="ready."))
        wait_completed(campaign.pk, timeout=90)
        invites = uas.invites()

    assert_each_contact_once(campaign, invites)
    lost = CallAttempt.objects.filter(campaign=campaign, hangup_cause="engine_lost")
    assert lost.exists(), "the killed engine's calls were not reconciled"
    assert set(lost.values_list("status", flat=True)) == {"failed"}
    answered = CallAttempt.objects.filter(campaign=campaign, disposition="answered").count()
    assert answered + lost.count() == 14


def test_the_pool_supervisor_spreads_calls_over_its_engines(
    stack_env: dict[str, str], tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        campaign = stack_campaign(uas.uri, 6, max_call_s=4)
        Campaign.objects.filter(id=campaign.pk).update(max_concurrent=12, max_cps=20)
        processes.append(engine_pool(stack_env, tmp_path, 3).start(ready="engine ready"))
        processes.append(worker(stack_env, tmp_path).start(ready="ready."))
        campaign_start(campaign_id=campaign.pk)
        wait_completed(campaign.pk, timeout=60)
        invites = uas.invites()
    assert_each_contact_once(campaign, invites)
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
        campaign = stack_campaign(uas.uri, 2, max_call_s=3)
        pool = engine_pool(stack_env, tmp_path, 1).start(ready="engine ready")
        processes.append(pool)
        processes.append(worker(stack_env, tmp_path).start(ready="ready."))
        campaign_start(campaign_id=campaign.pk)
        wait_answered(campaign)
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
    time.sleep(0.5)  # the junk reaches the engine first; nothing to wait on but its still running
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        result = dial_json(stack_env, "+919876543215", uas.uri, "--max-seconds", "1")
    assert result["disposition"] == "answered"
    attempt = CallAttempt.objects.select_related("engine").get(id=result["attempt_id"])
    assert attempt.engine is not None and attempt.engine.sip_port == base
    assert processes[-1].alive()
