"""python manage.py load_registry FILE [--as-of ISO8601] [--delta]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from compliance.command_args import add_by_argument, cli_actor, parse_when
from compliance.registry_file import RegistryLoadError
from compliance.registry_load import LoadReport, registry_load


class Command(BaseCommand):
    help = "Load an NCPR/DND registry file (full, or --delta) as a new registry version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--as-of", help="the file's as-of time, ISO 8601 with offset")
        parser.add_argument("--delta", action="store_true", help="amend the version in force")
        parser.add_argument(
            "--force",
            action="store_true",
            help="load even a file that looks cut short or shrinks the registry (audited)",
        )
        add_by_argument(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        as_of = parse_when(opts["as_of"], "--as-of") or timezone.now()
        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file", returncode=2)
        try:
            report = registry_load(
                path=path,
                as_of=as_of,
                delta=opts["delta"],
                actor=cli_actor(opts["by"]),
                force=opts["force"],
            )
        except RegistryLoadError as exc:
            raise CommandError(f"{path}: {exc}", returncode=2) from exc
        except KeyboardInterrupt:
            raise CommandError(
                "interrupted: nothing loaded, the previous registry version stays in force",
                returncode=130,
            ) from None
        self._print(report)

    def _print(self, report: LoadReport) -> None:
        for line, message in report.issues:
            self.stdout.write(f"line {line}: {message}")
        if report.rejected > len(report.issues):
            self.stdout.write(f"... and {report.rejected - len(report.issues)} more")
        self.stdout.write(
            f"rows read {report.rows_read}, added {report.added}, changed {report.changed}, "
            f"removed {report.removed}, rejected {report.rejected}, entries {report.entries}"
        )
        if report.duplicates:
            self.stdout.write(f"{report.duplicates} repeated numbers: the last row of each kept")
        self.stdout.write(
            f"registry version {report.version_id} ({report.kind}) in force, "
            f"loaded in {report.seconds:.1f} s"
        )
