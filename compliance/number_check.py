"""One number's compliance decision as the check commands print it.

Shared by compliance's check_number and campaigns' check_campaign_number, so a campaign's check
prints exactly what check_number prints without compliance knowing about campaigns.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection

from django.core.management.base import BaseCommand, CommandError

from compliance.models import Purpose, Sector
from compliance.selectors import sender_by_dlt_id
from compliance.services import decide


def number_check_print(
    command: BaseCommand,
    *,
    number: str,
    purpose: str,
    sender_dlt_id: str | None,
    sector: str | None,
    category: int | None,
    cli: str,
    at: dt.datetime,
    owned_clis: Collection[str] | None,
    as_json: bool,
) -> None:
    """Decide for one number and print the verdict; an unknown sender exits 2."""
    sender = sender_by_dlt_id(dlt_entity_id=sender_dlt_id) if sender_dlt_id else None
    if sender_dlt_id and sender is None:
        raise CommandError(f"sender {sender_dlt_id!r} is not known", returncode=2)
    if sector is None:
        sector = sender.sector if sender else Sector.OTHER
    if cli == "" and purpose != Purpose.GOVERNMENT:
        command.stderr.write("note: no --cli given; the caller-ID series is checked as empty")
    decision = decide(
        number=number,
        purpose=purpose,
        sender_dlt_id=sender_dlt_id,
        sector=sector,
        cli=cli,
        at=at,
        category=category,
        owned_clis=owned_clis,
    )
    if as_json:
        result = {
            "number": decision.number,
            "allowed": decision.allowed,
            "reasons": list(decision.reasons),
            "purpose": decision.purpose,
            "local_time": decision.local_time,
            "registry_version": decision.registry_version,
            "consent": decision.consent,
        }
        command.stdout.write(json.dumps(result))
    else:
        verdict = "ALLOWED" if decision.allowed else "BLOCKED: " + ", ".join(decision.reasons)
        command.stdout.write(
            f"{decision.number} {decision.purpose} at {decision.local_time}: {verdict}"
        )
