"""Start-up checks of the data-protection settings (python manage.py check)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

# DPDP Rules 2025, Rule 8(3): personal data, traffic data and logs are kept at least a year.
MIN_RETENTION_DAYS = 365


@register()
def retention_days_check(**_: Any) -> list[CheckMessage]:
    days = int(getattr(settings, "DATA_RETENTION_DAYS", 0) or 0)
    if 0 < days < MIN_RETENTION_DAYS:
        return [
            Error(
                f"DATA_RETENTION_DAYS={days} is under {MIN_RETENTION_DAYS}",
                hint="the DPDP Rules (Rule 8(3)) keep call data and logs at least one year; "
                "use 0 (off) or 365 or more",
                id="compliance.E001",
            )
        ]
    return []
