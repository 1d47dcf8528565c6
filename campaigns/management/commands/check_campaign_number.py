"""python manage.py check_campaign_number CAMPAIGN_ID NUMBER [--purpose P] [--cli NUMBER]
[--at ISO8601] [--json]

check_number for one number as a campaign would call it: the campaign's sender, category and
purpose (--purpose overrides), and --cli checked against the
sender's caller IDs in use, exactly as the dialer's last-moment check holds it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors import sender_cli_numbers
from compliance.command_args import parse_when
from compliance.models import Purpose
from compliance.number_check import number_check_print


class Command(BaseCommand):
    help = "Check whether a campaign may call a number now (or at --at), and why not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("number")
        parser.add_argument(
            "--purpose", choices=Purpose.values, help="default: the campaign's purpose"
        )
        parser.add_argument("--cli", default="", help="caller ID, checked for series and pool")
        parser.add_argument("--at", help="ISO 8601 time with offset (default: now)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        at = parse_when(opts["at"], "--at") or timezone.now()
        campaign = Campaign.objects.select_related("sender").filter(id=opts["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"campaign {opts['campaign_id']} does not exist", returncode=2)
        number_check_print(
            self,
            number=opts["number"],
            purpose=opts["purpose"] or campaign.purpose,
            sender_dlt_id=campaign.sender.dlt_entity_id,
            sector=campaign.sender.sector,
            category=campaign.category,
            cli=opts["cli"],
            at=at,
            owned_clis=sender_cli_numbers(sender_id=campaign.sender_id),
            as_json=opts["json"],
        )
