from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection


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
