"""Compliance data: senders, the DND registry, suppressions and the audit log (no SIP here)."""

from __future__ import annotations

from django.db import models


class Sector(models.TextChoices):
    BFSI = "bfsi", "Banking, financial services, insurance"
    GOVERNMENT = "government", "Government"
    OTHER = "other", "Other"


class Purpose(models.TextChoices):
    PROMOTIONAL = "promotional", "Promotional"
    SERVICE_IMPLICIT = "service_implicit", "Service (implicit consent)"
    SERVICE_EXPLICIT = "service_explicit", "Service (explicit consent)"
    TRANSACTIONAL = "transactional", "Transactional"
    GOVERNMENT = "government", "Government"


class Sender(models.Model):
    """The principal entity calls are made for, identified by its DLT entity id."""

    dlt_entity_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    sector = models.CharField(max_length=16, choices=Sector.choices, default=Sector.OTHER)

    def __str__(self) -> str:
        return f"{self.name} ({self.dlt_entity_id})"


class RegistryVersion(models.Model):
    """One load of the NCPR/DND registry; the newest version's as-of time decides staleness."""

    as_of = models.DateTimeField()
    loaded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=500, blank=True)
    rows = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"registry v{self.pk} as of {self.as_of:%Y-%m-%d %H:%M}"


class DndEntry(models.Model):
    """A registry row: '0' is fully blocked, otherwise the categories still accepted ('1;3;7')."""

    number = models.CharField(max_length=20, unique=True)
    preferences = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.number}: {self.preferences}"


class Suppression(models.Model):
    """An opt-out or internal do-not-call entry; no sender means every sender."""

    number = models.CharField(max_length=20, db_index=True)
    sender = models.ForeignKey(Sender, null=True, blank=True, on_delete=models.CASCADE)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.number} suppressed ({self.reason or 'no reason'})"


class AuditEntry(models.Model):
    """A compliance decision (written before the call) or a call outcome (written after it)."""

    class Kind(models.TextChoices):
        DECISION = "decision"
        OUTCOME = "outcome"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Plain ids, not foreign keys: the log must outlive (and never cascade with) what it describes.
    attempt_id = models.BigIntegerField(null=True, db_index=True)
    campaign_id = models.BigIntegerField(null=True, db_index=True)
    sender_dlt_id = models.CharField(max_length=64, blank=True)
    number = models.CharField(max_length=32, db_index=True)
    purpose = models.CharField(max_length=32, blank=True)
    allowed = models.BooleanField(null=True)
    reasons = models.JSONField(default=list)
    detail = models.JSONField(default=dict)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.number}"
