"""A registry load cannot remove protection by accident: a file cut short, one that shrinks the
registry, one full of bad rows, or a delta deleting much of it is refused unless forced, and a
forced load is audited. Unreadable rows are reported with their line numbers, never a traceback."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from compliance.models import AuditEntry
from compliance.registry import FULLY_BLOCKED, registry_current
from compliance.registry_file import RegistryLoadError
from compliance.registry_load import registry_load

pytestmark = pytest.mark.django_db

AS_OF = dt.datetime(2026, 5, 4, 0, 30, tzinfo=dt.UTC)


def _rows(n: int, *, start: int = 0) -> str:
    return "".join(f"98{i:08d},0\n" for i in range(start, start + n))


def _file(tmp_path: Path, text: str | bytes, name: str = "ncpr.csv") -> Path:
    path = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    return path


def _load(path: Path, **kwargs: object) -> object:
    return registry_load(path=path, as_of=AS_OF, actor="cli:test", **kwargs)  # type: ignore[arg-type]


def _prefs(e164: str) -> int | None:
    state = registry_current()
    assert state is not None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT prefs FROM {state.table} WHERE number = %s", [int(e164[1:])])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@pytest.fixture
def in_force(tmp_path: Path) -> int:
    _load(_file(tmp_path, "number,preferences\n" + _rows(1000), "base.csv"), delta=False)
    state = registry_current()
    assert state is not None
    return state.version_id


def test_a_file_cut_short_is_refused_and_the_version_in_force_stays(
    tmp_path: Path, in_force: int
) -> None:
    whole = ("number,preferences\n" + _rows(1000)).encode()
    cut = _file(tmp_path, whole[: len(whole) // 3 + 5])  # `head -c`: ends mid-row

    with pytest.raises(RegistryLoadError) as refused:
        _load(cut, delta=False)

    message = str(refused.value)
    assert "does not end with a newline" in message
    assert "against 1000 in force" in message
    state = registry_current()
    assert state is not None and state.version_id == in_force


def test_a_forced_load_goes_through_and_says_so_in_the_audit_log(
    tmp_path: Path, in_force: int
) -> None:
    smaller = _file(tmp_path, "number,preferences\n" + _rows(500))

    _load(smaller, delta=False, force=True)

    state = registry_current()
    assert state is not None and state.version_id != in_force
    entry = AuditEntry.objects.filter(kind="registry_loaded").order_by("-id").first()
    assert entry is not None and entry.actor == "cli:test"
    assert entry.detail["forced_past"] == ["500 entries against 1000 in force (a drop of over 10%)"]


def test_a_small_drop_and_a_grown_file_load_without_force(tmp_path: Path, in_force: int) -> None:
    _load(_file(tmp_path, "number,preferences\n" + _rows(950)), delta=False)  # -5%
    _load(_file(tmp_path, "number,preferences\n" + _rows(2000), "grown.csv"), delta=False)
    entry = AuditEntry.objects.filter(kind="registry_loaded").order_by("-id").first()
    assert entry is not None and entry.detail["forced_past"] == []


def test_a_file_full_of_bad_rows_is_refused(tmp_path: Path) -> None:
    bad = "".join(f"not-a-number-{i},0\n" for i in range(100))
    with pytest.raises(RegistryLoadError, match="100 of 200 rows rejected"):
        _load(_file(tmp_path, "number,preferences\n" + _rows(100) + bad), delta=False)
    assert registry_current() is None


@pytest.mark.django_db(transaction=True)  # a delta load commits in steps of its own
def test_a_delta_deleting_much_of_the_registry_is_refused(tmp_path: Path, in_force: int) -> None:
    deletions = "".join(f"98{i:08d},0,D\n" for i in range(200))
    with pytest.raises(RegistryLoadError, match="the delta removes 200 of 1000 entries"):
        _load(_file(tmp_path, "number,preferences,action\n" + deletions), delta=True)
    small = "".join(f"98{i:08d},0,D\n" for i in range(50))
    _load(_file(tmp_path, "number,preferences,action\n" + small, "small.csv"), delta=True)


def test_a_cr_only_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    text = "number,preferences\r9876543210,0\r9876543211,0\r"
    with pytest.raises(RegistryLoadError, match="line 1: the header cannot be read"):
        _load(_file(tmp_path, text), delta=False)
    assert registry_current() is None


def test_a_field_over_128_kib_is_a_rejected_row_with_its_line(tmp_path: Path) -> None:
    huge = '9876543210,"' + "1" * 200_000 + '"\n'
    report = _load(
        _file(tmp_path, "number,preferences\n" + _rows(100) + huge + _rows(100, start=100)),
        delta=False,
    )
    assert report.rejected == 1  # type: ignore[attr-defined]
    (line, message) = report.issues[0]  # type: ignore[attr-defined]
    assert line == 102 and "unreadable row" in message and "field larger" in message
    assert "loaded as fully blocked" in message and len(message) < 200
    assert _prefs("+919876543210") == FULLY_BLOCKED  # its number is plain to see: fail closed


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ('9876543210,"1;3\n', "quote is never closed"),
        ('9876543210,"1;3"x\n', "CSV"),
        ("9876543210,1;3\x00\n", "NUL"),
        ("9876543210," + "1;" * 2000 + "3\n", "longer than"),
    ],
)
def test_a_row_the_strict_reader_refuses_is_rejected_and_its_number_fully_blocked(
    tmp_path: Path, row: str, why: str
) -> None:
    text = "number,preferences\n" + _rows(100) + row + _rows(100, start=100)

    report = _load(_file(tmp_path, text), delta=False)

    assert report.rejected == 1  # type: ignore[attr-defined]
    (line, message) = report.issues[0]  # type: ignore[attr-defined]
    assert line == 102 and why in message and "fully blocked" in message
    assert len(message) < 200 and "by line 2" not in message  # no echo, no one-row line
    assert _prefs("+919876543210") == FULLY_BLOCKED


def test_the_command_refuses_and_forces(tmp_path: Path, in_force: int) -> None:
    cut = _file(tmp_path, "number,preferences\n" + _rows(10) + "98000000")
    with pytest.raises(CommandError, match="refused, nothing changed") as refused:
        call_command("load_registry", str(cut), stdout=io.StringIO())
    assert refused.value.returncode == 2
    out = io.StringIO()
    call_command("load_registry", str(cut), "--force", "--by", "ravi", stdout=out)
    entry = AuditEntry.objects.filter(kind="registry_loaded").order_by("-id").first()
    assert entry is not None and entry.actor == "cli:ravi" and len(entry.detail["forced_past"]) == 3
