from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.db import connection
from django.test import override_settings

if TYPE_CHECKING:
    from telephony.bridge.runner import BridgeRunner
    from tests.helpers.bridge import FakeAgent, LoopThread


@pytest.fixture
def subprocess_env(transactional_db: None, tmp_path: Path) -> dict[str, str]:
    """Environment for a manage.py / celery subprocess that must see this test's database."""
    db = connection.settings_dict
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "dialer.settings"
    env["DIALER_VAR_DIR"] = str(tmp_path / "var")
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
    return env


# The audit log refuses UPDATE, DELETE and TRUNCATE (compliance migration 0003), yet Django empties
# every table after each transactional test. The flush runs as one transaction: switching audit
# maintenance on inside it lets that flush through, and nothing else ever sets the switch.
_AUDIT_MAINTENANCE: dict[str, tuple[list[str], list[str]]] = {
    "postgresql": (["SELECT set_config('dialer.audit_maintenance', 'on', true)"], []),
    "sqlite": (
        ["UPDATE compliance_audit_maintenance SET active = 1"],
        ["UPDATE compliance_audit_maintenance SET active = 0"],
    ),
}


@pytest.fixture(autouse=True, scope="session")
def _audit_log_flushable() -> Iterator[None]:
    ops_class = type(connection.ops)
    original = ops_class.sql_flush
    before, after = _AUDIT_MAINTENANCE.get(connection.vendor, ([], []))

    def sql_flush(
        self: Any,
        style: Any,
        tables: Sequence[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        sql = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if not sql or "compliance_auditentry" not in tables:
            return sql
        return [*before, *sql, *after]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ops_class, "sql_flush", sql_flush)
        yield


# Users made by tests (admin_client, make_user) need no costly hash: each one would take a good
# part of a second with the production hasher.
@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def stack_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """Environment for a whole stack (worker, beat, engines) on the test database and Redis."""
    env = dict(subprocess_env)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    env.pop("CELERY_BROKER_URL", None)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # no task left over from another run
    env.update(
        ENGINE_HEARTBEAT_STALE_S="3",
        DIAL_REQUEUE_AFTER_S="3",
        DIAL_CLAIM_STALE_S="5",
        DIALER_TICK_SECONDS="0.5",
        PYTHONUNBUFFERED="1",
    )
    return env


# The bridge fixtures import the bridge when used, not here: a broken bridge fails its own tests
# and leaves the rest of the suite to run.


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    from tests.helpers.bridge import LoopThread

    lt = LoopThread()
    yield lt
    lt.stop()


@pytest.fixture
def agent(loop_thread: LoopThread) -> Iterator[FakeAgent]:
    from tests.helpers.bridge import FakeAgent

    fake = FakeAgent(loop_thread)
    yield fake
    fake.stop()


@pytest.fixture
def runner() -> Iterator[BridgeRunner]:
    from telephony.bridge.runner import BridgeRunner

    bridge = BridgeRunner(open_timeout=2.0)
    yield bridge
    bridge.shutdown(timeout=3.0)
