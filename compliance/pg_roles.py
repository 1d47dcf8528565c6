"""A least-privilege PostgreSQL role for the application (web, workers, engines).

The migration role owns every table, runs `migrate` and `load_registry`... and is the only one
that could disable the audit table's triggers (ALTER TABLE needs ownership) or use the audit
maintenance switch (the trigger checks membership of the owner). The application role gets
ordinary read/write on every other table, and on the audit table only SELECT, INSERT and
UPDATE of the `number` column (an erasure blanks it; the trigger refuses any other change).
"""

from __future__ import annotations

import re

from django.db import connection

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
AUDIT_TABLE = "compliance_auditentry"


def app_role_sql(*, role: str, owner: str, database: str) -> list[str]:
    """The statements, to be run by the owner (migration) role after `migrate`."""
    for name in (role, owner, database):
        if not _ROLE.match(name):
            raise ValueError(f"{name!r}: use a plain lower-case identifier")
    if role == owner:
        raise ValueError("the application role must not be the owner of the tables")
    return [
        f"GRANT CONNECT ON DATABASE {database} TO {role}",
        # CREATE: registry loads create one table per version (the loader then owns it).
        f"GRANT USAGE, CREATE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"REVOKE ALL ON {AUDIT_TABLE} FROM {role}",
        f"GRANT SELECT, INSERT ON {AUDIT_TABLE} TO {role}",
        f"GRANT UPDATE (number) ON {AUDIT_TABLE} TO {role}",
        # Tables a later migration creates: the same ordinary rights (the audit table exists).
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {role}",
    ]


def app_role_apply(*, role: str) -> list[str]:
    """Create the role if needed (NOLOGIN: set its password yourself) and grant; returns the
    statements run. Must run as the owner of the tables."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        statements = [] if cursor.fetchone() else [f"CREATE ROLE {role} NOLOGIN"]
        statements += app_role_sql(role=role, owner=owner, database=database)
        for sql in statements:
            cursor.execute(sql)
    return statements
