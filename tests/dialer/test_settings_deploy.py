"""Deploy-ready settings: `check --deploy` passes with DEBUG=0, secrets are refused when weak or
shared, the REST hang-up credentials have their own secret, PostgreSQL statements time out."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection

from telephony.bridge.rest import stream_credentials
from tests.helpers.paths import REPO

# Every variable these settings read, cleared so the outer environment cannot leak into a probe.
_CLEARED = (
    "DEBUG", "SECRET_KEY", "AUDIT_KEY", "ENGINE_REST_SECRET", "ALLOWED_HOSTS", "DATABASE_URL",
    "TEST_DATABASE_NAME", "REDIS_URL", "CELERY_BROKER_URL", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
    "DATA_RETENTION_DAYS", "AUDIT_ANCHOR_FILE", "AUDIT_ANCHOR_INTERVAL_S", "DB_CONNECT_TIMEOUT_S",
    "DB_STATEMENT_TIMEOUT_MS", "ENGINE_REST_HOST", "ENGINE_SIP_HOST", "AXES_FAILURE_LIMIT",
    "AXES_COOLOFF_TIME", "OPERATOR_TZ",
)  # fmt: skip


def _key() -> str:
    return secrets.token_urlsafe(40)


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _CLEARED and not (k.endswith("_FILE") and k[:-5] in _CLEARED)
    }
    env.update(DJANGO_SETTINGS_MODULE="dialer.settings", DIALER_VAR_DIR=str(tmp_path / "var"))
    env.update(values)
    return env


def _production(tmp_path: Path, **values: str) -> dict[str, str]:
    base = {
        "DEBUG": "0",
        "SECRET_KEY": _key(),
        "AUDIT_KEY": _key(),
        "ENGINE_REST_SECRET": _key(),
        "ALLOWED_HOSTS": "dialer.example.com",
    }
    return _env(tmp_path, **(base | values))


_PROBE = """
import json, dialer.settings as s
print(json.dumps({name: getattr(s, name, None) for name in %r}, default=str))
"""


def _settings(env: dict[str, str], *names: str) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE % (names,)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    values: dict[str, Any] = json.loads(run.stdout)
    return values


def _refusal(env: dict[str, str]) -> str:
    run = subprocess.run(
        [sys.executable, "-c", "import dialer.settings"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0, "settings loaded but should have been refused"
    return run.stderr.strip().splitlines()[-1]


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- check --deploy ----------------------------------------------------------------------------


@pytest.mark.slow
def test_check_deploy_passes_with_debug_off_and_every_key_set(tmp_path: Path) -> None:
    run = _manage(_production(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no issues" in run.stdout


@pytest.mark.slow
def test_debug_off_without_an_audit_key_stops_with_a_clear_error(tmp_path: Path) -> None:
    env = _production(tmp_path)
    del env["AUDIT_KEY"]
    run = _manage(env, "check", "--deploy")
    assert run.returncode != 0
    assert "AUDIT_KEY (or AUDIT_KEY_FILE) must be set when DEBUG is off" in run.stderr


# --- secrets -----------------------------------------------------------------------------------

_STRONG = "k" * 40


@pytest.mark.slow
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off"),
        ({"SECRET_KEY": "dev-only-insecure-key"}, "SECRET_KEY is the development default"),
        ({"SECRET_KEY": "s" * 31}, "SECRET_KEY must be at least 32 characters"),
        ({"AUDIT_KEY": ""}, "AUDIT_KEY (or AUDIT_KEY_FILE) must be set when DEBUG is off"),
        ({"AUDIT_KEY": "dev-only-audit-key"}, "AUDIT_KEY is the development default"),
        ({"AUDIT_KEY": "a" * 31}, "AUDIT_KEY must be at least 32 characters"),
        ({"SECRET_KEY": _STRONG, "AUDIT_KEY": _STRONG}, "AUDIT_KEY must differ from SECRET_KEY"),
        (
            {"ENGINE_REST_SECRET": ""},
            "ENGINE_REST_SECRET (or ENGINE_REST_SECRET_FILE) must be set when DEBUG is off",
        ),
        ({"ENGINE_REST_SECRET": "dev-only-rest-secret"}, "ENGINE_REST_SECRET is the development"),
        ({"ENGINE_REST_SECRET": "r" * 31}, "ENGINE_REST_SECRET must be at least 32 characters"),
        (
            {"SECRET_KEY": _STRONG, "ENGINE_REST_SECRET": _STRONG},
            "ENGINE_REST_SECRET must differ from SECRET_KEY",
        ),
        (
            {"AUDIT_KEY": _STRONG, "ENGINE_REST_SECRET": _STRONG},
            "ENGINE_REST_SECRET must differ from AUDIT_KEY",
        ),
    ],
    ids=[
        "no-secret-key",
        "dev-secret-key",
        "short-secret-key",
        "no-audit-key",
        "dev-audit-key",
        "short-audit-key",
        "audit-key-is-secret-key",
        "no-rest-secret",
        "dev-rest-secret",
        "short-rest-secret",
        "rest-secret-is-secret-key",
        "rest-secret-is-audit-key",
    ],
)
def test_weak_or_shared_secrets_are_refused_when_debug_is_off(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    last_line = _refusal(_production(tmp_path, **values))
    assert last_line.startswith("dialer.env.SettingError: ")
    assert message in last_line


@pytest.mark.slow
def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    audit, rest = _key(), _key()
    (tmp_path / "audit").write_text(audit + "\n")
    (tmp_path / "rest").write_text(rest + "\n")
    env = _production(
        tmp_path,
        AUDIT_KEY_FILE=str(tmp_path / "audit"),
        ENGINE_REST_SECRET_FILE=str(tmp_path / "rest"),
    )
    del env["AUDIT_KEY"], env["ENGINE_REST_SECRET"]
    assert _settings(env, "AUDIT_KEY", "ENGINE_REST_SECRET") == {
        "AUDIT_KEY": audit,
        "ENGINE_REST_SECRET": rest,
    }


@pytest.mark.slow
def test_debug_on_has_development_defaults_and_plain_http(tmp_path: Path) -> None:
    values = _settings(
        _env(tmp_path, ENGINE_SIP_HOST="10.0.0.12"),
        "DEBUG", "SECRET_KEY", "AUDIT_KEY", "ENGINE_REST_SECRET", "DATA_RETENTION_DAYS",
        "AUDIT_ANCHOR_FILE", "AUDIT_ANCHOR_INTERVAL_S", "ENGINE_REST_HOST", "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
    )  # fmt: skip
    assert values == {
        "DEBUG": True,
        "SECRET_KEY": "dev-only-insecure-key",
        "AUDIT_KEY": "dev-only-audit-key",
        "ENGINE_REST_SECRET": "dev-only-rest-secret",
        "DATA_RETENTION_DAYS": 0,
        "AUDIT_ANCHOR_FILE": str(tmp_path / "var" / "audit-anchors.log"),
        "AUDIT_ANCHOR_INTERVAL_S": 3600,
        # The REST endpoint binds loopback even when SIP faces the carrier.
        "ENGINE_REST_HOST": "127.0.0.1",
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_PROXY_SSL_HEADER": None,
    }


@pytest.mark.slow
def test_debug_off_serves_https_only_and_each_setting_can_be_turned_off(tmp_path: Path) -> None:
    names = (
        "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_PROXY_SSL_HEADER",
    )  # fmt: skip
    assert _settings(_production(tmp_path), *names) == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    off = _production(
        tmp_path,
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_PROXY_SSL_HEADER="0",
    )
    assert _settings(off, *names) == {
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"DATA_RETENTION_DAYS": "-1"}, "DATA_RETENTION_DAYS=-1 must be at least 0"),
        ({"AUDIT_ANCHOR_INTERVAL_S": "59"}, "AUDIT_ANCHOR_INTERVAL_S=59 must be at least 60"),
        ({"DB_STATEMENT_TIMEOUT_MS": "soon"}, "DB_STATEMENT_TIMEOUT_MS='soon' is not an integer"),
        ({"DB_CONNECT_TIMEOUT_S": "0"}, "DB_CONNECT_TIMEOUT_S=0 must be at least 1"),
        ({"OPERATOR_TZ": "Mars/Olympus"}, "OPERATOR_TZ='Mars/Olympus': not a time zone"),
    ],
    ids=[
        "negative-retention",
        "short-anchor-interval",
        "timeout-not-int",
        "zero-connect",
        "operator-zone",
    ],
)
def test_settings_are_checked(tmp_path: Path, values: dict[str, str], message: str) -> None:
    assert message in _refusal(_env(tmp_path, **values))


@pytest.mark.slow
def test_numeric_settings_are_read(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        DATA_RETENTION_DAYS="400",
        AUDIT_ANCHOR_INTERVAL_S="60",
        AUDIT_ANCHOR_FILE=str(tmp_path / "anchors.log"),
    )
    assert _settings(
        env, "DATA_RETENTION_DAYS", "AUDIT_ANCHOR_INTERVAL_S", "AUDIT_ANCHOR_FILE"
    ) == {
        "DATA_RETENTION_DAYS": 400,
        "AUDIT_ANCHOR_INTERVAL_S": 60,
        "AUDIT_ANCHOR_FILE": str(tmp_path / "anchors.log"),
    }


def test_passwords_need_twelve_characters_and_the_standard_checks() -> None:
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Xk3#pq9!zT")
    with pytest.raises(ValidationError, match="too common"):
        validate_password("password1234")
    with pytest.raises(ValidationError, match="entirely numeric"):
        validate_password("402938475610293")
    validate_password("long enough and unusual 7q")


# --- PostgreSQL timeouts -----------------------------------------------------------------------


@pytest.mark.slow
def test_postgres_connections_get_connect_and_statement_timeouts(tmp_path: Path) -> None:
    url = "postgres://dialer@db.internal:5432/dialer"
    defaults = _settings(_env(tmp_path, DATABASE_URL=url), "DATABASES")["DATABASES"]
    assert defaults["default"]["OPTIONS"] == {
        "connect_timeout": 5,
        "options": "-c statement_timeout=30000",
    }
    tuned = _env(tmp_path, DATABASE_URL=url, DB_CONNECT_TIMEOUT_S="2", DB_STATEMENT_TIMEOUT_MS="0")
    assert _settings(tuned, "DATABASES")["DATABASES"]["default"]["OPTIONS"] == {
        "connect_timeout": 2
    }


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")


@pytest.mark.django_db
def test_a_live_connection_has_the_statement_timeout() -> None:
    _postgres_only()
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        row = cursor.fetchone()
    assert row is not None and row[0] == "30s"


@pytest.fixture
def _tight_statement_timeout() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '300ms'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout")
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'compliance_registry_v%%'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"DROP TABLE {table}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_registry_load_longer_than_the_statement_timeout_completes(
    tmp_path: Path, _tight_statement_timeout: None
) -> None:
    # The COPY of a national registry runs for minutes as one statement; the loader lifts the
    # timeout for its own transaction. 1M rows take well over the 300 ms set here.
    _postgres_only()
    from bench.registry_data import write_registry_csv
    from compliance.registry_load import registry_load

    path = write_registry_csv(tmp_path / "registry.csv", 1_000_000)
    report = registry_load(path=path, as_of=dt.datetime.now(dt.UTC), delta=False)
    assert report.added > 900_000
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        row = cursor.fetchone()
    assert row is not None and row[0] == "300ms"  # only the load's own transaction was exempt


# --- the REST hang-up endpoint's credentials ---------------------------------------------------


def _rest_status(base_url: str, call_sid: str, *, secret: str) -> int:
    creds = stream_credentials(call_sid, secret=secret.encode())
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    auth = base64.b64encode(f"{creds.account_sid}:{creds.auth_token}".encode()).decode()
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(
            "GET",
            f"/2010-04-01/Accounts/{creds.account_sid}/Calls/{call_sid}.json",
            headers={"Authorization": f"Basic {auth}"},
        )
        return conn.getresponse().status
    finally:
        conn.close()


def test_rest_credentials_derive_from_engine_rest_secret_not_secret_key(
    settings: Any,
) -> None:
    from telephony.pool.host import _bridge_factory

    rest_secret = "rest-" + _key()
    settings.ENGINE_REST_SECRET = rest_secret
    settings.ENGINE_REST_HOST = "127.0.0.1"
    settings.ENGINE_REST_PORT = 0
    for secret_key in ("first-" + _key(), "second-" + _key()):
        settings.SECRET_KEY = secret_key
        runner: Any = _bridge_factory(django_settings.ENGINE_BASE_PORT)()
        try:
            base = runner.rest_base_url
            assert base.startswith("http://127.0.0.1:")
            # Authenticated (the call is simply not live here) with the REST secret's tokens,
            # whatever SECRET_KEY is; refused with tokens derived from SECRET_KEY.
            assert _rest_status(base, "CA-deploy-1", secret=rest_secret) == 404
            assert _rest_status(base, "CA-deploy-1", secret=secret_key) == 401
        finally:
            runner.shutdown()


@pytest.mark.slow
def test_the_rest_endpoint_refuses_a_public_address_with_the_development_key(
    tmp_path: Path,
) -> None:
    message = _refusal(_env(tmp_path, DEBUG="1", ENGINE_REST_HOST="0.0.0.0"))
    assert "ENGINE_REST_HOST='0.0.0.0'" in message and "ENGINE_REST_SECRET" in message
    # Loopback keeps working with the development key, and any address with a key of its own.
    assert _settings(_env(tmp_path, DEBUG="1"), "ENGINE_REST_HOST") == {
        "ENGINE_REST_HOST": "127.0.0.1"
    }
    chosen = _env(tmp_path, DEBUG="1", ENGINE_REST_HOST="10.0.0.5", ENGINE_REST_SECRET=_key())
    assert _settings(chosen, "ENGINE_REST_HOST") == {"ENGINE_REST_HOST": "10.0.0.5"}
