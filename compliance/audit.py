"""Writing the audit log: every decision before the call, every outcome after it, every change
of the rule values in force and of compliance data (naming who made it).

The log is a keyed hash chain. An entry's entry_hash is an HMAC (keyed with AUDIT_KEY, see
compliance.keys) over a canonical serialisation of its fields and prev_hash, the entry_hash of
the entry before it (GENESIS_HASH for the first). Its own id is covered too, so moving a row to
another position breaks it just as editing one does; being keyed, someone who can write the
database but does not hold AUDIT_KEY cannot rebuild the chain after an edit. The number is
covered only through its keyed token: the clear-text `number` column stays outside the MAC so
an erasure can blank it (the only UPDATE the table's triggers allow). The table refuses every
other UPDATE and DELETE (migrations 0003 and 0006), so every row is inserted once, complete:
the id is allocated before the INSERT so the MAC can cover it. `compliance.verify` walks the
chain; `compliance.anchors` keeps its head outside the database.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from json.encoder import encode_basestring  # json.dumps' own, for ensure_ascii=False
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from compliance.keys import chain_mac, number_token
from compliance.models import AuditEntry
from compliance.services import Decision

GENESIS_HASH = "0" * 64
# The fields entry_hash covers, in the order they are exported; changing this list (or the
# serialisation in entry_hash) makes every existing entry fail verification.
HASHED_FIELDS = (
    "id", "created_at", "kind", "actor", "attempt_id", "campaign_id", "sender_dlt_id",
    "number_token", "purpose", "allowed", "reasons", "detail", "prev_hash",
)  # fmt: skip
# Key of the PostgreSQL advisory lock that puts appenders in line: b"auditlog" as a bigint.
CHAIN_LOCK_KEY = int.from_bytes(b"auditlog", "big")
_NUMBER_MAX = AuditEntry._meta.get_field("number").max_length
_CHAIN_FIELDS = frozenset({"id", "created_at", "prev_hash", "entry_hash", "number_token"})
# The head is the newest entry that has a hash. Rows without one (written before the chain
# existed, or by something that bypassed audit_append) are linked over; verification reports
# them. No head at all: the new entry starts the chain from GENESIS_HASH.
_HEAD = """
    SELECT entry_hash FROM compliance_auditentry WHERE entry_hash <> '' ORDER BY id DESC LIMIT 1
"""
_IDS_PG = """
    SELECT nextval(pg_get_serial_sequence('compliance_auditentry', 'id'))
    FROM generate_series(1, %s) ORDER BY 1
