"""Writing the audit log: every decision before the call, every outcome after it, every change
of the rule values in force.

The log is a hash chain. An entry's entry_hash is sha256 over a canonical serialisation of its
fields and prev_hash, the entry_hash of the entry before it (GENESIS_HASH for the first). Its own
id is covered too, so moving a row to another position breaks it just as editing one does. The
table refuses UPDATE and DELETE (migration 0003), so every row is inserted once, complete: the id
is allocated before the INSERT so the hash can cover it. `compliance.verify` walks the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from compliance.models import AuditEntry
from compliance.services import Decision

GENESIS_HASH = "0" * 64
# The fields entry_hash covers, in the order they are exported; changing this list (or the
# serialisation in entry_hash) makes every existing entry fail verification.
HASHED_FIELDS = (
    "id", "created_at", "kind", "attempt_id", "campaign_id", "sender_dlt_id", "number",
    "purpose", "allowed", "reasons", "detail", "prev_hash",
)  # fmt: skip
# Key of the PostgreSQL advisory lock that puts appenders in line: b"auditlog" as a bigint.
CHAIN_LOCK_KEY = int.from_bytes(b"auditlog", "big")
_CHAIN_FIELDS = frozenset({"id", "created_at", "prev_hash", "entry_hash"})
# The head is the newest entry that has a hash. Rows without one (written before the chain
# existed, or by something that bypassed audit_append) are linked over; verification reports
# them. No head at all: the new entry starts the chain from GENESIS_HASH.
_NEXT_PG = """
    SELECT nextval(pg_get_serial_sequence('compliance_auditentry', 'id')), (
        SELECT entry_hash FROM compliance_auditentry WHERE entry_hash <> ''
        ORDER BY id DESC LIMIT 1)
"""
_NEXT_SQLITE = """
    SELECT COALESCE(MAX(id), 0) + 1, (
        SELECT entry_hash FROM compliance_auditentry WHERE entry_hash <> ''
        ORDER BY id DESC LIMIT 1)
    FROM compliance_auditentry
"""


def audit_decision(
    *, decision: Decision, attempt_id: int | None, campaign_id: int | None, sender_dlt_id: str
) -> AuditEntry:
    return audit_append(
        kind=AuditEntry.Kind.DECISION,
        attempt_id=attempt_id,
        campaign_id=campaign_id,
        sender_dlt_id=sender_dlt_id,
        number=decision.number,
        purpose=decision.purpose,
        allowed=decision.allowed,
        reasons=list(decision.reasons),
        detail={
            **decision.inputs,
            "local_time": decision.local_time,
            "registry_version": decision.registry_version,
            "consent": decision.consent,
        },
    )


def audit_outcome(
    *,
    attempt_id: int,
    campaign_id: int,
    sender_dlt_id: str,
    number: str,
    purpose: str,
    detail: dict[str, object],
) -> AuditEntry:
    return audit_append(
        kind=AuditEntry.Kind.OUTCOME,
        attempt_id=attempt_id,
        campaign_id=campaign_id,
        sender_dlt_id=sender_dlt_id,
        number=number,
        purpose=purpose,
        detail=detail,
    )


def audit_policy(*, policy: dict[str, object], previous_hash: str | None) -> AuditEntry:
    """Record the rule values now in force; previous_hash identifies the ones they replace."""
    return audit_append(
        kind=AuditEntry.Kind.POLICY, number="", detail={"previous": previous_hash, **policy}
    )


def audit_append(**fields: Any) -> AuditEntry:
    """Append one entry at the head of the chain: the only way rows enter the audit log.

    Joins the caller's transaction if there is one, without a savepoint: an append that fails
    must take down whatever depended on it (a call is never placed without its decision logged).
    """
    if clash := _CHAIN_FIELDS & fields.keys():
        raise ValueError(f"audit_append sets {sorted(clash)} itself")
    # Store exactly what the database will hand back (tuples become lists, keys strings), so the
    # hash computed now is the one verification recomputes from the row.
    for name in ("reasons", "detail"):
        if name in fields:
            fields[name] = json.loads(json.dumps(fields[name], allow_nan=False))
    with transaction.atomic(savepoint=False):
        entry_id, prev_hash = _chain_head()
        entry = AuditEntry(id=entry_id, created_at=timezone.now(), prev_hash=prev_hash, **fields)
        entry.entry_hash = entry_hash({name: getattr(entry, name) for name in HASHED_FIELDS})
        # raw: insert the values exactly as given (auto_now_add would replace the hashed time).
        entry.save_base(raw=True, force_insert=True)
    return entry


def _chain_head() -> tuple[int, str]:
    """The id for the new entry and the entry_hash it links to, holding the appenders' lock."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Held until the transaction ends, so the next appender reads this entry as the head.
            # A separate statement: under READ COMMITTED the next one then gets a snapshot taken
            # after the lock was granted, which sees the previous holder's committed row.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
            cursor.execute(_NEXT_PG)
        elif connection.vendor == "sqlite":
            # The transaction began IMMEDIATE (settings), so this connection alone may write now.
            cursor.execute(_NEXT_SQLITE)
        else:
            # The chain's locking is written for these two databases only.
            raise RuntimeError(f"audit chain: PostgreSQL or SQLite only, not {connection.vendor}")
        entry_id, last_hash = cursor.fetchone()
    return int(entry_id), last_hash or GENESIS_HASH


def entry_hash(row: Mapping[str, object]) -> str:
    """sha256 hex of one entry's HASHED_FIELDS, from a model's values or an exported JSON line.

    Canonical form: JSON with sorted keys and no whitespace; created_at as an ISO 8601 UTC string;
    integral floats written as integers (PostgreSQL's jsonb hands back 1e20 as an integer).
    """
    payload = {name: _canonical(row[name]) for name in HASHED_FIELDS}
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def iso_utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat()


def _canonical(value: object) -> object:
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value
