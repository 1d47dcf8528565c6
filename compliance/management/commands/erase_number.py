"""python manage.py erase_number NUMBER [--reason TEXT] [--by NAME]

Erases a person's number everywhere (DPDP Act 2023, s.12) and suppresses it for every sender and
purpose by its keyed token; audited. See compliance/erasure.py for what goes and what stays.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.command_args import add_by_argument, cli_actor
from compliance.erasure import number_erase
from compliance.numbers import InvalidNumber


class Command(BaseCommand):
    help = "Erase a person's number from every table; it stays suppressed by its token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number")
        parser.add_argument("--reason", default="", help="e.g. the request's reference")
        add_by_argument(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            erasure = number_erase(
                number=opts["number"], actor=cli_actor(opts["by"]), reason=opts["reason"]
            )
        except InvalidNumber as exc:
            raise CommandError(str(exc), returncode=2) from exc
        counts = ", ".join(f"{k} {v}" for k, v in sorted(erasure.counts.items()))
        self.stdout.write(f"erasure {erasure.pk}: {counts}")
        self.stdout.write(f"token {erasure.number_token}: suppressed for every sender")
