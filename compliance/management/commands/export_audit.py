"""python manage.py export_audit [--format csv|jsonl] [--since ISO] [--until ISO] [--campaign ID]
[--number E164] [--sender DLT_ID] [--out FILE]

Filters combine (AND). Rows carry prev_hash and entry_hash so the export can be checked offline.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compliance.command_args import parse_when
from compliance.exports import audit_export
from compliance.numbers import InvalidNumber, to_e164
from compliance.selectors import audit_entry_list


class Command(BaseCommand):
    help = "Export the compliance audit log as CSV or JSON lines."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--since")
        parser.add_argument("--until")
        parser.add_argument("--campaign", type=int)
        parser.add_argument("--number")
        parser.add_argument("--sender", help="the sender's DLT entity id")
        parser.add_argument("--out", help="file to write (default: standard output)")

    def handle(self, *args: Any, **opts: Any) -> None:
        entries = audit_entry_list(
            since=parse_when(opts["since"], "--since"),
            until=parse_when(opts["until"], "--until"),
            campaign_id=opts["campaign"],
            number=_number(opts["number"]),
            sender_dlt_id=opts["sender"],
        )
        if opts["out"]:
            with open(opts["out"], "w", newline="") as out:
                count = audit_export(entries=entries, out=out, fmt=opts["format"])
            self.stderr.write(f"{count} audit entries written to {opts['out']}")
        else:
            audit_export(entries=entries, out=sys.stdout, fmt=opts["format"])


def _number(raw: str | None) -> str | None:
    """E.164 for a valid number in any form; as given otherwise (decisions on invalid input
    record what was given)."""
    if raw is None:
        return None
    try:
        return to_e164(raw, region="IN")
    except InvalidNumber:
        return raw
