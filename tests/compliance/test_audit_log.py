"""The audit log as evidence: a verified hash chain, refused edits, filtered streamed exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance.audit import (
    GENESIS_HASH,
    audit_append,
    audit_decision,
    audit_outcome,
    audit_policy,
    entry_hash,
)
from compliance.exports import COLUMNS, audit_export, audit_stream
from compliance.keys import number_token
from compliance.models import AuditEntry
from compliance.selectors import audit_entry_list
from compliance.services import Decision
from compliance.verify import audit_verify, chain_verify

pytestmark = pytest.mark.django_db

SENDER = "110100000000000001"
OTHER_SENDER = "110100000000000002"
T0 = dt.datetime(2026, 5, 4, 4, 30, tzinfo=dt.UTC)


def _postgres_only() -> pytest.MarkDecorator:
    return pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")


def _decision(
    number: str = "+919876543210", *, reasons: tuple[str, ...] = (), campaign_id: int = 1,
    sender: str = SENDER, attempt_id: int | None = None,
) -> AuditEntry:  # fmt: skip
    decision = Decision(
        number=number,
        purpose="promotional",
        reasons=reasons,
        local_time="2026-05-04T10:00:00+05:30",
        registry_version=3,
        consent=None,
        inputs={"cli": "+911401234567", "weights": (1.0, 2.5, 1e20)},
    )
    return audit_decision(
        decision=decision, attempt_id=attempt_id, campaign_id=campaign_id, sender_dlt_id=sender
    )


def _outcome(
    number: str = "+919876543210", *, campaign_id: int = 1, sender: str = SENDER
) -> AuditEntry:
    return audit_outcome(
        attempt_id=1,
        campaign_id=campaign_id,
        sender_dlt_id=sender,
        number=number,
        purpose="promotional",
        detail={"status": "completed", "sip_code": 200, "duration_s": 12.5},
    )


@contextmanager
def _maintenance() -> Iterator[CursorWrapper]:
    """The switch only the test flush uses (migration 0003), here to play the tamperer."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('dialer.audit_maintenance', 'on', true)")
            yield cursor
            cursor.execute("SELECT set_config('dialer.audit_maintenance', '', true)")
        else:
            cursor.execute("UPDATE compliance_audit_maintenance SET active = 1")
            yield cursor
            cursor.execute("UPDATE compliance_audit_maintenance SET active = 0")


def _verify_command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# The chain


def test_decision_outcome_and_policy_entries_form_one_verified_chain() -> None:
    first = _decision(reasons=("dnd_fully_blocked",))
    second = _outcome()
    third = audit_policy(
        policy={"promo_window": "10:00-21:00", "fingerprint": "ab12"}, previous_hash=None
    )

    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.entry_hash
    assert third.prev_hash == second.entry_hash
    assert third.kind == "policy" and third.detail["fingerprint"] == "ab12"
    stored = AuditEntry.objects.values(*COLUMNS).get(id=third.pk)
    assert entry_hash(stored) == third.entry_hash  # recomputed from what the database holds
    report = audit_verify()
    assert (report.checked, report.first_broken_id, report.problem) == (3, None, None)
    assert (report.head_id, report.head_hash) == (third.pk, third.entry_hash)
    assert _verify_command() == (
        0,
        f"audit chain intact: 3 entries\nhead: entry {third.pk} {third.entry_hash}\n",
        "",
    )


def test_hash_survives_the_json_round_trip_of_reasons_and_detail() -> None:
    # Tuples, integral floats and a float jsonb prints as an integer all come back different.
    entry = _decision(reasons=("dnd_fully_blocked", "outside_window"))
    stored = AuditEntry.objects.get(id=entry.pk)

    assert stored.reasons == ["dnd_fully_blocked", "outside_window"]
    assert entry_hash({**stored.__dict__}) == entry.entry_hash == stored.entry_hash
    assert audit_verify().first_broken_id is None


def test_an_empty_log_and_a_start_beyond_its_end_verify_as_intact() -> None:
    assert _verify_command() == (0, "audit chain intact: 0 entries\n", "")
    entry = _outcome()
    assert audit_verify(since_id=entry.pk + 1).checked == 0


