"""registry_load: national DND files into versioned tables, atomically, against real PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import signal
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import IO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from bench.registry_data import registry_rows, write_registry_csv
from compliance import registry, registry_file
from compliance.models import RegistryVersion
from compliance.numbers import InvalidNumber, to_e164
from compliance.registry import (
    FULLY_BLOCKED,
    prefs_to_mask,
    registry_current,
    registry_lookup,
    registry_lookup_many,
    registry_number,
)
from compliance.registry_file import RegistryLoadError
from compliance.registry_load import LoadReport, registry_load
from tests.helpers.paths import REPO
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

AS_OF = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)


def _registry_tables() -> set[str]:
    return {
        t for t in connection.introspection.table_names() if t.startswith("compliance_registry_v")
    }


@pytest.fixture(autouse=True)
def _no_registry_tables_left() -> Iterator[None]:
    # Version tables are not Django models: the flush between tests does not drop them.
    yield
    with connection.cursor() as cursor:
        for table in _registry_tables():
            cursor.execute(f"DROP TABLE {table}")


def _write(tmp_path: Path, text: str | bytes, name: str = "registry.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def _load(path: Path, *, delta: bool = False, hours: int = 0) -> LoadReport:
    # Forced: these small files are meant to shrink the registry and carry bad rows; the guards
    # against that are tested in tests/compliance/test_registry_guards.py.
    return registry_load(
        path=path, as_of=AS_OF + dt.timedelta(hours=hours), delta=delta, force=True
    )


def _masks(*numbers: str) -> dict[str, int | None]:
    state = registry_current()
    assert state is not None
    return {n: registry_lookup(state=state, number=n) for n in numbers}


def _current_id() -> int | None:
    state = registry_current()
    return None if state is None else state.version_id


def _mask(prefs: str) -> int:
    return prefs_to_mask(prefs)


BASE = "number,preferences\n9876500001,0\n9876500002,1;3\n9876500003,2|5\n"


@pytest.fixture
def base(tmp_path: Path) -> LoadReport:
    return _load(_write(tmp_path, BASE, "base.csv"))


# -- numbers -------------------------------------------------------------------------------

# These touch no table: a rollback after each (the closest django_db mark wins) instead of the
# module's flush of every table, which costs far more than the test.


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [
        "9876543210",
        "09876543210",
        "919876543210",
        "+919876543210",
        "+91 98765 43210",
        "+91-98765-43210",
        "98765-43210",
        " 9876543210 ",
        "00919876543210",
        "6001234567",
        "7012345678",
        "8123456789",
        "01123456789",  # a Delhi landline with its trunk 0
        "12345",
        "98765432101",
        "987654321",
        "abcdefghij",
        "0987654321",
        "+910987654321",
        "",
    ],
)
def test_fast_number_normaliser_agrees_with_phonenumbers(raw: str) -> None:
    try:
        expected: str | None = to_e164(raw, region="IN")
    except InvalidNumber:
        expected = None
    assert registry_number(raw) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["+449876543210", "+1 202 555 0100", "٩٨٧٦٥٤٣٢١٠"])
def test_fast_number_normaliser_refuses_other_countries_and_non_ascii_digits(raw: str) -> None:
    assert registry_number(raw) is None


# -- full and delta loads ------------------------------------------------------------------


def test_full_load_accepts_every_number_and_preference_format(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "number,preferences\n"
        "9876543210,0\n"
        "09876543211,1;3;7\n"
        "919876543212,2|5\n"
        '+919876543213,"1,4"\n'
        "+91 98765 43214,8\n"
        "98765-43215, 0 \n"
        '"9876543216",6\n',
    )
    report = _load(path)
    assert (report.rows_read, report.added, report.changed, report.removed) == (7, 7, 0, 0)
    assert (report.rejected, report.entries, report.issues) == (0, 7, [])
    assert report.kind == "full"
    assert _masks(
        "+919876543210", "+919876543211", "+919876543212", "+919876543213",
        "+919876543214", "+919876543215", "+919876543216", "+919999999999",
    ) == {
        "+919876543210": FULLY_BLOCKED, "+919876543211": _mask("1;3;7"),
        "+919876543212": _mask("2;5"), "+919876543213": _mask("1;4"),
        "+919876543214": _mask("8"), "+919876543215": FULLY_BLOCKED,
        "+919876543216": _mask("6"), "+919999999999": None,
    }  # fmt: skip
    version = RegistryVersion.objects.get(id=report.version_id)
    assert version.completed_at is not None
    assert (version.as_of, version.entries, version.rows_read) == (AS_OF, 7, 7)


def test_windows_line_ends_and_a_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, "\ufeffNumber,Preferences\r\n9876543210,0\r\n9876543211,1;2\r\n")
    report = _load(path)
    assert (report.entries, report.rejected) == (2, 0)
    assert _masks("+919876543211") == {"+919876543211": _mask("1;2")}


def test_second_full_load_counts_added_changed_and_removed(
    tmp_path: Path, base: LoadReport
) -> None:
    path = _write(
        tmp_path,
        "number,preferences\n9876500001,0\n9876500002,1;4\n9876500009,3\n",
        "second.csv",
    )
    report = _load(path, hours=1)
    assert (report.added, report.changed, report.removed, report.entries) == (1, 1, 1, 3)
    assert _current_id() == report.version_id
    assert _masks("+919876500002", "+919876500003", "+919876500009") == {
        "+919876500002": _mask("1;4"),
        "+919876500003": None,
        "+919876500009": _mask("3"),
    }


def test_delta_adds_updates_and_deletes(tmp_path: Path, base: LoadReport) -> None:
    path = _write(
        tmp_path,
        "number,preferences,action\n"
        "9876500009,0,A\n"  # new
        "9876500002,7,A\n"  # changed
        "9876500001,0,A\n"  # the same as before: not counted
        "9876500003,,D\n"  # removed (preferences do not matter for a deletion)
        "9876500008,0,D\n"  # not there: nothing to remove
        "9876500007,2,a\n",  # lower case is fine
        "delta.csv",
    )
    report = _load(path, delta=True, hours=1)
    assert report.kind == "delta"
    assert (report.added, report.changed, report.removed, report.rejected) == (2, 1, 1, 0)
    assert (report.rows_read, report.entries) == (6, 4)
    assert _masks(
        "+919876500001", "+919876500002", "+919876500003", "+919876500007", "+919876500009"
    ) == {
        "+919876500001": FULLY_BLOCKED,
        "+919876500002": _mask("7"),
        "+919876500003": None,
        "+919876500007": _mask("2"),
        "+919876500009": FULLY_BLOCKED,
    }
    # The version before is untouched: a reader that looked just before the swap still works.
    old = registry.RegistryState(
        version_id=base.version_id, as_of=AS_OF, table=f"compliance_registry_v{base.version_id}"
    )
    assert registry_lookup(state=old, number="+919876500003") == _mask("2;5")


def test_delta_without_action_column_adds_and_updates(tmp_path: Path, base: LoadReport) -> None:
    report = _load(_write(tmp_path, "number,preferences\n9876500001,4\n"), delta=True, hours=1)
    assert (report.added, report.changed, report.removed, report.entries) == (0, 1, 0, 3)


def test_delta_with_no_version_in_force_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegistryLoadError, match="needs a registry version in force"):
        _load(_write(tmp_path, "number,preferences,action\n9876500009,0,A\n"), delta=True)
    assert RegistryVersion.objects.count() == 0
    assert _registry_tables() == set()


def test_repeated_number_keeps_the_last_row(tmp_path: Path, base: LoadReport) -> None:
    full = _write(
        tmp_path, "number,preferences\n9876500001,0\n9876500002,1\n+919876500001,3\n", "f.csv"
    )
    report = _load(full, hours=1)
    assert (report.rows_read, report.entries, report.duplicates, report.rejected) == (3, 2, 1, 0)
    assert _masks("+919876500001") == {"+919876500001": _mask("3")}
    delta = _write(
        tmp_path,
        "number,preferences,action\n9876500002,5,A\n9876500002,0,D\n9876500001,0,D\n"
        "9876500001,2,A\n",
        "d.csv",
    )
    report = _load(delta, delta=True, hours=2)
    assert (report.entries, report.duplicates, report.removed, report.changed) == (1, 2, 1, 1)
    assert _masks("+919876500001", "+919876500002") == {
        "+919876500001": _mask("2"),
        "+919876500002": None,
    }


# -- bad rows ------------------------------------------------------------------------------


def test_bad_rows_are_reported_with_line_numbers_and_the_rest_is_loaded(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "number,preferences\n"
        "9876543210,0\n"
        "12345,0\n"  # line 3: too short
        "not a number,1\n"  # line 4
        "\n"  # blank lines are skipped, not rejected
        "+449876543210,0\n"  # line 6: not Indian
        "9876543211,2;3\n"
        "0,0,0,0\n",  # line 8: wrong width and no number
    )
    report = _load(path)
    assert report.rejected == 4
    assert [line for line, _ in report.issues] == [3, 4, 6, 8]
    assert "'12345' is not an Indian number" in report.issues[0][1]
    assert (report.rows_read, report.entries) == (6, 2)
    assert _masks("+919876543211") == {"+919876543211": _mask("2;3")}


def test_unreadable_preferences_on_a_valid_number_load_as_fully_blocked(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "number,preferences,action\n"
        "9876543210,x,A\n"  # line 2
        "9876543211,,A\n"  # line 3: empty
        "9876543212,12,A\n"  # line 4: no category 12
        "9876543213,1,3\n"  # line 5: an unquoted comma list reads as action '3'
        "9876543214,1\n"  # line 6: a column short
        "9876543215,2,A\n",
    )
    report = _load(path)
    assert report.rejected == 5
    assert [line for line, _ in report.issues] == [2, 3, 4, 5, 6]
    assert all("fully blocked" in message for _, message in report.issues)
    assert report.entries == 6
    blocked = [f"+91987654321{i}" for i in range(5)]
    assert _masks(*blocked) == dict.fromkeys(blocked, FULLY_BLOCKED)
    assert _masks("+919876543215") == {"+919876543215": _mask("2")}


def test_only_the_first_hundred_issues_are_kept_but_all_are_counted(tmp_path: Path) -> None:
    path = _write(tmp_path, "number,preferences\n" + "123,0\n" * 250 + "9876543210,0\n")
    report = _load(path)
    assert (report.rejected, len(report.issues), report.entries) == (250, 100, 1)
    assert report.issues[-1][0] == 101


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "header"),
        (b"9876543210,0\n9876543211,1\n", "header"),
        (b"number,prefs\n9876543210,0\n", "header"),
        (b"phone;preferences\n9876543210;0\n", "header"),
        (b"number,preferences\n\xff\xfe9876543210,0\n", "line 2: the file is not UTF-8"),
        (b"num\xe9ro,preferences\n", "line 1: the file is not UTF-8"),
    ],
)
def test_malformed_file_changes_nothing(
    tmp_path: Path, base: LoadReport, text: bytes, message: str
) -> None:
    before = registry_current()
    with pytest.raises(RegistryLoadError, match=message):
        _load(_write(tmp_path, text, "bad.csv"), hours=1)
    assert registry_current() == before
    assert list(RegistryVersion.objects.values_list("id", flat=True)) == [base.version_id]
    assert _registry_tables() == {f"compliance_registry_v{base.version_id}"}


def test_bad_utf8_deep_in_a_file_changes_nothing(
    tmp_path: Path, base: LoadReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_file, "_CHUNK_BYTES", 64)
    rows = "".join(f"98765{i:05d},0\n" for i in range(50))
    path = _write(tmp_path, b"number,preferences\n" + rows.encode() + b"9876543210,\xff\n")
    with pytest.raises(RegistryLoadError, match="line 52: the file is not UTF-8"):
        _load(path, hours=1)
    assert _current_id() == base.version_id
    assert _registry_tables() == {f"compliance_registry_v{base.version_id}"}


# -- atomicity -----------------------------------------------------------------------------


def test_interrupted_load_leaves_the_previous_version_in_force(
    tmp_path: Path, base: LoadReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = registry_file._file_chunks

    def interrupted(fh: IO[bytes]) -> Iterator[tuple[bytes, int]]:
        chunks = real(fh)
        yield next(chunks)
        raise KeyboardInterrupt

    monkeypatch.setattr(registry_file, "_CHUNK_BYTES", 1024)
    monkeypatch.setattr(registry_file, "_file_chunks", interrupted)
    path = write_registry_csv(tmp_path / "big.csv", 5000)
    for delta in (False, True):
        with pytest.raises(KeyboardInterrupt):
            _load(path, delta=delta, hours=1)
        assert _current_id() == base.version_id
        assert _masks("+919876500002") == {"+919876500002": _mask("1;3")}
        assert list(RegistryVersion.objects.values_list("id", flat=True)) == [base.version_id]
        assert _registry_tables() == {f"compliance_registry_v{base.version_id}"}


def test_failure_after_the_table_is_filled_leaves_the_previous_version_in_force(
    tmp_path: Path, base: LoadReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("compliance.registry_load._pg_fill_delta", broken)
    with pytest.raises(RuntimeError):
        _load(_write(tmp_path, "number,preferences\n9876500001,4\n"), delta=True, hours=1)
    assert _current_id() == base.version_id
    assert RegistryVersion.objects.count() == 1


def _copying_into_a_version_table() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE 'COPY compliance_registry_v%%' AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_killed_loader_leaves_the_previous_version_in_force_and_the_next_load_cleans_up(
    tmp_path: Path, base: LoadReport, subprocess_env: dict[str, str]
) -> None:
    big = write_registry_csv(tmp_path / "big.csv", 400_000)
    loader = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "load_registry", str(big), "--force"],
        cwd=REPO, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(
            _copying_into_a_version_table,
            timeout=30,
            interval=0.005,
            what="the loader to be mid-COPY",  # rows streaming in
        )
        loader.send_signal(signal.SIGKILL)
        loader.wait(timeout=10)
    finally:
        loader.kill()
    assert loader.returncode == -signal.SIGKILL
    assert _current_id() == base.version_id
    assert _masks("+919876500001", "+919876500002", "+919876500003") == {
        "+919876500001": FULLY_BLOCKED,
        "+919876500002": _mask("1;3"),
        "+919876500003": _mask("2;5"),
    }
    leftover = RegistryVersion.objects.get(completed_at__isnull=True)

    report = _load(_write(tmp_path, "number,preferences\n9876500001,0\n"), hours=1)
    assert not RegistryVersion.objects.filter(id=leftover.pk).exists()
    assert _current_id() == report.version_id
    assert _registry_tables() == {
        f"compliance_registry_v{base.version_id}",
        f"compliance_registry_v{report.version_id}",
    }


def test_only_the_two_newest_versions_keep_their_tables(tmp_path: Path) -> None:
    reports = [
        _load(_write(tmp_path, f"number,preferences\n987650000{i},0\n", f"{i}.csv"), hours=i)
        for i in range(4)
    ]
    assert _registry_tables() == {f"compliance_registry_v{r.version_id}" for r in reports[-2:]}
    assert RegistryVersion.objects.filter(completed_at__isnull=False).count() == 4


def test_lookups_agree_with_a_generated_file(tmp_path: Path) -> None:
    path = write_registry_csv(tmp_path / "generated.csv", 3000, seed=5)
    expected = {
        registry_number(number): prefs_to_mask(next(csv.reader([prefs]))[0])
        for number, prefs in registry_rows(3000, seed=5)
    }
    report = _load(path)
    assert (report.entries, report.rejected) == (3000, 0)
    state = registry_current()
    assert state is not None
    numbers = [n for n in expected if n is not None] + ["+919999999999"]
    found = registry_lookup_many(state=state, numbers=numbers)
    assert found == expected
    assert all(registry_lookup(state=state, number=n) == expected[n] for n in numbers[:50])


# -- the command ---------------------------------------------------------------------------


def _command(*args: str) -> str:
    out = StringIO()
    call_command("load_registry", *args, "--force", stdout=out)  # see _load
    return out.getvalue()


def test_command_prints_the_counts_and_the_issues(tmp_path: Path, base: LoadReport) -> None:
    path = _write(tmp_path, "number,preferences\n" + "123,0\n" * 102 + "9876500001,3\n")
    out = _command(str(path), "--as-of", "2026-11-24T11:30:00+05:30")
    lines = out.splitlines()
    assert lines[0].startswith("line 2: number '123'")
    assert lines[99].startswith("line 101: ")
    assert lines[100] == "... and 2 more"
    assert "rows read 103, added 0, changed 1, removed 2, rejected 102, entries 1" in out
    version = RegistryVersion.objects.latest("id")
    assert f"registry version {version.pk} (full) in force" in out
    assert version.as_of == AS_OF


def test_command_loads_a_delta_as_of_now(tmp_path: Path, base: LoadReport) -> None:
    out = _command(str(_write(tmp_path, "number,preferences,action\n9876500001,0,D\n")), "--delta")
    assert "removed 1" in out
    version = RegistryVersion.objects.latest("id")
    assert version.kind == "delta"
    assert abs((version.as_of - dt.datetime.now(dt.UTC)).total_seconds()) < 60


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "no such file"),
        (["ok.csv", "--as-of", "yesterday"], "not an ISO 8601 time"),
        (["ok.csv", "--as-of", "2026-11-24T10:00:00"], "needs a UTC offset"),
        (["bad.csv"], "header must name"),
        (["ok.csv", "--delta"], "needs a registry version in force"),
    ],
)
def test_command_refuses_bad_input_with_exit_code_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    _write(tmp_path, "number,preferences\n9876500001,0\n", "ok.csv")
    _write(tmp_path, "phone,prefs\n9876500001,0\n", "bad.csv")
    with pytest.raises(CommandError, match=message) as raised:
        _command(*[str(tmp_path / a) if a.endswith(".csv") else a for a in args])
    assert raised.value.returncode == 2
    assert RegistryVersion.objects.count() == 0


@pytest.mark.slow
def test_command_exit_codes_from_the_shell(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "load_registry", *args, "--force"],
            cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    missing = run(str(tmp_path / "missing.csv"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    ok = run(str(_write(tmp_path, "number,preferences\n9876500001,0\n")))
    assert ok.returncode == 0, ok.stderr
    assert "rows read 1, added 1, changed 0, removed 0, rejected 0, entries 1" in ok.stdout
