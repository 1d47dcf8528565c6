"""Audit log exports, streamed row by row so a large range exports in constant memory."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from typing import TextIO

from django.db.models import QuerySet

from compliance.models import AuditEntry

COLUMNS = [
    "id", "created_at", "kind", "attempt_id", "campaign_id", "sender_dlt_id", "number",
    "purpose", "allowed", "reasons", "detail",
]  # fmt: skip


def audit_select(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    campaign_id: int | None = None,
    number: str | None = None,
) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.order_by("id")
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if until is not None:
        entries = entries.filter(created_at__lt=until)
    if campaign_id is not None:
        entries = entries.filter(campaign_id=campaign_id)
    if number is not None:
        entries = entries.filter(number=number)
    return entries


def _rows(entries: QuerySet[AuditEntry]) -> Iterator[dict[str, object]]:
    for e in entries.iterator(chunk_size=2000):
        yield {
            "id": e.pk,
            "created_at": e.created_at.isoformat(),
            "kind": e.kind,
            "attempt_id": e.attempt_id,
            "campaign_id": e.campaign_id,
            "sender_dlt_id": e.sender_dlt_id,
            "number": e.number,
            "purpose": e.purpose,
            "allowed": e.allowed,
            "reasons": e.reasons,
            "detail": e.detail,
        }


def e_reasons(row: dict[str, object]) -> list[str]:
    reasons = row["reasons"]
    return [str(r) for r in reasons] if isinstance(reasons, list) else []


def audit_export(*, entries: QuerySet[AuditEntry], out: TextIO, fmt: str) -> int:
    """Write entries as CSV (reasons ';'-joined, detail as JSON) or JSON lines."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in _rows(entries):
            row["reasons"] = ";".join(e_reasons(row))
            row["detail"] = json.dumps(row["detail"], sort_keys=True)
            writer.writerow(row)
            count += 1
    elif fmt == "jsonl":
        for row in _rows(entries):
            out.write(json.dumps(row, sort_keys=True) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown export format {fmt!r} (csv or jsonl)")
    return count
