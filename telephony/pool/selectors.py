"""Reads of the engine pool's state."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import QuerySet

from telephony.pool.models import EngineProcess


def engines_live(*, now: dt.datetime) -> QuerySet[EngineProcess]:
    """Engines that take calls: a heartbeat within ENGINE_HEARTBEAT_STALE_S, neither stopped nor
    draining."""
    fresh = now - dt.timedelta(seconds=settings.ENGINE_HEARTBEAT_STALE_S)
    return EngineProcess.objects.filter(heartbeat_at__gte=fresh, stopped_at=None, draining=False)