def test_chain_fields_cannot_be_supplied_by_the_caller() -> None:
    with pytest.raises(ValueError, match="prev_hash"):
        audit_append(kind="outcome", number="+919876543210", prev_hash=GENESIS_HASH)


def test_a_failed_append_takes_the_callers_transaction_down_with_it() -> None:
    _outcome()
    with pytest.raises(ValueError), transaction.atomic():
        audit_append(kind="outcome", number="+919876543210", detail={"x": float("nan")})
    assert AuditEntry.objects.count() == 1


# Tampering is found


@pytest.mark.parametrize(
    ("column", "value"),
    [("allowed", "true"), ("reasons", "'[]'"), ("detail", '\'{"cli": "+911409999999"}\'')],
)
def test_changed_entry_is_named_as_the_first_broken_one(column: str, value: str) -> None:
    entries = [
        _decision(reasons=("dnd_fully_blocked",)),
        _decision(reasons=("dnd_fully_blocked",)),
        _outcome(),
    ]
    target = entries[1]
    with _maintenance() as cursor:
        cursor.execute(
            f"UPDATE compliance_auditentry SET {column} = {value} WHERE id = %s", [target.pk]
        )

    report = audit_verify()
    assert (report.checked, report.first_broken_id) == (1, target.pk)
    assert report.problem is not None and report.problem.startswith("content changed")
    code, out, err = _verify_command()
    assert (code, out) == (1, "")
    assert err.startswith(f"audit chain broken at entry {target.pk}: content changed")


def test_rehashed_edit_is_caught_by_the_next_entrys_link() -> None:
    _, second, third = _outcome(), _outcome(), _outcome()
    forged = {**AuditEntry.objects.values(*COLUMNS).get(id=second.pk), "purpose": "government"}
    with _maintenance() as cursor:
        cursor.execute(
            "UPDATE compliance_auditentry SET purpose = %s, entry_hash = %s WHERE id = %s",
            ["government", entry_hash(forged), second.pk],
        )

    report = audit_verify()
    assert (report.checked, report.first_broken_id) == (2, third.pk)
    assert (
        report.problem
        == f"prev_hash does not match entry {second.pk} (an entry deleted or rewritten)"
    )


def test_deleted_entry_breaks_the_link_of_the_one_after_it() -> None:
    first, second, third = _outcome(), _outcome(), _outcome()
    with _maintenance() as cursor:
        cursor.execute("DELETE FROM compliance_auditentry WHERE id = %s", [second.pk])

    report = audit_verify()
    assert report.first_broken_id == third.pk
    assert report.problem == (
        f"prev_hash does not match entry {first.pk} "
        f"(an entry deleted or rewritten; no entries with ids {second.pk}..{second.pk})"
    )
    assert _verify_command()[0] == 1


def test_deleted_first_entry_is_found_from_the_start_of_the_log() -> None:
    first, second = _outcome(), _outcome()
    with _maintenance() as cursor:
        cursor.execute("DELETE FROM compliance_auditentry WHERE id = %s", [first.pk])

    report = audit_verify()
    assert report.first_broken_id == second.pk
    assert report.problem is not None and "the start of the log" in report.problem


def test_swapped_entries_are_detected() -> None:
    _, second, third = _decision(), _decision(reasons=("outside_window",)), _outcome()
    with _maintenance() as cursor:  # second and third trade places, hashes and all
        for old, new in ((second.pk, -1), (third.pk, second.pk), (-1, third.pk)):
            cursor.execute("UPDATE compliance_auditentry SET id = %s WHERE id = %s", [new, old])

    report = audit_verify()
    assert report.first_broken_id == second.pk
    assert report.problem is not None and report.problem.startswith("content changed")


def test_row_written_around_audit_append_is_linked_over_and_reported() -> None:
    first = _outcome()
    stray = AuditEntry.objects.create(kind="outcome", number="+919876543210")
    third = _outcome()

    assert third.prev_hash == first.entry_hash
    report = audit_verify()
    assert (report.checked, report.first_broken_id) == (1, stray.pk)
    assert report.problem == "no entry_hash: written around audit_append, or before the chain began"
    assert audit_verify(since_id=third.pk).first_broken_id is None


