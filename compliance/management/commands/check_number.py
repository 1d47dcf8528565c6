"""python manage.py check_number NUMBER --purpose P [--category N] [--sender ID] [--sector S]
[--cli NUMBER] [--at ISO8601] --json

The same decision the dialer makes before a call, for one number, without calling it. To check
against a campaign's sender, category and caller-ID pool: campaigns' check_campaign_number."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from compliance.command_args import parse_when
from compliance.models import Purpose, Sector
from compliance.number_check import number_check_print


class Command(BaseCommand):
    help = "Check whether a number may be called now (or at --at), and why not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number")
        parser.add_argument("--purpose", required=True, choices=Purpose.values)
        parser.add_argument("--category", type=int, choices=range(1, 9), metavar="1-8")
        parser.add_argument("--sender", help="DLT entity id of the sender")
        parser.add_argument("--sector", choices=Sector.values)
        parser.add_argument("--cli", default="", help="caller ID, checked for its series")
        parser.add_argument("--at", help="ISO 8601 time with offset (default: now)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        number_check_print(
            self,
            number=opts["number"],
            purpose=opts["purpose"],
            sender_dlt_id=opts["sender"],
            sector=opts["sector"],
            category=opts["category"],
            cli=opts["cli"],
            at=parse_when(opts["at"], "--at") or timezone.now(),
            owned_clis=None,
            as_json=opts["json"],
        )
