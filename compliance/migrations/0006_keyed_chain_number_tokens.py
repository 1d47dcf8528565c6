"""The audit chain becomes keyed, and numbers become tokens (issue: erasure under DPDP).

- Consents, suppressions and audit entries get number_token (HMAC of the number with a key
  derived from AUDIT_KEY, compliance.keys): the check matches on it, so a suppression keeps
  protecting a person whose number was erased.
- Audit entries: the MAC covers `actor` and `number_token` instead of `number`, and is an HMAC
  (keyed with AUDIT_KEY) instead of a bare SHA-256. Existing entries are re-chained here, but
  only after their old chain verified intact: a broken chain is never laundered into a valid
  keyed one (the migration stops and says where it broke). A `chain_keyed` entry records the
  old head (id and hash), so an anchor kept from before still proves the old chain.
- The append-only guards allow exactly one UPDATE: blanking the clear-text `number`, which the
  MAC does not cover. On SQLite the table is rebuilt by this migration, which drops its
  triggers and index: they are installed again at the end (a later migration that alters this
  table must do the same, and extend the column list of the UPDATE guard).
"""

import datetime as dt
import hashlib
import hmac
import json

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


GENESIS = "0" * 64
LEGACY_FIELDS = (
    "id", "created_at", "kind", "attempt_id", "campaign_id", "sender_dlt_id", "number",
    "purpose", "allowed", "reasons", "detail", "prev_hash",
)
KEYED_FIELDS = (
    "id", "created_at", "kind", "actor", "attempt_id", "campaign_id", "sender_dlt_id",
    "number_token", "purpose", "allowed", "reasons", "detail", "prev_hash",
)
CHUNK = 1000


def _canonical(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _payload(row, fields):
    data = {name: _canonical(row[name]) for name in fields}
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _keys():
    from django.conf import settings

    key = (getattr(settings, "AUDIT_KEY", "") or "dev-only-audit-key").encode()
    return (
        hmac.digest(key, b"number-token", "sha256"),
        hmac.digest(key, b"audit-chain", "sha256"),
    )


def _token(token_key, number):
    return hmac.digest(token_key, number.encode(), "sha256").hex() if number else ""


PG_FUNCTION = """
    CREATE OR REPLACE FUNCTION compliance_auditentry_refuse_change() RETURNS trigger
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
        IF TG_OP = 'UPDATE' THEN
            -- Erasure: the clear-text number may be blanked, and nothing else changed. The
            -- chain's MAC covers number_token, not number, so the chain still verifies.
            IF NEW.number = '' AND (to_jsonb(NEW) - 'number') = (to_jsonb(OLD) - 'number') THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
"""
_SQLITE_SAME = " AND ".join(
    f"NEW.{c} IS OLD.{c}"
    for c in (
        "id", "created_at", "kind", "actor", "attempt_id", "campaign_id", "sender_dlt_id",
        "number_token", "purpose", "allowed", "reasons", "detail", "prev_hash", "entry_hash",
    )
)
SQLITE_GUARDS = [
    "DROP TRIGGER IF EXISTS compliance_auditentry_no_update",
    "DROP TRIGGER IF EXISTS compliance_auditentry_no_delete",
    f"""
    CREATE TRIGGER compliance_auditentry_no_update
    BEFORE UPDATE ON compliance_auditentry
    WHEN NOT EXISTS (SELECT 1 FROM compliance_audit_maintenance WHERE active = 1)
     AND NOT (NEW.number = '' AND {_SQLITE_SAME})
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
    CREATE UNIQUE INDEX IF NOT EXISTS compliance_auditentry_prev_hash_uniq
    ON compliance_auditentry (prev_hash) WHERE prev_hash <> ''
    """,
]


def drop_sqlite_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS compliance_auditentry_no_update")
        schema_editor.execute("DROP TRIGGER IF EXISTS compliance_auditentry_no_delete")


def install_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION, params=None)
    elif vendor == "sqlite":
        for sql in SQLITE_GUARDS:
            schema_editor.execute(sql, params=None)


def _maintenance(schema_editor, on):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT set_config('dialer.audit_maintenance', %s, true)", ["on" if on else "off"]
            )
        elif vendor == "sqlite":  # the triggers are dropped here, unless run on their own
            cursor.execute("UPDATE compliance_audit_maintenance SET active = %s", [int(on)])