def test_verify_since_id_links_to_the_entry_before_it() -> None:
    first, second, third = _outcome(), _outcome(), _outcome()
    assert audit_verify(since_id=second.pk).checked == 2
    assert _verify_command("--since-id", str(third.pk))[1].startswith(
        "audit chain intact: 1 entries"
    )
    with _maintenance() as cursor:
        cursor.execute("UPDATE compliance_auditentry SET allowed = false WHERE id = %s", [first.pk])
    # Starting after the damage trusts the stored hash of the entry before: still intact.
    assert audit_verify(since_id=second.pk).first_broken_id is None
    assert audit_verify().first_broken_id == first.pk


def test_exported_json_lines_verify_offline() -> None:
    (
        _decision(reasons=("dnd_fully_blocked",)),
        _outcome(),
        audit_policy(policy={"a": 1}, previous_hash="x"),
    )
    out = io.StringIO()
    audit_export(entries=audit_entry_list(), out=out, fmt="jsonl")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]

    assert all(entry_hash(row) == row["entry_hash"] for row in rows)
    assert chain_verify(rows).checked == 3
    rows[1]["allowed"] = True
    assert chain_verify(rows).first_broken_id == rows[1]["id"]


# The database refuses changes


def _refused_changes() -> list[Any]:
    cases = [
        pytest.param(
            lambda e: AuditEntry.objects.filter(id=e.pk).update(allowed=True), id="orm-update"
        ),
        pytest.param(lambda e: e.save(), id="orm-save"),
        pytest.param(lambda e: AuditEntry.objects.filter(id=e.pk).delete(), id="orm-delete"),
        pytest.param(lambda e: e.delete(), id="orm-instance-delete"),
        pytest.param(
            lambda e: _sql("UPDATE compliance_auditentry SET reasons = '[]'"), id="sql-update"
        ),
        pytest.param(lambda e: _sql("DELETE FROM compliance_auditentry"), id="sql-delete"),
        pytest.param(
            lambda e: _sql("TRUNCATE compliance_auditentry"),
            id="sql-truncate",
            marks=_postgres_only(),
        ),
    ]
    return cases


def _sql(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


@pytest.mark.parametrize("change", _refused_changes())
def test_update_delete_and_truncate_are_refused(change: Any) -> None:
    entry = _decision(reasons=("dnd_fully_blocked",))

    with pytest.raises(DatabaseError, match="audit log is append-only"), transaction.atomic():
        change(entry)
    assert audit_verify().checked == 1


@_postgres_only()
def test_maintenance_switch_lapses_with_its_transaction_and_serves_only_the_table_owner() -> None:
    entry = _outcome()
    with _maintenance():
        pass
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(id=entry.pk).delete()

    role = f"audit_writer_{uuid.uuid4().hex[:12]}"  # rolled back with the test's transaction
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role}")
        cursor.execute(f"GRANT SELECT, UPDATE, DELETE ON compliance_auditentry TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        cursor.execute("SELECT set_config('dialer.audit_maintenance', 'on', true)")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("UPDATE compliance_auditentry SET allowed = true")
        cursor.execute("RESET ROLE")
        transaction.set_rollback(True)


# Concurrency


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_four_connections_keep_one_chain() -> None:
    if "mode=memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("shared-cache in-memory SQLite locks tables without a busy timeout")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            start.wait()
            for i in range(50):
                _decision(f"+9198{worker:04d}{i:04d}", campaign_id=worker, attempt_id=i)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    report = audit_verify()
    assert (report.checked, report.first_broken_id) == (200, None)
    campaigns = list(AuditEntry.objects.order_by("id").values_list("campaign_id", flat=True))
    switches = sum(a != b for a, b in itertools.pairwise(campaigns))
    assert switches > 3  # the writers really did interleave


# Exports


@pytest.fixture
def spread_log() -> list[AuditEntry]:
    """Five entries an hour apart, across two campaigns, two senders and two numbers."""
    specs = [
        ("+919800000001", 1, SENDER),
        ("+919800000002", 1, OTHER_SENDER),
        ("+919800000001", 2, SENDER),
        ("+919800000001", 1, SENDER),
        ("+919800000002", 2, OTHER_SENDER),
    ]
    entries = []
    for hour, (number, campaign_id, sender) in enumerate(specs):
        with mock.patch.object(timezone, "now", return_value=T0 + dt.timedelta(hours=hour)):
            entries.append(
                _decision(number, campaign_id=campaign_id, sender=sender, reasons=("dnd", "window"))
            )
    return entries


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [0, 1, 2, 3, 4]),
        ({"since": T0 + dt.timedelta(hours=1), "until": T0 + dt.timedelta(hours=3)}, [1, 2]),
        ({"campaign_id": 1}, [0, 1, 3]),
        ({"sender_dlt_id": OTHER_SENDER}, [1, 4]),
        ({"number": "+919800000001"}, [0, 2, 3]),
        ({"campaign_id": 1, "sender_dlt_id": SENDER, "since": T0 + dt.timedelta(minutes=30)}, [3]),
    ],
)
def test_exports_filter_by_time_campaign_sender_and_number(
    spread_log: list[AuditEntry], filters: dict[str, Any], expected: list[int]
) -> None:
    wanted = [spread_log[i].pk for i in expected]
    entries = audit_entry_list(**filters)

    text = io.StringIO()
    assert audit_export(entries=entries, out=text, fmt="csv") == len(wanted)
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(text.getvalue()))] == wanted
    lines = "".join(audit_stream(entries=entries, fmt="jsonl")).splitlines()
    assert [json.loads(line)["id"] for line in lines] == wanted


