from __future__ import annotations

import subprocess
import sys
import tracemalloc
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection

from campaigns.models import Campaign, Contact, ContactList, ContactStatus
from campaigns.services import contacts_stage
from campaigns.services.contacts_import import (
    MAX_ISSUES,
    ImportReport,
    RowIssue,
    contacts_import,
)
from tests.helpers.factories import make_campaign, make_contact
from tests.helpers.paths import REPO

pytestmark = pytest.mark.django_db


def _import(
    campaign: Campaign, text: str | bytes, *, skip_invalid: bool = False, default_region: str = "IN"
) -> ImportReport:
    return contacts_import(
        campaign_id=campaign.pk,
        list_name="leads",
        data=text.encode() if isinstance(text, str) else text,
        skip_invalid=skip_invalid,
        default_region=default_region,
    )


def _lines(issues: list[RowIssue]) -> list[int]:
    return [issue.line for issue in issues]


def test_numbers_in_every_common_format_are_stored_as_e164_and_due_now() -> None:
    campaign = make_campaign()
    report = _import(
        campaign,
        "number,name\n"
        "+919876543210,Asha\n"
        "9876543211,Bala\n"
        "09876543212,Chitra\n"
        "98765 43213,Dev\n"
        "+91-98765-43214,Esha\n"
        "0091 98765 43215,Farid\n",
    )

    assert report.applied
    assert report.imported == 6
    assert report.errors == [] and report.duplicates == []
    contacts = Contact.objects.filter(campaign=campaign).order_by("number")
    assert [c.number for c in contacts] == [f"+91987654321{i}" for i in range(6)]
    assert [c.name for c in contacts] == ["Asha", "Bala", "Chitra", "Dev", "Esha", "Farid"]
    assert {c.status for c in contacts} == {ContactStatus.PENDING}
    assert {c.next_attempt_at for c in contacts} == {None}
    assert report.list_id is not None
    contact_list = ContactList.objects.get(pk=report.list_id)
    assert contact_list.campaign_id == campaign.pk and contact_list.name == "leads"
    assert set(contacts.values_list("contact_list_id", flat=True)) == {contact_list.pk}


def test_each_imported_contact_gets_its_callees_time_zone() -> None:
    campaign = make_campaign()
    _import(campaign, "number\n+919876543210\n+442079460123\n+12025550123\n")
    zones = dict(Contact.objects.filter(campaign=campaign).values_list("number", "time_zone"))
    assert zones == {
        "+919876543210": "Asia/Kolkata",
        "+442079460123": "Europe/London",
        "+12025550123": "America/New_York",
    }


def test_phone_and_msisdn_are_accepted_as_the_number_column_and_a_bom_is_ignored() -> None:
    campaign = make_campaign()

    assert _import(campaign, "\ufeffPhone\n9876543210\n").imported == 1
    assert _import(campaign, "MSISDN\n919876543211\n").imported == 1
    assert set(Contact.objects.values_list("number", flat=True)) == {
        "+919876543210",
        "+919876543211",
    }


def test_other_columns_are_kept_as_custom_fields() -> None:
    campaign = make_campaign()
    report = _import(
        campaign,
        'number,name,City,loan_id\n9876543210,Asha," Pune ",L-1\n9876543211,Bala,Delhi,\n',
    )

    assert report.imported == 2
    fields = dict(Contact.objects.values_list("number", "fields"))
    assert fields["+919876543210"] == {"City": "Pune", "loan_id": "L-1"}
    assert fields["+919876543211"] == {"City": "Delhi", "loan_id": ""}


def test_a_quoted_field_spanning_lines_does_not_shift_later_line_numbers() -> None:
    campaign = make_campaign()
    report = _import(campaign, 'number,note\n9876543210,"two\nlines"\nnope,x\n')

    assert not report.applied
    assert _lines(report.errors) == [4]


def test_duplicates_in_the_file_and_in_the_campaign_are_reported_by_line_and_skipped() -> None:
    campaign = make_campaign()
    make_contact(campaign=campaign, number="+919876543219")
    report = _import(
        campaign,
        "number\n9876543210\n+919876543210\n9876543211\n09876543219\n9876543210\n",
    )

    assert report.applied
    assert report.imported == 2
    assert _lines(report.duplicates) == [3, 5, 6]
    assert "line 2" in report.duplicates[0].message
    assert report.duplicates[1].message == "already a contact of this campaign"
    assert report.duplicates[1].value == "09876543219"
    assert Contact.objects.filter(campaign=campaign).count() == 3


