"""python manage.py run_engine_process --port P --jobs-fd R --status-fd W: one engine process.

What `run_engine` starts for each process of its pool; not run by hand. The process runs a
telephony.pool.host.EngineHost fed by its supervisor: jobs arrive on the pipe R, its status goes
out on the pipe W (telephony.pool.wire), and its call events are written through
campaigns.engine_work. It prints "engine ready on sip:HOST:P" once it takes work. SIGTERM/SIGINT,
or the jobs pipe closing: it takes no new call, lets live calls end (up to --drain-seconds),
and exits.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from campaigns.engine_work import CampaignWork
from dialer.processes import stop_on_signals
from telephony.pool.host import EngineHost


class Command(BaseCommand):
    help = (
        "One engine process of a pool, fed jobs over a pipe by its supervisor: what run_engine "
        "starts for each of its processes (not run by hand)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.ENGINE_SIP_HOST)
        parser.add_argument("--port", type=int, required=True, help="its SIP port")
        parser.add_argument(
            "--jobs-fd", type=int, required=True, help="inherited pipe it reads its jobs from"
        )
        parser.add_argument(
            "--status-fd", type=int, required=True, help="inherited pipe it reports its status to"
        )
        parser.add_argument("--drain-seconds", type=float, default=30.0)

    def handle(self, *args: Any, **opts: Any) -> None:
        stop = stop_on_signals()
        host = EngineHost(
            work=CampaignWork(),
            host=opts["host"],
            port=opts["port"],
            feed=(opts["jobs_fd"], opts["status_fd"]),
        )
        self.stdout.write(f"engine ready on sip:{opts['host']}:{opts['port']}")
        self.stdout.flush()
        host.run(should_stop=stop.is_set, drain_s=opts["drain_seconds"])