def test_csv_export_columns_and_values(spread_log: list[AuditEntry]) -> None:
    entry = spread_log[0]
    text = io.StringIO()
    audit_export(entries=audit_entry_list(campaign_id=2, sender_dlt_id=SENDER), out=text, fmt="csv")

    header, row = list(csv.reader(io.StringIO(text.getvalue())))
    assert header == [
        "id", "created_at", "kind", "actor", "attempt_id", "campaign_id", "sender_dlt_id",
        "number", "number_token", "purpose", "allowed", "reasons", "detail", "prev_hash",
        "entry_hash",
    ]  # fmt: skip
    third = spread_log[2]
    assert dict(zip(header, row, strict=True)) == {
        "id": str(third.pk),
        "created_at": "2026-05-04T06:30:00+00:00",
        "kind": "decision",
        "actor": "",
        "attempt_id": "",
        "campaign_id": "2",
        "sender_dlt_id": SENDER,
        "number": "+919800000001",
        "number_token": number_token("+919800000001"),
        "purpose": "promotional",
        "allowed": "False",
        "reasons": "dnd;window",
        "detail": json.dumps(AuditEntry.objects.get(id=third.pk).detail, sort_keys=True),
        "prev_hash": spread_log[1].entry_hash,
        "entry_hash": third.entry_hash,
    }
    assert entry.prev_hash == GENESIS_HASH


def test_json_lines_export_columns_and_values(spread_log: list[AuditEntry]) -> None:
    out = io.StringIO()
    audit_export(
        entries=audit_entry_list(number="+919800000002", campaign_id=2), out=out, fmt="jsonl"
    )

    (line,) = out.getvalue().splitlines()
    last = spread_log[4]
    assert json.loads(line) == {
        "id": last.pk,
        "created_at": "2026-05-04T08:30:00+00:00",
        "kind": "decision",
        "actor": "",
        "attempt_id": None,
        "campaign_id": 2,
        "sender_dlt_id": OTHER_SENDER,
        "number": "+919800000002",
        "number_token": number_token("+919800000002"),
        "purpose": "promotional",
        "allowed": False,
        "reasons": ["dnd", "window"],
        "detail": {
            "cli": "+911401234567",
            "weights": [1.0, 2.5, 1e20],
            "local_time": "2026-05-04T10:00:00+05:30",
            "registry_version": 3,
            "consent": None,
        },
        "prev_hash": spread_log[3].entry_hash,
        "entry_hash": last.entry_hash,
    }