def test_a_number_of_another_campaign_is_not_a_duplicate() -> None:
    make_contact(number="+919876543210")
    campaign = make_campaign()

    assert _import(campaign, "number\n9876543210\n").imported == 1


def test_one_invalid_row_rejects_the_whole_file_and_writes_nothing() -> None:
    campaign = make_campaign()
    report = _import(
        campaign, "number,name\n9876543210,Asha\n12345,Bad\n,Missing\nhello,Text\n9876543211,Bala\n"
    )

    assert not report.applied
    assert report.list_id is None and report.imported == 0
    assert _lines(report.errors) == [3, 4, 5]
    assert [e.value for e in report.errors] == ["12345", "", "hello"]
    assert report.errors[1].message == "the number is missing"
    assert "Nothing was imported" in report.summary()
    assert not ContactList.objects.exists()
    assert not Contact.objects.exists()


def test_skip_invalid_imports_the_valid_rows_and_reports_the_others() -> None:
    campaign = make_campaign()
    report = _import(
        campaign,
        "number,name\n9876543210,Asha\n12345,Bad\n9876543211,Bala\n",
        skip_invalid=True,
    )

    assert report.applied
    assert report.imported == 2
    assert _lines(report.errors) == [3]
    assert "skipped 1 invalid row" in report.summary()
    assert Contact.objects.filter(campaign=campaign).count() == 2


def test_default_region_reads_national_numbers_of_that_country() -> None:
    campaign = make_campaign()
    report = _import(campaign, "number\n020 7946 0958\n", default_region="GB")

    assert report.imported == 1
    assert Contact.objects.get().number == "+442079460958"


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        pytest.param(b"number\n9876543210\nB\xe9la\n", 3, "not UTF-8", id="latin-1 bytes"),
        pytest.param("number\n9876543210\n".encode("utf-16"), 1, "not UTF-8", id="utf-16"),
        pytest.param(b"", 0, "the file is empty", id="empty"),
        pytest.param(b"\n \n", 0, "the file is empty", id="blank lines only"),
        pytest.param(b"number,name\n", 0, "header but no rows", id="header only"),
        pytest.param(b"name,city\nAsha,Pune\n", 1, "no number column", id="no number column"),
        pytest.param(b"9876543210,Asha\n", 1, "no header row", id="no header"),
        pytest.param(b"number;name\n9876543210;A\n", 1, "no number column", id="semicolons"),
        pytest.param(b"number,phone\n1,2\n", 1, "several number columns", id="two numbers"),
        pytest.param(b"number,name,Name\n1,2,3\n", 1, "appears twice", id="repeated column"),
        pytest.param(b"number,,x\n1,2,3\n", 1, "column 2 of the header has no name", id="blank"),
        pytest.param(
            b"number,name\n9876543210,A\n9876543211,B,extra\n", 3, "3 fields", id="ragged"
        ),
        pytest.param(b'number\n"9876543210\n', 2, "not a readable CSV", id="open quote"),
    ],
)
def test_a_malformed_file_changes_nothing_and_says_why(
    data: bytes, line: int, message: str
) -> None:
    campaign = make_campaign()
    for skip_invalid in (False, True):
        report = _import(campaign, data, skip_invalid=skip_invalid)

        assert not report.applied
        assert report.malformed
        assert report.errors, report
        assert report.errors[0].line == line
        assert message in report.errors[0].message
        assert "fix the file" in report.summary()
    assert not ContactList.objects.exists()
    assert not Contact.objects.exists()


def test_unknown_campaign_raises_does_not_exist() -> None:
    with pytest.raises(Campaign.DoesNotExist):
        contacts_import(campaign_id=999_999, list_name="x", data=b"number\n9876543210\n")


def test_large_file_is_written_in_one_import() -> None:
    campaign = make_campaign()
    rows = "".join(f"98{i:08d},n{i}\n" for i in range(12_000))
    report = _import(campaign, "number,name\n" + rows)

    assert report.applied and report.imported == 12_000
    assert Contact.objects.filter(campaign=campaign).count() == 12_000


# The management command.


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(text)
    return path


def test_command_imports_and_prints_the_summary_and_duplicate_lines(tmp_path: Path) -> None:
    campaign = make_campaign()
    path = _write(tmp_path, "number\n9876543210\n9876543210\n")
    out = StringIO()

    call_command("import_contacts", str(campaign.pk), str(path), "--list-name", "May", stdout=out)

    assert "Imported 1 contact" in out.getvalue()
    assert "duplicate line 3: '9876543210'" in out.getvalue()
    assert ContactList.objects.get().name == "May"


