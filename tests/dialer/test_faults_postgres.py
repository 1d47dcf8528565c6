"""PostgreSQL restarts mid-campaign: engines keep their calls and queue their events, workers
and beat reconnect, and every contact is accounted for with no number dialed twice."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from django.db import OperationalError, connection

from campaigns.services.lifecycle import campaign_start
from dialer.processes import ManagedProcess
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


def _restart_postgres() -> None:
    version = sorted(Path("/etc/postgresql").iterdir())[0].name
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        timeout=60,
        capture_output=True,
    )


def _connected() -> bool:
    connection.close()
    try:
        connection.ensure_connection()
    except OperationalError:
        return False
    return True


def _reconnect(timeout: float = 30) -> None:
    wait_for(_connected, timeout=timeout, interval=0.5, what="PostgreSQL to come back")


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
            campaign = stack_campaign(uas.uri, 12, max_call_s=3)
            processes.append(engine_pool(stack_env, tmp_path, 2).start(ready="engine ready"))
            processes.append(worker(stack_env, tmp_path).start(ready="ready."))
            campaign_start(campaign_id=campaign.pk)
            wait_answered(campaign)
            _restart_postgres()  # live calls in the engines, tasks in flight in the worker
            _reconnect()
            wait_completed(campaign.pk, timeout=120)
            invites = uas.invites()
        assert_each_contact_once(campaign, invites)
        assert all(p.alive() for p in processes), "a process died with PostgreSQL"
    finally:
        for proc in reversed(processes):
            proc.stop(timeout=15)
        _reconnect()
