"""python manage.py check_number NUMBER --purpose P [--category N] [--sender ID] [--sector S]
[--cli NUMBER] [--campaign ID] [--at ISO8601] --json

The same decision the dialer makes before a call, for one number, without calling it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from compliance.command_args import parse_when
from compliance.models import Purpose, Sector, Sender
from compliance.services import decide


class Command(BaseCommand):
    help = "Check whether a number may be called now (or at --at), and why not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number")
        parser.add_argument("--purpose", required=True, choices=Purpose.values)
        parser.add_argument("--category", type=int, choices=range(1, 9), metavar="1-8")
        parser.add_argument("--sender", help="DLT entity id of the sender")
        parser.add_argument("--sector", choices=Sector.values)
        parser.add_argument("--cli", default="", help="caller ID, checked for its series")
        parser.add_argument("--campaign", type=int, help="check --cli against its caller-ID pool")
        parser.add_argument("--at", help="ISO 8601 time with offset (default: now)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        at = parse_when(opts["at"], "--at") or timezone.now()
        sender_id, sector, owned, category = opts["sender"], opts["sector"], None, opts["category"]
        if opts["campaign"] is not None:
            from campaigns.models import Campaign  # optional: compliance does not need campaigns

            campaign = Campaign.objects.select_related("sender").filter(id=opts["campaign"]).first()
            if campaign is None:
                raise CommandError(f"campaign {opts['campaign']} does not exist", returncode=2)
            sender_id = sender_id or campaign.sender.dlt_entity_id
            category = category or campaign.category
            owned = set(campaign.caller_ids.filter(active=True).values_list("number", flat=True))
        if sender_id and not Sender.objects.filter(dlt_entity_id=sender_id).exists():
            raise CommandError(f"sender {sender_id!r} is not known", returncode=2)
        if sector is None:
            sender = Sender.objects.filter(dlt_entity_id=sender_id).first() if sender_id else None
            sector = sender.sector if sender else Sector.OTHER
        if opts["cli"] == "" and opts["purpose"] != Purpose.GOVERNMENT:
            self.stderr.write("note: no --cli given; the caller-ID series is checked as empty")
        decision = decide(
            number=opts["number"],
            purpose=opts["purpose"],
            sender_dlt_id=sender_id,
            sector=sector,
            cli=opts["cli"],
            at=at,
            category=category,
            owned_clis=owned,
        )
        result = {
            "number": decision.number,
            "allowed": decision.allowed,
            "reasons": list(decision.reasons),
            "purpose": decision.purpose,
            "local_time": decision.local_time,
            "registry_version": decision.registry_version,
            "consent": decision.consent,
        }
        if opts["json"]:
            self.stdout.write(json.dumps(result))
        else:
            verdict = "ALLOWED" if decision.allowed else "BLOCKED: " + ", ".join(decision.reasons)
            self.stdout.write(
                f"{decision.number} {decision.purpose} at {decision.local_time}: {verdict}"
            )
