"""python manage.py apply_retention: erase the contact data of campaigns that finished more than
DATA_RETENTION_DAYS ago (beat runs it daily as campaigns.retention); audited per campaign."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.services.erasure import retention_apply
from compliance.command_args import add_by_argument, cli_actor


class Command(BaseCommand):
    help = "Apply the data retention period (DATA_RETENTION_DAYS) to finished campaigns."

    def add_arguments(self, parser: CommandParser) -> None:
        add_by_argument(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        if not getattr(settings, "DATA_RETENTION_DAYS", 0):
            self.stdout.write("DATA_RETENTION_DAYS is 0: retention is off, nothing erased")
            return
        try:
            done = retention_apply(actor=cli_actor(opts["by"]))
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(f"{done} campaign(s) past {settings.DATA_RETENTION_DAYS} days erased")
