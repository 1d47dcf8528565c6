"""The audit log becomes append-only in the database itself, and its chain cannot fork.

PostgreSQL: a row-level trigger refuses UPDATE and DELETE, a statement-level one TRUNCATE.
SQLite: BEFORE UPDATE / BEFORE DELETE triggers RAISE(ABORT) (SQLite has no TRUNCATE).
Both: a unique partial index on prev_hash, so two entries can never link to the same
predecessor (a forked chain fails the INSERT instead of being found later by verify_audit).

Maintenance switch. Django's test runner empties every table between transactional tests
(TRUNCATE on PostgreSQL, DELETE on SQLite), so the triggers let a change through when, and only
when, the switch is on:
  PostgreSQL: `SELECT set_config('dialer.audit_maintenance', 'on', true)` in the same
    transaction, and only for a role that owns the table (it could drop the triggers anyway,
    so the switch gives nobody a power they did not already have).
  SQLite: `UPDATE compliance_audit_maintenance SET active = 1`, back to 0 before the commit.
tests/conftest.py turns it on inside the test flush's transaction and nowhere else. Without it,
UPDATE, DELETE and TRUNCATE fail with "audit log is append-only". The hash chain
(compliance.verify) remains the evidence: a table owner can always disable triggers.

On SQLite, a later migration that alters compliance_auditentry rebuilds the table and so drops
these triggers and the index: such a migration must run `install` from this module again.
"""

from django.db import migrations

POSTGRESQL_INSTALL = [
    """
    CREATE FUNCTION compliance_auditentry_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF COALESCE(current_setting('dialer.audit_maintenance', true), '') = 'on'
           AND pg_has_role((SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
            IF TG_LEVEL = 'STATEMENT' THEN
                RETURN NULL;
            ELSIF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER compliance_auditentry_append_only
    BEFORE UPDATE OR DELETE ON compliance_auditentry
    FOR EACH ROW EXECUTE FUNCTION compliance_auditentry_refuse_change()
    """,
    """
    CREATE TRIGGER compliance_auditentry_no_truncate
    BEFORE TRUNCATE ON compliance_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION compliance_auditentry_refuse_change()
    """,
    """
    CREATE UNIQUE INDEX compliance_auditentry_prev_hash_uniq
    ON compliance_auditentry (prev_hash) WHERE prev_hash <> ''
    """,
]
POSTGRESQL_REMOVE = [
    "DROP INDEX IF EXISTS compliance_auditentry_prev_hash_uniq",
    "DROP TRIGGER IF EXISTS compliance_auditentry_no_truncate ON compliance_auditentry",
    "DROP TRIGGER IF EXISTS compliance_auditentry_append_only ON compliance_auditentry",
    "DROP FUNCTION IF EXISTS compliance_auditentry_refuse_change()",
]

SQLITE_INSTALL = [
    """
    CREATE TABLE IF NOT EXISTS compliance_audit_maintenance (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        active INTEGER NOT NULL DEFAULT 0
    )
    """,
    "INSERT OR IGNORE INTO compliance_audit_maintenance (id, active) VALUES (1, 0)",
    """
    CREATE TRIGGER compliance_auditentry_no_update
    BEFORE UPDATE ON compliance_auditentry
    WHEN NOT EXISTS (SELECT 1 FROM compliance_audit_maintenance WHERE active = 1)
    BEGIN
        SELECT RAISE(ABORT, 'audit log is append-only: UPDATE on compliance_auditentry refused');
    END
    """,
    """
    CREATE TRIGGER compliance_auditentry_no_delete
    BEFORE DELETE ON compliance_auditentry
    WHEN NOT EXISTS (SELECT 1 FROM compliance_audit_maintenance WHERE active = 1)
    BEGIN
        SELECT RAISE(ABORT, 'audit log is append-only: DELETE on compliance_auditentry refused');
    END
    """,
    """
    CREATE UNIQUE INDEX compliance_auditentry_prev_hash_uniq
    ON compliance_auditentry (prev_hash) WHERE prev_hash <> ''
    """,
]
SQLITE_REMOVE = [
    "DROP INDEX IF EXISTS compliance_auditentry_prev_hash_uniq",
    "DROP TRIGGER IF EXISTS compliance_auditentry_no_update",
    "DROP TRIGGER IF EXISTS compliance_auditentry_no_delete",
    "DROP TABLE IF EXISTS compliance_audit_maintenance",
]

INSTALL = {"postgresql": POSTGRESQL_INSTALL, "sqlite": SQLITE_INSTALL}
REMOVE = {"postgresql": POSTGRESQL_REMOVE, "sqlite": SQLITE_REMOVE}


def install(apps, schema_editor):
    for sql in INSTALL.get(schema_editor.connection.vendor, []):
        # params=None: no placeholder interpolation, the SQL holds literal '%' signs.
        schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    for sql in REMOVE.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_registry_versions_consent_audit_chain"),
    ]

    operations = [
        migrations.RunPython(install, remove, elidable=False),
    ]
