"""Engine processes as the database sees them: who is alive, on which port, how many free slots.

Registered under the telephony app (telephony/models.py imports it): its table is
telephony_engineprocess, its migrations telephony's."""

from __future__ import annotations

from django.db import models


class EngineProcess(models.Model):
    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    sip_port = models.IntegerField()
    slots = models.PositiveSmallIntegerField()
    live_calls = models.PositiveSmallIntegerField(default=0)
    draining = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.sip_port})"
