from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Refuses changes to a started campaign's promises and deleting caller-ID history.
        from campaigns import promises  # noqa: F401
