"""`manage.py run_callee`: the demo's built-in SIP callee (telephony/callee.py has the table).

    manage.py run_callee [--port 5070] [--talk-seconds 30] [--record-dir DIR] [--dtmf SPEC]

--record-dir records each answered call's received audio to DIR/<Call-ID>.wav with a JSON
sidecar that maps the WAV to time; --dtmf "1500:5:rfc2833,2500:9:info" sends digit 5 as an
RFC 4733 telephone-event 1.5 s after the answer and digit 9 as SIP INFO at 2.5 s.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from telephony.callee import Callee, DtmfSend, parse_dtmf_spec


def _dtmf_argument(spec: str) -> tuple[DtmfSend, ...]:
    # argparse turns ArgumentTypeError into "error: argument --dtmf: <message>", exit 2.
    try:
        return parse_dtmf_spec(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class Command(BaseCommand):
    help = "Answer, ring, refuse or decline SIP calls by the last digit of the number dialled."
    requires_system_checks: list[str] = []  # a SIP daemon; the models are not its business

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=5070)
        parser.add_argument("--talk-seconds", type=float, default=30.0)
        parser.add_argument(
            "--record-dir",
            type=Path,
            default=None,
            help="record each answered call's received audio to DIR/<Call-ID>.wav, with a "
            "JSON sidecar of its timing beside it",
        )
        parser.add_argument(
            "--dtmf",
            type=_dtmf_argument,
            default=(),
            metavar="SPEC",
            help="DTMF to send after answering: OFFSET_MS:DIGIT[:rfc2833|info],... "
            '(e.g. "1500:5:rfc2833,2500:9:info")',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = False

        # The handler only sets a flag: pjsua2 must be driven (and destroyed) by the main loop,
        # never from inside a signal handler that may interrupt one of its callbacks.
        def request_stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

        record_dir: Path | None = options["record_dir"]
        callee = Callee(
            host=options["host"],
            port=options["port"],
            talk_ms=round(options["talk_seconds"] * 1000),
            record_dir=record_dir.resolve() if record_dir is not None else None,
            dtmf=options["dtmf"],
        )
        self.stdout.write(f"callee listening on {callee.uri}")
        if record_dir is not None:
            self.stdout.write(f"callee recording to {record_dir.resolve()}")
        self.stdout.flush()
        callee.run(lambda: stopping)
        self.stdout.write("callee stopped")
        self.stdout.flush()
