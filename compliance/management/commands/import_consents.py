"""python manage.py import_consents FILE: CSV number,sender,scope,given_at,expires_at,revoked_at,
reference. Applied whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.command_args import add_by_argument, cli_actor
from compliance.imports import consents_import, print_report


class Command(BaseCommand):
    help = "Import (or update, e.g. revoke) consents from a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        add_by_argument(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            fh = opts["file"].open("rb")
        except OSError as exc:
            raise CommandError(f"cannot read {opts['file']}: {exc.strerror}", returncode=2) from exc
        with fh:
            report = consents_import(data=fh, actor=cli_actor(opts["by"]))
        print_report(self, report)
        if not report.applied:
            raise CommandError("consent file rejected", returncode=1)
