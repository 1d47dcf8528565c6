"""check_number, check_campaign_number, import_consents and suppress, as an operator runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.models import Consent, Suppression
from compliance.registry import registry_replace
from tests.helpers.factories import make_caller_id, make_campaign, make_sender
from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow

NOON_UTC = "2026-11-24T06:30:00Z"  # 12:00 IST


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check_json(env: dict[str, str], *args: str, command: str = "check_number") -> dict:
    done = manage(env, command, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def world(subprocess_env: dict[str, str]) -> dict[str, str]:
    make_sender(dlt_entity_id="1101BANK", sector="bfsi")
    make_sender(dlt_entity_id="1101SHOP", sector="other")
    registry_replace(
        rows=[("9876500000", "0"), ("9876500001", "1;2")],
        as_of=dt.datetime(2026, 11, 24, 5, 0, tzinfo=dt.UTC),
    )
    return subprocess_env


def test_check_number_prints_the_decision(world: dict[str, str]) -> None:
    result = check_json(
        world,
        "09876500000",
        "--purpose",
        "promotional",
        "--category",
        "3",
        "--sender",
        "1101SHOP",
        "--cli",
        "1401234567",
        "--at",
        NOON_UTC,
    )
    assert result == {
        "number": "+919876500000",
        "allowed": False,
        "reasons": ["dnd_fully_blocked"],
        "purpose": "promotional",
        "local_time": "2026-11-24T12:00:00+05:30",
        "registry_version": result["registry_version"],
        "consent": None,
    }
    assert isinstance(result["registry_version"], int)


def test_check_number_reports_consent_and_every_reason(
    world: dict[str, str], tmp_path: Path
) -> None:
    consents = tmp_path / "consents.csv"
    consents.write_text(
        "number,sender,scope,given_at,expires_at,revoked_at,reference\n"
        "9876500000,1101SHOP,promotional,2026-11-01T00:00:00+05:30,,,DLT-C-1\n"
    )
    assert manage(world, "import_consents", str(consents)).returncode == 0
    ok = check_json(
        world,
        "+919876500000",
        "--purpose",
        "promotional",
        "--category",
        "3",
        "--sender",
        "1101SHOP",
        "--cli",
        "+911401234567",
        "--at",
        NOON_UTC,
    )
    assert ok["allowed"] and ok["consent"] == "DLT-C-1"
    late = check_json(
        world,
        "+919876500001",
        "--purpose",
        "promotional",
        "--category",
        "3",
        "--cli",
        "9812345678",
        "--at",
        "2026-11-24T16:00:00Z",
    )
    assert late["reasons"] == [
        "dnd_category_blocked",
        "outside_calling_hours",
        "cli_series_mismatch",
    ]


def test_check_campaign_number_checks_cli_ownership(world: dict[str, str]) -> None:
    # Owned means the sender's caller IDs in use, as the dialer's last-moment check holds it.
    sender = make_sender()
    campaign = make_campaign(
        sender=sender,
        purpose="promotional",
        category=3,
        caller_ids=[make_caller_id(number="+911401111111", sender=sender)],
    )
    result = check_json(
        world,
        str(campaign.pk),
        "+919812345678",
        "--cli",
        "+911402222222",
        "--at",
        NOON_UTC,
        command="check_campaign_number",
    )
    assert result["reasons"] == ["cli_not_owned"] and result["purpose"] == "promotional"
    owned = check_json(
        world,
        str(campaign.pk),
        "+919812345678",
        "--cli",
        "+911401111111",
        "--at",
        NOON_UTC,
        command="check_campaign_number",
    )
    assert owned["allowed"], owned


def test_check_campaign_number_unknown_campaign_exits_2(world: dict[str, str]) -> None:
    done = manage(world, "check_campaign_number", "999999", "9876543210")
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9876543210", "--purpose", "promotional", "--at", "2026-11-24T12:00:00"], "UTC offset"),
        (["9876543210", "--purpose", "promotional", "--at", "tomorrow"], "ISO 8601"),
        (["9876543210", "--purpose", "spam"], "invalid choice"),
        (["9876543210", "--purpose", "promotional", "--category", "9"], "invalid choice"),
        (["9876543210", "--purpose", "promotional", "--sender", "NOPE"], "not known"),
        (["9876543210"], "--purpose"),
    ],
)
def test_check_number_bad_arguments_exit_2(
    world: dict[str, str], args: list[str], message: str
) -> None:
    done = manage(world, "check_number", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_invalid_number_is_a_decision(world: dict[str, str]) -> None:
    result = check_json(world, "12345", "--purpose", "transactional", "--at", NOON_UTC)
    assert result["reasons"] == ["invalid_number"] and not result["allowed"]


def test_revocation_in_a_consent_file_applies_at_the_next_check(
    world: dict[str, str], tmp_path: Path
) -> None:
    header = "number,sender,scope,given_at,expires_at,revoked_at,reference\n"
    give = tmp_path / "give.csv"
    give.write_text(header + "9876500000,1101SHOP,promotional,2026-11-01T00:00:00Z,,,R-1\n")
    revoke = tmp_path / "revoke.csv"
    revoke.write_text(
        header + "9876500000,1101SHOP,promotional,2026-11-01T00:00:00Z,,2026-11-24T06:00:00Z,R-1\n"
    )
    args = (
        "+919876500000",
        "--purpose",
        "promotional",
        "--category",
        "3",
        "--sender",
        "1101SHOP",
        "--cli",
        "1401234567",
        "--at",
        NOON_UTC,
    )
    manage(world, "import_consents", str(give))
    assert check_json(world, *args)["allowed"]
    done = manage(world, "import_consents", str(revoke))
    assert done.returncode == 0 and "1 updated" in done.stdout
    assert check_json(world, *args)["reasons"] == ["dnd_fully_blocked"]
    assert Consent.objects.count() == 1


def test_a_bad_consent_file_changes_nothing(world: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "number,sender,scope,given_at,expires_at,revoked_at,reference\n"
        "9876500000,1101SHOP,promotional,2026-11-01T00:00:00Z,,,OK-1\n"
        "12,1101SHOP,promotional,2026-11-01T00:00:00Z,,,BAD-1\n"
        "9876500001,NOBODY,promotional,2026-11-01T00:00:00Z,,,BAD-2\n"
        "9876500001,1101SHOP,promotional,2026-11-01,,,BAD-3\n"
    )
    done = manage(world, "import_consents", str(bad))
    assert done.returncode == 1
    assert "line 3:" in done.stderr and "line 4:" in done.stderr and "line 5:" in done.stderr
    assert "line 2:" not in done.stderr
    assert Consent.objects.count() == 0


def test_suppress_a_number_then_a_file(world: dict[str, str], tmp_path: Path) -> None:
    done = manage(world, "suppress", "09876543210", "--sender", "1101SHOP", "--reason", "asked")
    assert done.returncode == 0, done.stderr
    svc = (
        "+919876543210",
        "--purpose",
        "service_implicit",
        "--sender",
        "1101SHOP",
        "--cli",
        "1401234567",
        "--at",
        NOON_UTC,
    )
    assert check_json(world, *svc)["reasons"] == ["suppressed"]
    listing = tmp_path / "dnc.csv"
    listing.write_text("number,reason\n9876543211,complaint\n+919876543212,\n")
    done = manage(world, "suppress", "--file", str(listing))
    assert done.returncode == 0 and "2 created" in done.stdout
    assert Suppression.objects.filter(sender__isnull=True).count() == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("number\n9876543213\nnot-a-number\n")
    done = manage(world, "suppress", "--file", str(bad))
    assert done.returncode == 1 and "line 3:" in done.stderr
    assert not Suppression.objects.filter(number="+919876543213").exists()
    assert manage(world, "suppress").returncode == 2


def test_the_embedded_sqlite_default_runs_the_same_checks(tmp_path: Path) -> None:
    """The demo's database: registry load, consent, suppression and check_number on SQLite."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="dialer.settings",
        DIALER_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    )
    assert manage(env, "migrate", "-v0").returncode == 0
    registry = tmp_path / "ncpr.csv"
    registry.write_text("number,preferences\n9876500000,0\n9876500001,1;2\nbad,0\n")
    loaded = manage(
        env, "load_registry", str(registry), "--as-of", "2026-11-24T05:00:00Z", "--force"
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "line 4" in loaded.stdout + loaded.stderr
    assert manage(env, "suppress", "9876500002").returncode == 0
    listing = tmp_path / "dnc.csv"
    listing.write_text("number,reason\n9876500004,asked\n9876500002,asked\n")
    done = manage(env, "suppress", "--file", str(listing))
    assert done.returncode == 0 and "1 created, 0 updated, 1 unchanged" in done.stdout, done.stderr
    assert manage(env, "verify_audit").returncode == 0
    common = (
        "--purpose",
        "promotional",
        "--category",
        "3",
        "--cli",
        "1401234567",
        "--at",
        NOON_UTC,
    )
    for number, reasons in (
        ("9876500000", ["dnd_fully_blocked"]),
        ("9876500001", ["dnd_category_blocked"]),
        ("9876500002", ["suppressed"]),
        ("9876500003", []),
    ):
        assert check_json(env, number, *common)["reasons"] == reasons


def test_a_nul_byte_in_a_consent_file_is_a_bad_line_not_a_traceback(
    world: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "nul.csv"
    bad.write_bytes(
        b"number,sender,scope,given_at,expires_at,revoked_at,reference\n"
        b"9876500000,1101SHOP,promotional,2026-11-01T00:00:00Z,,,OK-1\n"
        b"9876500001,1101SHOP,promotional,2026-11-01T00:00:00Z,,,BAD\x00-1\n"
    )
    done = manage(world, "import_consents", str(bad))
    assert done.returncode == 1, done.stderr
    assert "line 3: contains a NUL byte" in done.stderr and "Traceback" not in done.stderr
    assert Consent.objects.count() == 0


def test_a_suppression_file_lists_its_duplicate_lines(
    world: dict[str, str], tmp_path: Path
) -> None:
    listing = tmp_path / "dnc.csv"
    listing.write_text("number,reason\n9876543211,asked\n9876543211,asked\n09876543211,asked\n")
    done = manage(world, "suppress", "--file", str(listing))
    assert done.returncode == 0, done.stderr
    assert "line 3: the same as line 2, counted once" in done.stdout
    assert "line 4: the same as line 2, counted once" in done.stdout
    assert "1 created, 0 updated, 0 unchanged, 2 duplicate row(s) counted once" in done.stdout
    assert Suppression.objects.count() == 1
