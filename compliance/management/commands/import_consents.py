"""python manage.py import_consents FILE: CSV number,sender,scope,given_at,expires_at,revoked_at,
reference. Applied whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.cli import add_by_argument, cli_actor
from compliance.imports import consents_import


class Command(BaseCommand):
    help = "Import (or update, e.g. revoke) consents from a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        add_by_argument(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            data = opts["file"].read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {opts['file']}: {exc.strerror}", returncode=2) from exc
        report = consents_import(data=data, actor=cli_actor(opts["by"]))
        for line, message in report.errors:
            self.stderr.write(f"line {line}: {message}")
        self.stdout.write(report.summary())
        if not report.applied:
            raise CommandError("consent file rejected", returncode=1)