def tokens_and_rekey(apps, schema_editor):
    token_key, chain_key = _keys()
    for name in ("Consent", "Suppression"):
        model = apps.get_model("compliance", name)
        batch = []
        for row in model.objects.only("id", "number").iterator(chunk_size=CHUNK):
            row.number_token = _token(token_key, row.number)
            batch.append(row)
            if len(batch) >= CHUNK:
                model.objects.bulk_update(batch, ["number_token"])
                batch = []
        model.objects.bulk_update(batch, ["number_token"])

    entry_model = apps.get_model("compliance", "AuditEntry")
    rows = entry_model.objects.order_by("id")
    if not rows.exists():
        return
    # 1. The old chain must verify before it is re-chained.
    prev = GENESIS
    head_id = None
    for row in rows.values(*LEGACY_FIELDS, "entry_hash").iterator(chunk_size=CHUNK):
        ok = row["entry_hash"] and row["prev_hash"] == prev
        ok = ok and hashlib.sha256(_payload(row, LEGACY_FIELDS)).hexdigest() == row["entry_hash"]
        if not ok:
            raise RuntimeError(
                f"audit chain broken at entry {row['id']}: it is not re-keyed. Run "
                "verify_audit on the previous release, investigate, and restore the log "
                "before migrating."
            )
        prev, head_id = row["entry_hash"], row["id"]
    legacy_head = prev
    # 2. Re-chain with tokens and the keyed MAC.
    _maintenance(schema_editor, True)
    prev = GENESIS
    batch = []
    for entry in rows.iterator(chunk_size=CHUNK):
        entry.actor = ""
        entry.number_token = _token(token_key, entry.number)
        entry.prev_hash = prev
        values = {name: getattr(entry, name) for name in KEYED_FIELDS}
        entry.entry_hash = hmac.digest(chain_key, _payload(values, KEYED_FIELDS), "sha256").hex()
        prev = entry.entry_hash
        batch.append(entry)
        if len(batch) >= CHUNK:
            entry_model.objects.bulk_update(
                batch, ["actor", "number_token", "prev_hash", "entry_hash"]
            )
            batch = []
    # The unique index on prev_hash: rows are rewritten in id order and every new hash differs
    # from every old one, so no two rows share a predecessor at any point.
    entry_model.objects.bulk_update(batch, ["actor", "number_token", "prev_hash", "entry_hash"])
    _maintenance(schema_editor, False)
    # 3. Record the change of scheme, chained after the re-keyed entries.
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            # After the newest entry, whatever the sequence says (rows may carry explicit ids).
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('compliance_auditentry', 'id'),"
                " (SELECT MAX(id) FROM compliance_auditentry))"
            )
            cursor.execute("SELECT nextval(pg_get_serial_sequence('compliance_auditentry', 'id'))")
        else:
            cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM compliance_auditentry")
        new_id = int(cursor.fetchone()[0])
    entry = entry_model(
        id=new_id,
        created_at=dt.datetime.now(dt.UTC),
        kind="chain_keyed",
        actor="migration:compliance.0006",
        number="",
        number_token="",
        purpose="",
        reasons=[],
        detail={"entries": rows.count(), "legacy_head_id": head_id, "legacy_head_hash": legacy_head},
        prev_hash=prev,
    )
    values = {name: getattr(entry, name) for name in KEYED_FIELDS}
    entry.entry_hash = hmac.digest(chain_key, _payload(values, KEYED_FIELDS), "sha256").hex()
    entry.save_base(raw=True, force_insert=True)


class Migration(migrations.Migration):

    dependencies = [
        ('compliance', '0005_permissions_sender_archive_erasure'),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_guards, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='auditentry',
            name='compliance__number_f8c473_idx',
        ),
        migrations.RemoveIndex(
            model_name='consent',
            name='compliance__number_b818ca_idx',
        ),
        migrations.AddField(
            model_name='auditentry',
            name='actor',
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='number_token',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='consent',
            name='number_token',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='suppression',
            name='created_by',
            field=models.CharField(blank=True, editable=False, max_length=150),
        ),
        migrations.AddField(
            model_name='suppression',
            name='erasure',
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AddField(
            model_name='suppression',
            name='lift_reason',
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.AddField(
            model_name='suppression',
            name='lifted_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='suppression',
            name='lifted_by',
            field=models.CharField(blank=True, editable=False, max_length=150),
        ),
        migrations.AddField(
            model_name='suppression',
            name='number_token',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='created_at',
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='kind',
            field=models.CharField(choices=[('decision', 'Decision'), ('outcome', 'Outcome'), ('policy', 'Policy'), ('opt_out', 'Opt Out'), ('suppression_added', 'Suppression Added'), ('suppression_lifted', 'Suppression Lifted'), ('consent_added', 'Consent Added'), ('consent_changed', 'Consent Changed'), ('consent_revoked', 'Consent Revoked'), ('registry_loaded', 'Registry Loaded'), ('sender_changed', 'Sender Changed'), ('caller_id_changed', 'Caller Id Changed'), ('erasure', 'Erasure'), ('retention', 'Retention'), ('chain_keyed', 'Chain Keyed')], max_length=32),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='number',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AlterField(
            model_name='consent',
            name='number',
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AlterField(
            model_name='suppression',
            name='number',
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AlterField(
            model_name='suppression',
            name='sender',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='compliance.sender'),
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(fields=['number_token', 'sender_dlt_id', 'created_at'], name='compliance__number__b187a9_idx'),
        ),
        migrations.AddIndex(
            model_name='consent',
            index=models.Index(fields=['number_token', 'sender', 'scope'], name='compliance__number__085e27_idx'),
        ),
        migrations.AddIndex(
            model_name='suppression',
            index=models.Index(fields=['number_token'], name='suppression_token_idx'),
        ),
            migrations.RunPython(tokens_and_rekey, migrations.RunPython.noop),
        migrations.RunPython(install_guards, migrations.RunPython.noop),
    ]
