"""python manage.py run_engine --processes N: a supervised pool of pjsua2 engine processes.

Each process holds at most 4 calls (the wheel's compiled PJSUA_MAX_CALLS) on its own SIP port.
The supervisor restarts a process that dies and closes that process's calls at once (the reaper
would do it after the heartbeat goes stale). SIGTERM/SIGINT: every process stops taking work,
lets its live calls end (up to --drain-seconds), and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from campaigns.engine_host import EngineHost
from campaigns.services.dialing import reap_stale
from telephony.models import EngineProcess

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
        host = EngineHost(host=opts["host"], port=port)
        self.stdout.write(f"engine ready on sip:{opts['host']}:{port}")
        self.stdout.flush()
        host.run(should_stop=lambda: stop["flag"], drain_s=opts["drain_seconds"])

    def _spawn(self, opts: dict[str, Any], port: int) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            str(Path(settings.BASE_DIR) / "manage.py"),
            "run_engine",
            "--single",
            "--host",
            opts["host"],
            "--port",
            str(port),
            "--drain-seconds",
            str(opts["drain_seconds"]),
        ]
        # Same process group: a group-wide SIGTERM (Ctrl-C, a service manager) drains them all.
        return subprocess.Popen(cmd)

    def _supervise(self, opts: dict[str, Any], stop: dict[str, bool]) -> None:
        ports = [opts["base_port"] + i for i in range(opts["processes"])]
        children = {port: self._spawn(opts, port) for port in ports}
        self.stdout.write(f"engine pool: {len(ports)} processes on ports {ports[0]}-{ports[-1]}")
        self.stdout.flush()
        while not stop["flag"]:
            time.sleep(0.5)
            for port, child in list(children.items()):
                code = child.poll()
                if code is None:
                    continue
                log.warning("engine on port %s exited with %s; restarting", port, code)
                self._reconcile(child.pid, port, opts["host"])
                children[port] = self._spawn(opts, port)
        for child in children.values():
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + opts["drain_seconds"] + 10
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _reconcile(self, pid: int, port: int, host: str) -> None:
        """A dead engine's calls are gone with it: close them now, not after a stale heartbeat."""
        EngineProcess.objects.filter(pid=pid, sip_port=port, host=host, stopped_at=None).update(
            stopped_at=timezone.now()
        )
        with transaction.atomic():
            reap_stale()
