"""python manage.py setup_roles: make the role groups match access.roles.ROLES exactly."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.roles import RoleSetupError, roles_setup


class Command(BaseCommand):
    help = "Create the role groups and set their permissions to the matrix in access/roles.py."

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            changes = roles_setup()
        except RoleSetupError as exc:
            raise CommandError(f"{exc} (run migrate first?)") from exc
        for line in changes:
            self.stdout.write(line)
        if not changes:
            self.stdout.write("roles already match access/roles.py: nothing changed")
