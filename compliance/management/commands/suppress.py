"""python manage.py suppress NUMBER [--sender ID] [--reason TEXT], or --file FILE (CSV with a
number column, optional sender and reason columns). Takes effect at the next check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.imports import suppress, suppressions_import
from compliance.numbers import InvalidNumber


class Command(BaseCommand):
    help = "Suppress a number (opt-out / internal do-not-call), for one sender or all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", nargs="?")
        parser.add_argument("--sender", help="DLT entity id (default: every sender)")
        parser.add_argument("--reason", default="")
        parser.add_argument("--file", type=Path)

    def handle(self, *args: Any, **opts: Any) -> None:
        if bool(opts["number"]) == bool(opts["file"]):
            raise CommandError("give either a NUMBER or --file FILE", returncode=2)
        if opts["file"]:
            try:
                data = opts["file"].read_bytes()
            except OSError as exc:
                raise CommandError(
                    f"cannot read {opts['file']}: {exc.strerror}", returncode=2
                ) from exc
            report = suppressions_import(
                data=data, default_sender=opts["sender"], reason=opts["reason"]
            )
            for line, message in report.errors:
                self.stderr.write(f"line {line}: {message}")
            self.stdout.write(report.summary())
            if not report.applied:
                raise CommandError("suppression file rejected", returncode=1)
            return
        try:
            entry = suppress(
                number=opts["number"], sender_dlt_id=opts["sender"], reason=opts["reason"]
            )
        except (InvalidNumber, ValueError) as exc:
            raise CommandError(str(exc), returncode=2) from exc
        scope = entry.sender.dlt_entity_id if entry.sender else "every sender"
        self.stdout.write(f"{entry.number} suppressed for {scope}")
