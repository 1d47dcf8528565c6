"""python manage.py import_contacts CAMPAIGN_ID FILE [--list-name NAME] [--skip-invalid]

Exit status: 0 when the contacts were imported, 1 when the file was rejected (nothing imported),
2 for bad arguments (missing file, unknown campaign).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.models import Campaign
from campaigns.services.contacts_import import contacts_import


class Command(BaseCommand):
    help = "Import a CSV of contacts (a number/phone/msisdn column, optional name) into a campaign."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("file", type=Path)
        parser.add_argument("--list-name", help="name of the new contact list (default: file name)")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows and report the invalid ones instead of rejecting the file",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            # Streamed, never read whole: a file of millions of rows is imported in bounded memory.
            with path.open("rb") as fh:
                report = contacts_import(
                    campaign_id=options["campaign_id"],
                    list_name=options["list_name"] or path.name,
                    data=fh,
                    skip_invalid=options["skip_invalid"],
                )
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from exc
        except Campaign.DoesNotExist as exc:
            raise CommandError(
                f"campaign {options['campaign_id']} does not exist", returncode=2
            ) from exc
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc

        for issue in report.duplicates:
            self.stdout.write(f"duplicate {issue}")
        if report.more_duplicates:
            self.stdout.write(f"duplicate ... and {report.more_duplicates} more")
        for issue in report.errors:
            self.stdout.write(f"error {issue}")
        if report.more_errors:
            self.stdout.write(f"error ... and {report.more_errors} more")
        if not report.applied:
            raise CommandError(report.summary(), returncode=1)
        self.stdout.write(self.style.SUCCESS(report.summary()))
