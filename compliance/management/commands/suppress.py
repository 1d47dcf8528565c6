"""python manage.py suppress NUMBER [--sender ID] [--reason TEXT], or --file FILE (CSV with a
number column, optional sender and reason columns), or --lift ID --reason TEXT. Takes effect at
the next check; every change is audited with --by (default: the OS user)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.command_args import add_by_argument, cli_actor
from compliance.imports import print_report, suppressions_import
from compliance.numbers import InvalidNumber
from compliance.suppressions import SuppressionError, suppression_add, suppression_lift


class Command(BaseCommand):
    help = "Suppress a number (opt-out / internal do-not-call), for one sender or all; or lift one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", nargs="?")
        parser.add_argument("--sender", help="DLT entity id (default: every sender)")
        parser.add_argument("--reason", default="")
        parser.add_argument("--file", type=Path)
        parser.add_argument("--lift", type=int, metavar="ID", help="lift suppression ID")
        add_by_argument(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        actor = cli_actor(opts["by"])
        if sum(bool(opts[k]) for k in ("number", "file", "lift")) != 1:
            raise CommandError("give one of NUMBER, --file FILE or --lift ID", returncode=2)
        if opts["lift"]:
            try:
                lifted = suppression_lift(
                    suppression_id=opts["lift"], actor=actor, reason=opts["reason"]
                )
            except SuppressionError as exc:
                raise CommandError(str(exc), returncode=2) from exc
            self.stdout.write(f"suppression {opts['lift']} " + ("lifted" if lifted else
                              "was not active (unknown or already lifted)"))  # fmt: skip
            if not lifted:
                raise CommandError("nothing lifted", returncode=1)
            return
        if opts["file"]:
            try:
                fh = opts["file"].open("rb")
            except OSError as exc:
                raise CommandError(
                    f"cannot read {opts['file']}: {exc.strerror}", returncode=2
                ) from exc
            with fh:
                report = suppressions_import(
                    data=fh, actor=actor, default_sender=opts["sender"], reason=opts["reason"]
                )
            print_report(self, report)
            if not report.applied:
                raise CommandError("suppression file rejected", returncode=1)
            return
        try:
            entry, created = suppression_add(
                number=opts["number"], actor=actor, sender_dlt_id=opts["sender"],
                reason=opts["reason"],
            )  # fmt: skip
        except (InvalidNumber, SuppressionError) as exc:
            raise CommandError(str(exc), returncode=2) from exc
        scope = entry.sender.dlt_entity_id if entry.sender else "every sender"
        state = "suppressed" if created else "already suppressed"
        self.stdout.write(f"{entry.number} {state} for {scope} (suppression {entry.pk})")