"""
_MAX_ID_SQLITE = "SELECT COALESCE(MAX(id), 0) FROM compliance_auditentry"
_COPY_PG = (
    "COPY compliance_auditentry (id, created_at, kind, actor, attempt_id, campaign_id, "
    "sender_dlt_id, number, number_token, purpose, allowed, reasons, detail, prev_hash, "
    "entry_hash) FROM STDIN"
)
# What a bulk entry may name: audit_append's fields.
_BULK_FIELDS = frozenset(
    {"kind", "actor", "attempt_id", "campaign_id", "sender_dlt_id", "number", "token",
     "purpose", "allowed", "reasons", "detail"}
)  # fmt: skip
# entry_hash's serialisation (json.dumps with these arguments), the encoder made once: json.dumps
# builds a new one per call when given arguments.
_DUMPS = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
BULK_BATCH = 5000
_EMPTY: dict[type, str] = {list: "[]", dict: "{}"}
_SCALARS = frozenset({str, int, bool, type(None)})


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


def audit_record_change(
    *,
    kind: str,
    actor: str,
    sender_dlt_id: str,
    ref: dict[str, object],
    before: dict[str, object] | None,
    after: dict[str, object],
) -> AuditEntry | None:
    """Audit a row's change (before None: it was created) as the fields that changed and their
    old values; nothing when nothing changed."""
    if before == after:
        return None
    changed = {k: v for k, v in after.items() if before is None or before.get(k) != v}
    return audit_append(
        kind=kind,
        actor=actor,
        sender_dlt_id=sender_dlt_id,
        detail={
            **ref,
            "created": before is None,
            "changed": changed,
            "before": {k: before.get(k) for k in changed} if before else None,
        },
    )


def audit_append(**fields: Any) -> AuditEntry:
    """Append one entry at the head of the chain: the only way rows enter the audit log.

    `number` (as stored: E.164 for a valid number) is kept in clear and its token computed here;
    an entry about a number already erased passes `token=` instead. Joins the caller's
    transaction if there is one, without a savepoint: an append that fails must take down
    whatever depended on it (a call is never placed without its decision logged).
    """
    return audit_append_many([fields])[0]


def audit_append_many(entries: Sequence[dict[str, Any]]) -> list[AuditEntry]:
    """Append several entries in order, taking the appenders' lock once (bulk imports)."""
    built: list[AuditEntry] = []
    for fields in entries:
        fields = dict(fields)
        if clash := _CHAIN_FIELDS & fields.keys():
            raise ValueError(f"audit_append sets {sorted(clash)} itself")
        token = fields.pop("token", None)
        # A decision on an invalid number records what was given, which may be anything: the
        # column holds 32 characters, and a longer input must not stop the decision's entry.
        fields["number"] = str(fields.get("number", ""))[:_NUMBER_MAX]
        fields["number_token"] = token if token is not None else number_token(fields["number"])
        # Store exactly what the database will hand back (tuples become lists, keys strings), so
        # the MAC computed now is the one verification recomputes from the row.
        for name in ("reasons", "detail"):
            if name in fields:
                fields[name] = json.loads(json.dumps(fields[name], allow_nan=False))
        built.append(AuditEntry(**fields))
    if not built:
        return built
    with transaction.atomic(savepoint=False):
        ids, prev_hash = _chain_head(len(built))
        now = timezone.now()
        for entry_id, entry in zip(ids, built, strict=True):
            entry.id, entry.created_at, entry.prev_hash = entry_id, now, prev_hash
            entry.entry_hash = entry_hash({name: getattr(entry, name) for name in HASHED_FIELDS})
            prev_hash = entry.entry_hash
        if len(built) == 1:
            built[0].save_base(raw=True, force_insert=True)
        else:
            AuditEntry.objects.bulk_create(built)
    return built


def audit_append_stream(entries: Iterable[Mapping[str, Any]]) -> int:
    """Append any number of entries in order, in bounded memory (bulk imports); returns how
    many. Same fields and rules as audit_append_many. On PostgreSQL they are written with COPY
    from plain tuples, hashed over entry_hash's serialisation (byte for byte) built a field at a
    time, without model objects; elsewhere through audit_append_many, BULK_BATCH at a time.

    The chain's lock is taken at the first entry and held until the caller's transaction ends,
    so every call's decision waits from then on: pass the entries when everything else is done.
    """
    it = iter(entries)
    count = 0
    if connection.vendor != "postgresql":
        while chunk := [dict(fields) for fields in islice(it, BULK_BATCH)]:
            count += len(audit_append_many(chunk))
        return count
    created_at = prev_hash = ""
    with transaction.atomic(savepoint=False):
        while batch := [_bulk_row(fields) for fields in islice(it, BULK_BATCH)]:
            # After the first batch the head is our own last entry: the lock is still ours.
            ids, prev_hash = _chain_head(len(batch), head=prev_hash or None)
            if not created_at:  # one time for the whole append, as audit_append_many's batch
                created_at = iso_utc(timezone.now())
            created_json = encode_basestring(created_at)
            with connection.cursor() as cursor, cursor.cursor.copy(_COPY_PG) as copy:
                for entry_id, ((to_created, to_id, to_prev, rest), columns) in zip(
                    ids, batch, strict=True
                ):
                    text = (
                        f'{to_created}{created_json}{to_id}{entry_id}{to_prev}"{prev_hash}"{rest}'
                    )
                    mac = chain_mac(text.encode())
                    copy.write_row((entry_id, created_at, *columns, prev_hash, mac))
                    prev_hash = mac
            count += len(batch)
    return count


