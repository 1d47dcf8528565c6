"""The least-privilege application role on PostgreSQL: it dials and audits, erases numbers, and
cannot rewrite, delete or unguard the audit log."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from compliance.audit import audit_outcome
from compliance.models import AuditEntry
from compliance.pg_roles import app_role_apply, app_role_sql
from compliance.suppressions import suppression_add

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL only"),
]


@pytest.fixture
def app_role() -> Iterator[str]:
    role = f"dialer_app_{uuid.uuid4().hex[:10]}"
    app_role_apply(role=role)
    yield role
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")


def _as(role: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {role}")


def _refused(sql: str, match: str) -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)


def test_the_app_role_appends_and_erases_but_cannot_rewrite_the_log(app_role: str) -> None:
    entry = audit_outcome(attempt_id=1, campaign_id=1, sender_dlt_id="1101X",
                          number="+919876543210", purpose="promotional", detail={})  # fmt: skip
    with transaction.atomic():
        _as(app_role)
        # What the application does: append (sequence, advisory lock, INSERT), write other data.
        audit_outcome(attempt_id=2, campaign_id=1, sender_dlt_id="1101X",
                      number="+919876543211", purpose="promotional", detail={})  # fmt: skip
        suppression_add(number="9876543212", actor="user:test")
        # An erasure's one UPDATE is allowed.
        assert AuditEntry.objects.filter(id=entry.pk).update(number="") == 1
        # Everything else is refused, by privileges before the trigger is even asked.
        _refused("UPDATE compliance_auditentry SET allowed = true", "permission denied")
        _refused("DELETE FROM compliance_auditentry", "permission denied")
        _refused("TRUNCATE compliance_auditentry", "permission denied")
        _refused("ALTER TABLE compliance_auditentry DISABLE TRIGGER ALL", "must be owner")
        _refused("DROP TRIGGER compliance_auditentry_append_only ON compliance_auditentry",
                 "must be owner")  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('dialer.audit_maintenance', 'on', true)")
        _refused("UPDATE compliance_auditentry SET number = 'x'", "append-only")
        transaction.set_rollback(True)


def test_the_grants_are_printed_by_the_command() -> None:
    out = io.StringIO()
    call_command("pg_app_role", "dialer_app", stdout=out)
    text = out.getvalue()
    assert "GRANT SELECT, INSERT ON compliance_auditentry TO dialer_app;" in text
    assert "GRANT UPDATE (number) ON compliance_auditentry TO dialer_app;" in text
    with pytest.raises(ValueError, match="owner"):
        app_role_sql(role="postgres", owner="postgres", database="dialer")
    with pytest.raises(ValueError, match="identifier"):
        app_role_sql(role="x; DROP TABLE y", owner="postgres", database="dialer")


@pytest.mark.slow
def test_the_app_role_imports_a_suppression_file_with_copy(app_role: str) -> None:
    """COPY into the suppression and audit tables needs no more than INSERT."""
    from compliance.imports import suppressions_import
    from compliance.verify import audit_verify

    rows = "".join(f"98765{i:05d}\n" for i in range(6_000))  # two batches
    with transaction.atomic():
        _as(app_role)
        report = suppressions_import(data=("number\n" + rows).encode(), actor="cli:app")
        assert report.applied and report.created == 6_000
        assert AuditEntry.objects.filter(actor="cli:app").count() == 6_000
        assert audit_verify().intact
        transaction.set_rollback(True)
