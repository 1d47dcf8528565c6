from __future__ import annotations

from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Roles: the permission matrix (roles.py) and the groups that carry it."""

    name = "access"
    default_auto_field = "django.db.models.BigAutoField"