def test_command_names_the_list_after_the_file_by_default(tmp_path: Path) -> None:
    campaign = make_campaign()
    call_command(
        "import_contacts", campaign.pk, _write(tmp_path, "number\n9876543210\n"), stdout=StringIO()
    )

    assert ContactList.objects.get().name == "contacts.csv"


def test_command_rejects_a_file_with_exit_1_and_prints_each_error_line(tmp_path: Path) -> None:
    campaign = make_campaign()
    path = _write(tmp_path, "number\n9876543210\nbad\n123\n")
    out = StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_contacts", campaign.pk, path, stdout=out)

    assert excinfo.value.returncode == 1
    assert "Nothing was imported" in str(excinfo.value)
    assert "error line 3: 'bad'" in out.getvalue()
    assert "error line 4: '123'" in out.getvalue()
    assert not Contact.objects.exists()


def test_command_skip_invalid_imports_the_rest(tmp_path: Path) -> None:
    campaign = make_campaign()
    path = _write(tmp_path, "number\n9876543210\nbad\n")
    out = StringIO()

    call_command("import_contacts", campaign.pk, path, "--skip-invalid", stdout=out)

    assert "error line 3" in out.getvalue()
    assert Contact.objects.count() == 1


@pytest.mark.parametrize("problem", ["missing file", "unknown campaign"])
def test_command_bad_arguments_exit_2(tmp_path: Path, problem: str) -> None:
    campaign = make_campaign()
    path = _write(tmp_path, "number\n9876543210\n")
    args = (campaign.pk, tmp_path / "nope.csv") if problem == "missing file" else (999_999, path)

    with pytest.raises(CommandError) as excinfo:
        call_command("import_contacts", *args, stdout=StringIO())

    assert excinfo.value.returncode == 2
    assert ("cannot read" if problem == "missing file" else "does not exist") in str(excinfo.value)


@pytest.mark.slow
def test_command_process_exit_codes_are_0_1_and_2(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # subprocess_env commits test data (transactional_db) so a real manage.py process sees it.
    campaign = make_campaign()

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "manage.py", "import_contacts", *map(str, args)]
        return subprocess.run(
            cmd, cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=60
        )

    good = run(campaign.pk, _write(tmp_path, "number\n9876543210\n"))
    assert good.returncode == 0, good.stderr
    assert "Imported 1 contact" in good.stdout

    bad = run(campaign.pk, _write(tmp_path, "number\n9876543211\nbad\n"))
    assert bad.returncode == 1
    assert "error line 3: 'bad'" in bad.stdout
    assert "Nothing was imported" in bad.stderr

    unknown = run(999_999, tmp_path / "contacts.csv")
    assert unknown.returncode == 2
    assert "campaign 999999 does not exist" in unknown.stderr
    assert Contact.objects.count() == 1


# What a file may not bring to the database, and how much of the file is held at once.


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"number,name\n9876543210,A\n9876543211,B\x00la\n", id="in the name"),
        pytest.param(b"number,city\n9876543210,P\n9876543211,Pu\x00ne\n", id="in a custom field"),
    ],
)
def test_a_nul_byte_rejects_the_file_with_its_line_instead_of_a_database_error(
    data: bytes,
) -> None:
    campaign = make_campaign()
    for skip_invalid in (False, True):
        report = _import(campaign, data, skip_invalid=skip_invalid)

        assert not report.applied and report.malformed
        assert _lines(report.errors) == [3]
        assert "NUL" in report.errors[0].message
    assert not Contact.objects.exists()


def test_a_custom_field_over_its_cap_is_an_invalid_row() -> None:
    campaign = make_campaign()
    long_note = "x" * 1001
    report = _import(campaign, f"number,note\n9876543210,ok\n9876543211,{long_note}\n")

    assert not report.applied
    assert _lines(report.errors) == [3]
    assert "longer than 1000 characters" in report.errors[0].message
    assert not Contact.objects.exists()


def test_a_row_with_too_few_fields_rejects_the_file() -> None:
    campaign = make_campaign()
    for skip_invalid in (False, True):
        report = _import(
            campaign,
            "number,name,city\n9876543210,Asha,Pune\n9876543211,Bala\n",
            skip_invalid=skip_invalid,
        )

        assert not report.applied and report.malformed
        assert _lines(report.errors) == [3]
        assert "2 fields but the header has 3" in report.errors[0].message
    assert not Contact.objects.exists()


