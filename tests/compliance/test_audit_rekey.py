"""Migration compliance.0006 re-keys an existing audit log (number tokens, keyed MACs), but only
a log whose old SHA-256 chain verifies: a broken chain is never laundered into a valid one."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from compliance.keys import number_token
from compliance.models import AuditEntry
from compliance.verify import audit_verify

pytestmark = pytest.mark.django_db

rekey = importlib.import_module("compliance.migrations.0006_keyed_chain_number_tokens")


def _legacy_log(n: int, *, break_at: int | None = None) -> list[int]:
    """Entries as the previous release wrote them: SHA-256 over the number, no actor/token."""
    prev = "0" * 64
    ids = []
    with connection.cursor() as cursor:
        for i in range(1, n + 1):
            row: dict[str, Any] = {
                "id": 1000 + i, "created_at": dt.datetime(2026, 5, 4, 6, i, tzinfo=dt.UTC),
                "kind": "decision", "attempt_id": i, "campaign_id": 1, "sender_dlt_id": "1101X",
                "number": f"+91987654321{i % 10}", "purpose": "promotional", "allowed": True,
                "reasons": [], "detail": {"cli": "+911401234567"}, "prev_hash": prev,
            }  # fmt: skip
            digest = hashlib.sha256(rekey._payload(row, rekey.LEGACY_FIELDS)).hexdigest()
            if i == break_at:
                row["purpose"] = "transactional"  # edited after it was hashed
            cursor.execute(
                "INSERT INTO compliance_auditentry (id, created_at, kind, actor, attempt_id,"
                " campaign_id, sender_dlt_id, number, number_token, purpose, allowed, reasons,"
                " detail, prev_hash, entry_hash) VALUES (%s, %s, %s, '', %s, %s, %s, %s, '', %s,"
                " %s, %s, %s, %s, %s)",
                [row["id"], row["created_at"], row["kind"], row["attempt_id"], row["campaign_id"],
                 row["sender_dlt_id"], row["number"], row["purpose"], row["allowed"],
                 json.dumps(row["reasons"]), json.dumps(row["detail"]), prev, digest],
            )  # fmt: skip
            prev = digest
            ids.append(row["id"])
    return ids


def test_an_intact_legacy_log_is_rekeyed_and_its_old_head_recorded() -> None:
    ids = _legacy_log(4)
    legacy_head = AuditEntry.objects.get(id=ids[-1]).entry_hash
    assert not audit_verify().intact  # the new code does not accept the old scheme

    rekey.tokens_and_rekey(apps, SimpleNamespace(connection=connection))

    report = audit_verify()
    assert report.intact, report.problem
    assert report.checked == 5
    marker = AuditEntry.objects.order_by("-id").first()
    assert marker is not None and marker.kind == "chain_keyed"
    assert marker.detail == {"entries": 4, "legacy_head_id": ids[-1],
                             "legacy_head_hash": legacy_head}  # fmt: skip
    first = AuditEntry.objects.get(id=ids[0])
    assert first.number_token == number_token(first.number)


def test_a_broken_legacy_log_stops_the_migration() -> None:
    ids = _legacy_log(4, break_at=3)
    before = list(AuditEntry.objects.order_by("id").values_list("entry_hash", flat=True))
    with pytest.raises(RuntimeError, match=f"audit chain broken at entry {ids[2]}"):
        rekey.tokens_and_rekey(apps, SimpleNamespace(connection=connection))
    after = list(AuditEntry.objects.order_by("id").values_list("entry_hash", flat=True))
    assert after == before
