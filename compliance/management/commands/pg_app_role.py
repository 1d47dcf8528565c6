"""python manage.py pg_app_role ROLE [--apply]: the least-privilege grants for the application's
PostgreSQL role (see compliance/pg_roles.py); prints them, or runs them with --apply (as the
owner of the tables, i.e. the role that ran migrate)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from compliance.pg_roles import app_role_apply, app_role_sql


class Command(BaseCommand):
    help = "Print (or --apply) the grants of a least-privilege application role on PostgreSQL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role")
        parser.add_argument("--apply", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("PostgreSQL only (DATABASE_URL is not postgres://)", returncode=2)
        try:
            if opts["apply"]:
                statements = app_role_apply(role=opts["role"])
            else:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT current_user, current_database()")
                    owner, database = cursor.fetchone()
                statements = app_role_sql(role=opts["role"], owner=owner, database=database)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        for sql in statements:
            self.stdout.write(f"{sql};")
