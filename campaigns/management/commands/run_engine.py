"""python manage.py run_engine --processes N: a supervised pool of pjsua2 engine processes.

Each process holds at most 4 calls (the wheel's compiled PJSUA_MAX_CALLS) on its own SIP port.
The supervisor (telephony.pool.supervisor) is the host's one poller for work, taken through
campaigns.engine_work, and hands each process its calls over a pipe. It starts each process as
`manage.py run_engine_process`, restarts a process that dies and closes that process's calls at
once (the reaper would do it after the heartbeat goes stale). SIGTERM/SIGINT: every process stops
taking work, lets its live calls end (up to --drain-seconds), and exits.
"""

from __future__ import annotations

import subprocess
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.engine_work import CampaignWork
from dialer.processes import manage_cmd, stop_on_signals
from telephony.pool.supervisor import EnginePool


class Command(BaseCommand):
    help = "Run a pool of pjsua2 engine processes (4 calls each) that dial approved attempts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--processes", type=int, default=1)
        parser.add_argument("--host", default=settings.ENGINE_SIP_HOST)
        parser.add_argument("--base-port", type=int, default=settings.ENGINE_BASE_PORT)
        parser.add_argument("--drain-seconds", type=float, default=30.0)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["processes"] < 1:
            raise CommandError("--processes must be at least 1", returncode=2)
        stop = stop_on_signals()

        def spawn(port: int, feed: tuple[int, int]) -> subprocess.Popen[bytes]:
            cmd = manage_cmd(
                "run_engine_process", "--host", opts["host"], "--port", str(port),
                "--jobs-fd", str(feed[0]), "--status-fd", str(feed[1]),
                "--drain-seconds", str(opts["drain_seconds"]),
            )  # fmt: skip
            # Same process group: a group-wide SIGTERM (Ctrl-C, a service manager) drains them all.
            return subprocess.Popen(cmd, pass_fds=feed)

        ports = [opts["base_port"] + i for i in range(opts["processes"])]
        pool = EnginePool(work=CampaignWork(), host=opts["host"], ports=ports, spawn=spawn)
        pool.start()
        self.stdout.write(f"engine pool: {len(ports)} processes on ports {ports[0]}-{ports[-1]}")
        self.stdout.flush()
        while not stop.is_set():
            pool.step()
        pool.stop(drain_s=opts["drain_seconds"])
