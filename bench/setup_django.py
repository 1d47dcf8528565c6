"""Django set-up shared by the benchmarks: a PostgreSQL database of their own, migrated."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dialer_bench"


def setup_django(*, database: str = "dialer_bench") -> str:
    """Point Django at the bench database (BENCH_DATABASE_URL or the default), create and migrate
    it. Returns the URL. Benchmarks never touch the development or test databases."""
    sys.path.insert(0, str(ROOT))
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL.rsplit("/", 1)[0] + "/" + database)
    if not url.startswith("postgres"):
        raise SystemExit("benchmarks need PostgreSQL: set BENCH_DATABASE_URL=postgres://...")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dialer.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    _create_database(url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url


def _create_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "")
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
