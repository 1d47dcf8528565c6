"""Redis (broker and pacer) dies and comes back mid-campaign: nothing lost, nothing dialed twice."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from campaigns.services.lifecycle import campaign_start
from dialer.processes import ManagedProcess, free_port
from tests.helpers.sipp import SippUAS
from tests.helpers.stack import (
    assert_each_contact_once,
    engine_pool,
    stack_campaign,
    wait_answered,
    wait_completed,
    worker,
)
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.slow


def _redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    # A private, non-persistent server: a restart loses every queued and unacked task, the
    # worst case for the broker, and every pacing lease.
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(
        lambda: (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
            ).stdout.strip()
            == "PONG"
        ),
        timeout=10,
        interval=0.1,
        what="redis-server to answer PING",
    )
    return proc


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_redis_restart_mid_campaign_loses_no_contact_and_dials_none_twice(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    redis_proc = _redis(port, tmp_path)
    env = dict(
        subprocess_env,
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        PYTHONUNBUFFERED="1",
        ENGINE_HEARTBEAT_STALE_S="3",
        DIAL_REQUEUE_AFTER_S="3",
        DIAL_CLAIM_STALE_S="5",
        DIALER_TICK_SECONDS="0.5",
    )
    env.pop("CELERY_BROKER_URL", None)
    processes: list[ManagedProcess] = []
    try:
        with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
            campaign = stack_campaign(uas.uri, 12, max_call_s=2)
            processes.append(engine_pool(env, tmp_path, 2).start(ready="engine ready"))
            processes.append(worker(env, tmp_path).start(ready="ready."))
            campaign_start(campaign_id=campaign.pk)
            wait_answered(campaign)
            redis_proc.kill()  # mid-campaign: broker, queued tasks and pacing leases gone
            redis_proc.wait(timeout=10)
            time.sleep(3)  # the outage: Redis stays down this long
            redis_proc = _redis(port, tmp_path)
            wait_completed(campaign.pk, timeout=120)
            invites = uas.invites()
        assert_each_contact_once(campaign, invites)
        assert all(p.alive() for p in processes), "a process died with Redis"
    finally:
        for proc in reversed(processes):
            proc.stop(timeout=15)
        redis_proc.kill()
        redis_proc.wait(timeout=10)
