"""The bulk append (suppression files): COPY from plain tuples on PostgreSQL, its MAC over a
serialisation built a field at a time that must be entry_hash's, byte for byte."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection

from compliance.audit import _bulk_row, audit_append, audit_append_stream, entry_hash
from compliance.keys import chain_mac, number_token
from compliance.models import AuditEntry
from compliance.verify import audit_verify

pytestmark = pytest.mark.django_db

# Values entry_hash must serialise exactly: escapes, non-ASCII, braces and the NUL the bulk
# path cuts on, floats (integral ones are written as integers), tuples, non-string keys.
VARIED: list[dict[str, Any]] = [
    {"kind": AuditEntry.Kind.SUPPRESSION_ADDED, "actor": "cli:ravi", "number": "+919876543210",
     "detail": {"suppression_id": 7, "scope": "all senders", "reason": "asked"}},
    {"kind": "outcome", "attempt_id": 12, "campaign_id": 3, "sender_dlt_id": "1101X",
     "number": "+919876543211", "purpose": "promotional", "allowed": True,
     "reasons": ["dnd", "time"], "detail": {"b": [1, 2.5, None, False], "a": {"z": "é\\\"\n\t"}}},
    {"kind": "policy", "actor": "user:ä {x} \x01 \u2028", "allowed": False,
     "detail": {"{": "}", "n": 1.0, "big": 10**20, "t": (1, "two"), 3: "int key"}},
    {"kind": "decision", "number": "not a number at all, and longer than the column's 32",
     "token": "", "reasons": ("a", "b"), "detail": {}},
]  # fmt: skip


@pytest.mark.parametrize("fields", [*VARIED, {"kind": "policy", "detail": {"nul": "a\x00b"}}])
def test_the_bulk_serialisation_is_entry_hashs_byte_for_byte(fields: dict[str, Any]) -> None:
    parts, columns = _bulk_row(fields)
    at = dt.datetime(2026, 12, 3, 21, 0, 0, 123456, tzinfo=dt.UTC)
    prev = "ab" * 32
    text = f'{parts[0]}"{at.isoformat()}"{parts[1]}4242{parts[2]}"{prev}"{parts[3]}'
    kind, actor, attempt, campaign, sender, _, token, purpose, allowed, _, _ = columns
    row = {
        "id": 4242, "created_at": at, "kind": kind, "actor": actor, "attempt_id": attempt,
        "campaign_id": campaign, "sender_dlt_id": sender, "number_token": token,
        "purpose": purpose, "allowed": allowed, "reasons": list(fields.get("reasons", [])),
        "detail": fields.get("detail", {}), "prev_hash": prev,
    }  # fmt: skip
    if 3 in row["detail"]:  # what the JSON round trip makes of it, as audit_append_many does
        row["detail"] = {**{k: v for k, v in row["detail"].items() if k != 3}, "3": "int key"}

    assert chain_mac(text.encode()) == entry_hash(row)


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path")
def test_bulk_entries_verify_and_read_back_as_audit_append_many_stores_them() -> None:
    audit_append(kind="policy", detail={"before": "bulk"})
    many = [dict(VARIED[i % len(VARIED)]) for i in range(12_003)]  # over two batches

    assert audit_append_stream(many) == 12_003
    audit_append(kind="policy", detail={"after": "bulk"})  # links to the bulk's last entry

    report = audit_verify()
    assert report.intact and report.checked == 12_005, report.problem
    stored = list(AuditEntry.objects.order_by("id")[1:5])
    assert [e.kind for e in stored] == ["suppression_added", "outcome", "policy", "decision"]
    assert stored[1].detail == {"b": [1, 2.5, None, False], "a": {"z": 'é\\"\n\t'}}
    assert stored[1].reasons == ["dnd", "time"] and stored[1].allowed is True
    assert stored[2].detail == {"{": "}", "n": 1.0, "big": 10**20, "t": [1, "two"], "3": "int key"}
    assert stored[2].actor == "user:ä {x} \x01 \u2028"
    assert stored[3].number == VARIED[3]["number"][:32] and stored[3].number_token == ""
    assert stored[0].number_token == number_token("+919876543210")


def test_bulk_entries_refuse_chain_fields_and_unknown_ones() -> None:
    with pytest.raises(ValueError, match="itself"):
        audit_append_stream([{"kind": "policy", "entry_hash": "x"}])
    with pytest.raises(TypeError):
        audit_append_stream([{"kind": "policy", "colour": "blue"}])