@pytest.mark.slow
def test_a_large_file_is_imported_without_holding_its_rows_in_memory() -> None:
    # 40,000 rows (1.3 MB): the import may hold a batch of rows, not all of them and their
    # contacts. The bytes exist before tracing starts; only what the import adds is measured.
    campaign = make_campaign()
    data = b"number,name,city\n" + b"".join(
        b"98%08d,Name %d,City %d\n" % (i, i, i % 50) for i in range(40_000)
    )
    tracemalloc.start()
    try:
        report = _import(campaign, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.applied and report.imported == 40_000
    assert Contact.objects.filter(campaign=campaign).count() == 40_000
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


def test_a_long_list_of_problems_keeps_the_first_thousand_of_each_and_counts_the_rest() -> None:
    campaign = make_campaign()
    rows = [f"98{i:08d}" for i in range(1500)] * 2 + ["bad"] * 1200
    report = _import(campaign, "number\n" + "\n".join(rows) + "\n", skip_invalid=True)

    assert report.applied and report.imported == 1500
    assert (len(report.duplicates), report.more_duplicates) == (MAX_ISSUES, 500)
    assert (len(report.errors), report.more_errors) == (MAX_ISSUES, 200)
    assert _lines(report.duplicates)[:2] == [1502, 1503]
    assert _lines(report.errors)[-1] == 3001 + MAX_ISSUES
    assert report.summary() == (
        f"Imported 1500 contacts into list #{report.list_id}; skipped 1500 duplicates; "
        "skipped 1200 invalid rows."
    )


def test_command_streams_the_file_and_says_how_many_problems_it_did_not_print(
    tmp_path: Path,
) -> None:
    campaign = make_campaign()
    path = _write(tmp_path, "number\n9876543210\n" + "bad\n" * (MAX_ISSUES + 5))
    out = StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_contacts", campaign.pk, path, stdout=out)

    assert f"rejected with {MAX_ISSUES + 5} errors" in str(excinfo.value)
    assert out.getvalue().count("error line") == MAX_ISSUES
    assert "error ... and 5 more" in out.getvalue()


def test_contacts_are_written_in_batches_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Batches of 2 rows: a number's later rows fall in later batches than its first.
    monkeypatch.setattr(contacts_stage, "STAGE_BATCH", 2)
    campaign = make_campaign()
    make_contact(campaign=campaign, number="+919876543219")
    report = _import(
        campaign,
        "number,name\n9876543210,a\n9876543211,b\n09876543219,c\n9876543212,d\n"
        "+919876543210,e\n9876543211,f\n9876543213,g\n",
    )

    assert report.applied and report.imported == 4
    assert _lines(report.duplicates) == [4, 6, 7]
    contacts = Contact.objects.filter(campaign=campaign, contact_list_id=report.list_id)
    assert list(contacts.order_by("id").values_list("number", "name")) == [
        ("+919876543210", "a"),
        ("+919876543211", "b"),
        ("+919876543212", "d"),
        ("+919876543213", "g"),
    ]


def test_contacts_have_no_index_on_the_campaign_alone() -> None:
    # Every contact index leads with the campaign already; one more to keep up slows imports.
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Contact._meta.db_table)
    indexed = [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]
    assert ["campaign_id", "number"] in indexed
    assert ["campaign_id"] not in indexed


def test_a_file_rejected_after_some_batches_writes_nothing_and_still_names_its_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Batches of 2: contacts of the first batches are written before the bad row is read; the
    # duplicates after it (in the file, in the campaign) are still found.
    monkeypatch.setattr(contacts_stage, "STAGE_BATCH", 2)
    campaign = make_campaign()
    make_contact(campaign=campaign, number="+919876543219")
    report = _import(
        campaign,
        "number\n9876543210\n9876543211\n9876543212\n9876543210\nbad\n"
        "9876543219\n9876543213\n9876543211\n9876543214\n",
    )

    assert not report.applied and report.list_id is None
    assert _lines(report.errors) == [6]
    assert _lines(report.duplicates) == [5, 7, 9]
    assert report.duplicates[1].message == "already a contact of this campaign"
    assert "line 3" in report.duplicates[2].message
    assert list(Contact.objects.values_list("number", flat=True)) == ["+919876543219"]
    assert ContactList.objects.count() == 1  # make_contact's own


def test_a_database_error_while_writing_is_raised_and_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The statement that writes contacts is broken here; on PostgreSQL it fails in the writer
    # thread and must surface in the caller, not vanish with the thread.
    monkeypatch.setattr(contacts_stage, "STAGE_BATCH", 2)
    monkeypatch.setattr(contacts_stage, "_INSERT", contacts_stage._INSERT + " no such syntax")
    campaign = make_campaign()
    rows = "".join(f"98765432{i:02d}\n" for i in range(9))

    with pytest.raises(DatabaseError):
        _import(campaign, "number\n" + rows)

    assert not Contact.objects.exists()
    assert not ContactList.objects.exists()