def test_export_command_combines_filters_including_sender(
    spread_log: list[AuditEntry], tmp_path: Any
) -> None:
    target = tmp_path / "audit.jsonl"
    err = io.StringIO()
    call_command(
        "export_audit", "--format", "jsonl", "--sender", SENDER, "--campaign", "1",
        "--since", "2026-05-04T10:00:00+05:30", "--until", "2026-05-04T14:00+05:30",
        "--out", str(target), stderr=err,
    )  # fmt: skip

    ids = [json.loads(line)["id"] for line in target.read_text().splitlines()]
    assert ids == [spread_log[0].pk, spread_log[3].pk]
    assert err.getvalue() == f"2 audit entries written to {target}\n"


# Admin downloads


def _body(response: Any) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(cast(Iterator[bytes], response.streaming_content)).decode()


def test_admin_download_streams_with_the_changelist_filters(
    admin_client: Client, spread_log: list[AuditEntry]
) -> None:
    url = reverse("admin:compliance_auditentry_export", args=["csv"])
    response = admin_client.get(url, {"sender_dlt_id": OTHER_SENDER, "q": "+919800000002"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [int(r["id"]) for r in rows] == [spread_log[1].pk, spread_log[4].pk]

    jsonl = reverse("admin:compliance_auditentry_export", args=["jsonl"])
    dated = admin_client.get(
        jsonl, {"created_at__year": "2026", "created_at__month": "5", "campaign_id": "2"}
    )
    assert [json.loads(x)["id"] for x in _body(dated).splitlines()] == [
        spread_log[2].pk,
        spread_log[4].pk,
    ]
    assert admin_client.get(url, {"no_such_field": "1"}).status_code == 400
    assert (
        admin_client.get(reverse("admin:compliance_auditentry_export", args=["xml"])).status_code
        == 404
    )


def test_admin_export_action_exports_every_filtered_entry(
    admin_client: Client, spread_log: list[AuditEntry]
) -> None:
    changelist = reverse("admin:compliance_auditentry_changelist")
    response = admin_client.post(
        f"{changelist}?campaign_id=1",
        {"action": "export_jsonl", "select_across": "1", "index": "0",
         "_selected_action": [str(spread_log[0].pk)]},
    )  # fmt: skip

    assert [json.loads(x)["id"] for x in _body(response).splitlines()] == [
        spread_log[0].pk, spread_log[1].pk, spread_log[3].pk,
    ]  # fmt: skip
    page = admin_client.get(changelist).content.decode()
    assert "export_csv" in page and "delete_selected" not in page


def test_admin_download_needs_a_staff_login(client: Client) -> None:
    response = client.get(reverse("admin:compliance_auditentry_export", args=["csv"]))
    assert response.status_code == 302 and "/login/" in response["Location"]


# Constant memory


@pytest.mark.slow
@_postgres_only()
def test_export_of_200k_entries_runs_in_constant_memory() -> None:
    with connection.cursor() as cursor:  # no chain needed here; INSERT is never refused
        cursor.execute(
            """
            INSERT INTO compliance_auditentry (created_at, kind, actor, attempt_id, campaign_id,
                sender_dlt_id, number, number_token, purpose, allowed, reasons, detail,
                prev_hash, entry_hash)
            SELECT now(), 'decision', '', g, 7, %s, '+9198' || lpad(g::text, 8, '0'),
                md5(g::text) || md5(g::text), 'promotional',
                g %% 3 = 0, '["dnd_fully_blocked"]', jsonb_build_object('cli', '+911401234567',
                'registry_version', 3, 'local_time', '2026-05-04T10:00:00+05:30'),
                md5(g::text) || md5(g::text), md5(g::text) || md5(g::text)
            FROM generate_series(1, 200000) AS g
            """,
            [SENDER],
        )
    entries = audit_entry_list(campaign_id=7)

    # One pass through the admin's streamed path (audit_export shares the same row source).
    tracemalloc.start()
    try:
        pieces = sizes = 0
        for piece in audit_stream(entries=entries, fmt="csv"):
            pieces, sizes = pieces + 1, sizes + len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pieces == 100  # 2,000 rows a piece
    assert sizes > 200_000 * 300  # every row was really written
    assert peak < 20 * 2**20, f"the export peaked at {peak / 2**20:.1f} MiB"
