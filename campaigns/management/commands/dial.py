"""python manage.py dial NUMBER --trunk SIP_URI --cli NUMBER [...] --json

Places one real call through the campaign pipeline: the same claim, compliance gate, engine and
outcome recording. Uses a running engine pool when there is one, else an engine in this process.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from campaigns.engine_work import CampaignWork
from campaigns.services.claim_check import attempt_process
from campaigns.services.one_off_call import (
    OneOffCallError,
    attempt_is_final,
    attempt_result,
    one_off_call_prepare,
)
from compliance.models import Purpose, Sector
from dialer.processes import free_port
from telephony.pool.host import EngineHost
from telephony.pool.selectors import engines_live


class Command(BaseCommand):
    help = "Place one test call through the dialer and print its outcome."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number")
        parser.add_argument("--trunk", required=True, help="sip:host[:port] to send the INVITE to")
        parser.add_argument("--cli", required=True, help="caller ID to present")
        parser.add_argument("--purpose", default=Purpose.PROMOTIONAL, choices=Purpose.values)
        parser.add_argument("--sender", default="TEST-SENDER", help="DLT entity id")
        parser.add_argument(
            "--sector",
            choices=Sector.values,
            help="for a new sender (default other); an existing sender keeps its own",
        )
        parser.add_argument("--category", type=int, default=None)
        parser.add_argument("--ring-timeout", type=int, default=30)
        parser.add_argument("--max-seconds", type=int, default=60, help="hang up after this")
        parser.add_argument("--agent", default="", help="ws:// URL of the agent to bridge to")
        parser.add_argument(
            "--auth-user",
            default="",
            help="digest user for the trunk; the password comes from TRUNK_<NAME>_PASSWORD, "
            "NAME being the trunk's name (test-sip-HOST-PORT for a trunk made by dial)",
        )
        parser.add_argument(
            "--opt-out-digit", default="", help="DTMF key that suppresses the number (0-9, *, #)"
        )
        parser.add_argument("--stream-format", default="twilio", choices=("twilio", "exotel"))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["ring_timeout"] < 1 or opts["max_seconds"] < 1:
            raise CommandError("--ring-timeout and --max-seconds must be at least 1", returncode=2)
        try:
            attempt_id = one_off_call_prepare(
                number=opts["number"],
                trunk_uri=opts["trunk"],
                cli=opts["cli"],
                purpose=opts["purpose"],
                sender_dlt_id=opts["sender"],
                sector=opts["sector"],
                category=opts["category"],
                ring_timeout_s=opts["ring_timeout"],
                max_call_s=opts["max_seconds"],
                agent_url=opts["agent"],
                auth_user=opts["auth_user"],
                opt_out_digit=opts["opt_out_digit"],
                stream_format=opts["stream_format"],
            )
        except OneOffCallError as exc:
            raise CommandError(str(exc), returncode=2) from exc

        attempt_process(attempt_id=attempt_id)
        deadline = time.monotonic() + opts["ring_timeout"] + opts["max_seconds"] + 15
        if not attempt_is_final(attempt_id=attempt_id):
            if engines_live(now=timezone.now()).exists():
                while not attempt_is_final(attempt_id=attempt_id) and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:
                self._dial_in_process(attempt_id, deadline)

        result = attempt_result(attempt_id=attempt_id)
        if opts["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key:>12}: {value}")
        if not attempt_is_final(attempt_id=attempt_id):
            raise CommandError("the call did not finish in time", returncode=1)

    def _dial_in_process(self, attempt_id: int, deadline: float) -> None:
        host_ip = settings.ENGINE_SIP_HOST
        host = EngineHost(
            work=CampaignWork(),
            host=host_ip,
            port=free_port(socket.SOCK_DGRAM, host_ip),
            only_attempt=attempt_id,
        )
        try:
            while not attempt_is_final(attempt_id=attempt_id) and time.monotonic() < deadline:
                host.step()
        finally:
            host.close()