def _bulk_row(fields: Mapping[str, Any]) -> tuple[tuple[str, str, str, str], tuple[Any, ...]]:
    """An entry's canonical text (entry_hash's) in four parts, cut where created_at, id and
    prev_hash go, and its COPY columns from kind to detail (prev_hash and entry_hash follow)."""
    if clash := _CHAIN_FIELDS & fields.keys():
        raise ValueError(f"audit_append sets {sorted(clash)} itself")
    if unknown := fields.keys() - _BULK_FIELDS:
        raise TypeError(f"audit entries have no field {sorted(unknown)}")
    get = fields.get
    # A TextChoices member is stored, and so hashed, as its value.
    kind, actor, sender, purpose = (
        str.__str__(get(name, "")) for name in ("kind", "actor", "sender_dlt_id", "purpose")
    )
    attempt_id, campaign_id, allowed = get("attempt_id"), get("campaign_id"), get("allowed")
    number = str(get("number", ""))[:_NUMBER_MAX]
    token = get("token")
    token = token if token is not None else number_token(number)
    reasons_mac, reasons_db = _json_column(get("reasons", []))
    detail_mac, detail_db = _json_column(get("detail", {}))
    j = _json_text
    parts = (  # HASHED_FIELDS sorted; a test holds this to entry_hash
        f'{{"actor":{j(actor)},"allowed":{j(allowed)},"attempt_id":{j(attempt_id)},'
        f'"campaign_id":{j(campaign_id)},"created_at":',
        f',"detail":{detail_mac},"id":',
        f',"kind":{j(kind)},"number_token":{j(token)},"prev_hash":',
        f',"purpose":{j(purpose)},"reasons":{reasons_mac},"sender_dlt_id":{j(sender)}}}',
    )
    columns = (
        kind, actor, attempt_id, campaign_id, sender, number, token, purpose, allowed,
        reasons_db, detail_db,
    )  # fmt: skip
    return parts, columns


def _json_text(value: object) -> str:
    """json.dumps(_canonical(value)) as entry_hash writes it; the common scalars directly."""
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    return _DUMPS(_canonical(value))


def _json_column(value: object) -> tuple[str, str]:
    """(the MAC's text, the jsonb column's text) of reasons or detail. audit_append_many
    stores the value after a JSON round trip and hashes that; for plain JSON values (str keys,
    no floats, no tuples) the round trip changes nothing and one text serves both."""
    if type(value) in _EMPTY and not value:  # the usual reasons
        return _EMPTY[type(value)], _EMPTY[type(value)]
    if _plain(value):
        text = _DUMPS(value)
        return text, text
    stored = json.loads(json.dumps(value, allow_nan=False))
    return _DUMPS(_canonical(stored)), json.dumps(stored, allow_nan=False)


def _plain(value: object) -> bool:
    if type(value) in _SCALARS:
        return True
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str or not _plain(item):
                return False
        return True
    if type(value) is list:
        return all(_plain(item) for item in value)
    return False


def _chain_head(count: int, *, head: str | None = None) -> tuple[list[int], str]:
    """Ids for `count` new entries and the entry_hash the first links to (`head` when the
    caller, holding the lock already, knows it), holding the appenders' lock until the
    transaction ends."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Held until the transaction ends, so the next appender reads these entries as the
            # head. A separate statement: under READ COMMITTED the next one then gets a snapshot
            # taken after the lock was granted, which sees the previous holder's committed rows.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
            cursor.execute(_IDS_PG, [count])
            ids = [int(row[0]) for row in cursor.fetchall()]
        elif connection.vendor == "sqlite":
            # The transaction began IMMEDIATE (settings), so this connection alone may write now.
            cursor.execute(_MAX_ID_SQLITE)
            top = int(cursor.fetchone()[0])
            ids = list(range(top + 1, top + 1 + count))
        else:
            # The chain's locking is written for these two databases only.
            raise RuntimeError(f"audit chain: PostgreSQL or SQLite only, not {connection.vendor}")
        if head is not None:
            return ids, head
        cursor.execute(_HEAD)
        row = cursor.fetchone()
    return ids, (row[0] if row else GENESIS_HASH)


def entry_hash(row: Mapping[str, object]) -> str:
    """The keyed MAC (hex) of one entry's HASHED_FIELDS, from a model's values or an exported
    JSON line (checking an export offline needs AUDIT_KEY).

    Canonical form: JSON with sorted keys and no whitespace; created_at as an ISO 8601 UTC string;
    integral floats written as integers (PostgreSQL's jsonb hands back 1e20 as an integer).
    """
    payload = {name: _canonical(row[name]) for name in HASHED_FIELDS}
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return chain_mac(text.encode())


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
