"""The audit chain is keyed (AUDIT_KEY) and anchored outside the database: whoever can write the
database cannot rewrite the log unnoticed, even holding the key."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from compliance.anchors import anchors_check, anchors_read
from compliance.audit import HASHED_FIELDS, audit_outcome, entry_hash
from compliance.models import AuditEntry
from compliance.tasks import anchor_audit
from compliance.verify import audit_verify

pytestmark = pytest.mark.django_db


def _outcomes(n: int) -> list[AuditEntry]:
    return [
        audit_outcome(attempt_id=i, campaign_id=1, sender_dlt_id="1101X", number="+919876543210",
                      purpose="promotional", detail={"disposition": "busy", "i": i})
        for i in range(n)
    ]  # fmt: skip


def _verify(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _rewrite_from(entry_id: int, *, detail: dict[str, object]) -> None:
    """Play a database owner who also holds AUDIT_KEY: edit one entry and re-chain every entry
    after it, so the chain alone verifies."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('dialer.audit_maintenance', 'on', true)")
        else:
            cursor.execute("UPDATE compliance_audit_maintenance SET active = 1")
        prev = AuditEntry.objects.filter(id__lt=entry_id).order_by("-id").first()
        prev_hash = prev.entry_hash if prev else "0" * 64
        rows = [
            dict[str, Any](row)
            for row in AuditEntry.objects.filter(id__gte=entry_id).order_by("id").values()
        ]
        for row in rows:
            if row["id"] == entry_id:
                row["detail"] = detail
            row["prev_hash"] = prev_hash
            new = entry_hash({k: row[k] for k in HASHED_FIELDS})
            cursor.execute(
                "UPDATE compliance_auditentry SET detail = %s, prev_hash = %s, entry_hash = %s "
                "WHERE id = %s",
                [json.dumps(row["detail"]), prev_hash, new, row["id"]],
            )
            prev_hash = new
        if connection.vendor == "sqlite":
            cursor.execute("UPDATE compliance_audit_maintenance SET active = 0")


def test_the_chain_is_keyed_a_plain_sha256_rewrite_is_caught() -> None:
    first, second, _ = _outcomes(3)
    row = AuditEntry.objects.values(*HASHED_FIELDS).get(id=second.pk)
    payload = {k: row[k] for k in HASHED_FIELDS}
    assert entry_hash(payload) == second.entry_hash
    with override_settings(AUDIT_KEY="another-key-of-some-length-0123456789"):
        assert entry_hash(payload) != second.entry_hash
        report = audit_verify()
        assert (report.first_broken_id, report.checked) == (first.pk, 0)
    assert hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest() != (
        second.entry_hash
    )
    assert audit_verify().intact


def test_anchor_appends_the_verified_head(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.log"
    *_, last = _outcomes(3)
    code, out, _ = _verify("--anchor", str(anchors))
    assert code == 0 and f"anchored entry {last.pk}" in out
    _outcomes(1)
    assert _verify("--anchor", str(anchors))[0] == 0
    lines = anchors.read_text().splitlines()
    assert len(lines) == 2
    stamp, entry_id, digest = lines[0].split()
    assert (int(entry_id), digest) == (last.pk, last.entry_hash)
    assert stamp.endswith("Z")


def test_a_rechained_rewrite_verifies_alone_but_not_against_the_anchors(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.log"
    entries = _outcomes(3)
    assert _verify("--anchor", str(anchors))[0] == 0  # anchors entry 3
    more = _outcomes(3)
    assert _verify("--anchor", str(anchors))[0] == 0  # anchors entry 6

    _rewrite_from(more[1].pk, detail={"disposition": "answered"})  # entry 5

    assert audit_verify().intact  # the key holder rebuilt a consistent chain...
    code, _, err = _verify("--anchors", str(anchors))
    assert code == 1  # ...which the anchors kept outside refuse
    assert f"entry {more[2].pk} differs from its anchor" in err
    assert f"after entry {entries[2].pk}" in err
    assert f"first entry after the last good anchor: {more[0].pk}" in err
    check = anchors_check(anchors=anchors_read(anchors))
    assert check.last_good is not None and check.last_good.entry_id == entries[2].pk
    # And no new anchor is written over a rewritten log.
    code, _, err = _verify("--anchor", str(anchors))
    assert code == 1 and len(anchors.read_text().splitlines()) == 2


def test_a_malformed_anchor_file_is_an_error_naming_the_line(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.log"
    _outcomes(1)
    anchors.write_text("2026-05-04T00:00:00Z 1 " + "a" * 64 + "\nnot an anchor\n")
    with pytest.raises(Exception, match="line 2"):
        call_command("verify_audit", "--anchors", str(anchors), stdout=io.StringIO())


def test_the_beat_task_anchors_to_the_configured_file(tmp_path: Path) -> None:
    anchors = tmp_path / "deep" / "anchors.log"
    with override_settings(AUDIT_ANCHOR_FILE=str(anchors)):
        anchor_audit()  # an empty log: nothing to anchor, no file
        assert not anchors.exists()
        (entry,) = _outcomes(1)
        anchor_audit()
        assert anchors.read_text().split()[1:] == [str(entry.pk), entry.entry_hash]
        # verify_audit checks the configured file by default.
        assert _verify()[1].endswith(f"anchors: 1 match ({anchors})\n")
