"""python manage.py verify_audit [--since-id N] [--anchors FILE] [--anchor FILE]

Recomputes the audit log's keyed hash chain and checks it against the anchors kept outside the
database (AUDIT_ANCHOR_FILE, or --anchors FILE). --anchor FILE then appends the verified head
to FILE. Exit status 0 when intact, 1 at the first broken entry or anchor.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.anchors import AnchorError, anchor_append, anchors_check, anchors_read
from compliance.verify import audit_verify


class Command(BaseCommand):
    help = "Verify the compliance audit log's chain and its anchors (exit status 1 if broken)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since-id", type=int, help="start at this entry, linked to the entry before it"
        )
        parser.add_argument(
            "--anchors", type=Path, help="anchors to check (default: AUDIT_ANCHOR_FILE)"
        )
        parser.add_argument(
            "--anchor", type=Path, metavar="FILE", help="append the verified head to FILE"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        report = audit_verify(since_id=opts["since_id"])
        if not report.intact:
            self.stderr.write(
                f"audit chain broken at entry {report.first_broken_id}: {report.problem}"
            )
            self.stderr.write(f"{report.checked} entries intact before it")
            sys.exit(1)
        self.stdout.write(f"audit chain intact: {report.checked} entries")
        if report.head_id is not None:
            self.stdout.write(f"head: entry {report.head_id} {report.head_hash}")
        anchors_path: Path = opts["anchors"] or opts["anchor"] or Path(settings.AUDIT_ANCHOR_FILE)
        try:
            anchors = anchors_read(anchors_path)
        except AnchorError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        check = anchors_check(anchors=anchors)
        if not check.intact:
            self.stderr.write(f"anchors: {check.problem}")
            self.stderr.write(f"first entry after the last good anchor: {check.first_suspect_id}")
            sys.exit(1)
        if anchors:
            self.stdout.write(f"anchors: {len(anchors)} match ({anchors_path})")
        if opts["anchor"]:
            try:
                anchor = anchor_append(path=opts["anchor"], report=report)
            except AnchorError as exc:
                raise CommandError(str(exc), returncode=1) from exc
            if anchor is None:
                self.stdout.write("nothing to anchor: the audit log is empty")
            else:
                self.stdout.write(f"anchored entry {anchor.entry_id} in {opts['anchor']}")
