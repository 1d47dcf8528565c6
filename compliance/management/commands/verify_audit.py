"""python manage.py verify_audit [--since-id N]: recompute the audit log's hash chain.

Exit status 0 when intact, 1 at the first broken entry; both print the head to anchor elsewhere.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compliance.verify import audit_verify


class Command(BaseCommand):
    help = "Verify the compliance audit log's hash chain (exit status 1 if it is broken)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since-id", type=int, help="start at this entry, linked to the entry before it"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        report = audit_verify(since_id=opts["since_id"])
        if report.intact:
            self.stdout.write(f"audit chain intact: {report.checked} entries")
            if report.head_id is not None:
                self.stdout.write(f"head: entry {report.head_id} {report.head_hash}")
            return
        self.stderr.write(f"audit chain broken at entry {report.first_broken_id}: {report.problem}")
        self.stderr.write(f"{report.checked} entries intact before it")
        sys.exit(1)
