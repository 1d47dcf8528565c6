"""python manage.py run_engine --processes N: a supervised pool of pjsua2 engine processes.

Each process holds at most 4 calls (the wheel's compiled PJSUA_MAX_CALLS) on its own SIP port.
The supervisor is the host's one poller for work and hands each process its calls over a pipe
(campaigns.engine_pool); it restarts a process that dies and closes that process's calls at once
(the reaper would do it after the heartbeat goes stale). SIGTERM/SIGINT: every process stops
taking work, lets its live calls end (up to --drain-seconds), and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.engine_host import EngineHost
from campaigns.engine_pool import EnginePool
from dialer.processes import manage_cmd

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run a pool of pjsua2 engine processes (4 calls each) that dial approved attempts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--processes", type=int, default=1)
        parser.add_argument("--host", default=settings.ENGINE_SIP_HOST)
        parser.add_argument("--base-port", type=int, default=settings.ENGINE_BASE_PORT)
        parser.add_argument("--drain-seconds", type=float, default=30.0)
        parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
        parser.add_argument("--feed", default="", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["processes"] < 1:
            raise CommandError("--processes must be at least 1", returncode=2)
        stop = {"flag": False}

        def on_signal(signum: int, _frame: object) -> None:
            stop["flag"] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if opts["single"]:
            self._run_single(opts, stop)
        else:
            self._supervise(opts, stop)

    def _run_single(self, opts: dict[str, Any], stop: dict[str, bool]) -> None:
        port = opts["port"] or opts["base_port"]
        feed = tuple(int(fd) for fd in opts["feed"].split(",")) if opts["feed"] else None
        host = EngineHost(host=opts["host"], port=port, feed=feed)  # type: ignore[arg-type]
        self.stdout.write(f"engine ready on sip:{opts['host']}:{port}")
        self.stdout.flush()
        host.run(should_stop=lambda: stop["flag"], drain_s=opts["drain_seconds"])

    def _supervise(self, opts: dict[str, Any], stop: dict[str, bool]) -> None:
        def spawn(port: int, feed: tuple[int, int]) -> subprocess.Popen[bytes]:
            cmd = manage_cmd(
                "run_engine", "--single", "--host", opts["host"], "--port", str(port),
                "--drain-seconds", str(opts["drain_seconds"]), "--feed", f"{feed[0]},{feed[1]}",
            )  # fmt: skip
            # Same process group: a group-wide SIGTERM (Ctrl-C, a service manager) drains them all.
            return subprocess.Popen(cmd, pass_fds=feed)

        ports = [opts["base_port"] + i for i in range(opts["processes"])]
        pool = EnginePool(host=opts["host"], ports=ports, spawn=spawn)
        pool.start()
        self.stdout.write(f"engine pool: {len(ports)} processes on ports {ports[0]}-{ports[-1]}")
        self.stdout.flush()
        while not stop["flag"]:
            pool.step()
        pool.stop(drain_s=opts["drain_seconds"])
