"""PostgreSQL restarts mid-campaign: engines keep their calls and queue their events, workers
and beat reconnect, and every contact is accounted for with no number dialed twice."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.db import OperationalError, connection

from campaigns.models import CallAttempt
from campaigns.services.lifecycle import campaign_start
from dialer.processes import ManagedProcess
from tests.sipp_harness import SippUAS
from tests.test_campaign_flow import (
    _assert_each_contact_once,
    _campaign,
    _engine_pool,
    _wait_completed,
    _worker,
)


def _restart_postgres() -> None:
    version = sorted(Path("/etc/postgresql").iterdir())[0].name
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        timeout=60,
        capture_output=True,
    )


def _reconnect(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        connection.close()
        try:
            connection.ensure_connection()
            return
        except OperationalError:
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.5)


@pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None or connection.vendor != "postgresql",
    reason="needs a local PostgreSQL cluster this test may restart",
)
def test_postgres_restart_mid_campaign_loses_no_contact_and_dials_none_twice(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    processes: list[ManagedProcess] = []
    try:
        with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
            campaign = _campaign(uas.uri, 12, max_call_s=3)
            processes.append(_engine_pool(stack_env, tmp_path, 2).start(ready="engine ready"))
            processes.append(_worker(stack_env, tmp_path).start(ready="ready."))
            campaign_start(campaign_id=campaign.pk)
            deadline = time.monotonic() + 30
            while not CallAttempt.objects.filter(campaign=campaign, status="answered").exists():
                assert time.monotonic() < deadline, "no call was answered"
                time.sleep(0.1)
            _restart_postgres()  # live calls in the engines, tasks in flight in the worker
            _reconnect()
            _wait_completed(campaign.pk, timeout=120)
            invites = uas.invites()
        _assert_each_contact_once(campaign, invites)
        assert all(p.alive() for p in processes), "a process died with PostgreSQL"
    finally:
        for proc in reversed(processes):
            proc.stop(timeout=15)
        _reconnect()
