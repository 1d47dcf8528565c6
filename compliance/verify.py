"""Proving the audit log intact: recompute every entry's hash and every link, in id order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from compliance.audit import GENESIS_HASH, HASHED_FIELDS, entry_hash
from compliance.models import AuditEntry


@dataclass(frozen=True)
class VerifyReport:
    checked: int  # entries found intact (before the break, if there is one)
    first_broken_id: int | None
    problem: str | None
    # The last intact entry: record its hash somewhere else (a ticket, an email, a notary) and a
    # later rewrite of the whole chain from an earlier point can no longer go unnoticed.
    head_id: int | None = None
    head_hash: str = ""

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def audit_verify(*, since_id: int | None = None) -> VerifyReport:
    """Walk the chain from the start (or from since_id, linked to the entry before it)."""
    entries = AuditEntry.objects.order_by("id")
    prev_id: int | None = None
    prev_hash = GENESIS_HASH
    if since_id is not None:
        entries = entries.filter(id__gte=since_id)
        before = (
            AuditEntry.objects.filter(id__lt=since_id)
            .exclude(entry_hash="")  # as audit_append links: over rows that have no hash
            .order_by("-id")
            .values_list("id", "entry_hash")
            .first()
        )
        if before is not None:
            prev_id, prev_hash = before
    rows = entries.values(*HASHED_FIELDS, "entry_hash").iterator(chunk_size=5000)
    return chain_verify(rows, prev_id=prev_id, prev_hash=prev_hash)


def chain_verify(
    rows: Iterable[Mapping[str, object]],
    *,
    prev_id: int | None = None,
    prev_hash: str = GENESIS_HASH,
) -> VerifyReport:
    """Check rows (in id order, as stored or as exported) against themselves and each other."""
    checked = 0
    head = prev_hash if prev_id is not None else ""
    for row in rows:
        row_id = cast(int, row["id"])
        problem = _problem(row, row_id=row_id, prev_id=prev_id, prev_hash=prev_hash)
        if problem is not None:
            return VerifyReport(checked, row_id, problem, prev_id, head)
        prev_id, prev_hash = row_id, str(row["entry_hash"])
        head = prev_hash
        checked += 1
    return VerifyReport(checked, None, None, prev_id, head)


def _problem(
    row: Mapping[str, object], *, row_id: int, prev_id: int | None, prev_hash: str
) -> str | None:
    if not row["entry_hash"]:
        return "no entry_hash: written around audit_append, or before the chain began"
    if entry_hash(row) != row["entry_hash"]:
        return "content changed: entry_hash does not match its fields (edited, or moved here)"
    if row["prev_hash"] != prev_hash:
        # Ids are not dense (a rolled-back append uses one up), so a gap alone proves nothing;
        # a broken link does, and the gap says where to look.
        where = f"entry {prev_id}" if prev_id is not None else "the start of the log"
        gap = ""
        if prev_id is not None and row_id != prev_id + 1:
            gap = f"; no entries with ids {prev_id + 1}..{row_id - 1}"
        return f"prev_hash does not match {where} (an entry deleted or rewritten{gap})"
    return None
