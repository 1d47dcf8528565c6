from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the campaigns' part of an erasure (compliance.erasure.number_erasing).
        # Refuses changes to a started campaign's promises and deleting caller-ID history.
        from campaigns import promises  # noqa: F401
        from campaigns.services import erasure  # noqa: F401
