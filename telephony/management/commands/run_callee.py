"""`manage.py run_callee`: the demo's built-in SIP callee (telephony/callee.py has the table)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from telephony.callee import Callee


class Command(BaseCommand):
    help = "Answer, ring, refuse or decline SIP calls by the last digit of the number dialled."
    requires_system_checks: list[str] = []  # a SIP daemon; the models are not its business

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=5070)
        parser.add_argument("--talk-seconds", type=float, default=30.0)

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = False

        # The handler only sets a flag: pjsua2 must be driven (and destroyed) by the main loop,
        # never from inside a signal handler that may interrupt one of its callbacks.
        def request_stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

        callee = Callee(
            host=options["host"],
            port=options["port"],
            talk_ms=round(options["talk_seconds"] * 1000),
        )
        self.stdout.write(f"callee listening on {callee.uri}")
        self.stdout.flush()
        callee.run(lambda: stopping)
        self.stdout.write("callee stopped")
        self.stdout.flush()
