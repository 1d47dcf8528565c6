"""Compliance data: senders, the DND registry, suppressions and the audit log (no SIP here)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from compliance.keys import number_token


class TokenisedNumber(models.Model):
    """A row about a phone number that must stay matchable after the number is erased."""

    class Meta:
        abstract = True

    number: Any
    number_token: Any

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every path that saves a row gets the token the checks match on, not only the services.
        if self.number and not self.number_token:
            self.number_token = number_token(self.number)
        super().save(*args, **kwargs)


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
    # A sender with call history is archived, never deleted: the history must keep its sender.
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.dlt_entity_id})"


class RegistryVersion(models.Model):
    """One load of the NCPR/DND registry into its own table (compliance_registry_v<id>).

    A version is in force once completed_at is set; the newest completed version is the
    registry. A load that fails or is interrupted never completes, so the previous version stays
    in force; its table is dropped by the next load.
    """

    class Kind(models.TextChoices):
        FULL = "full"
        DELTA = "delta"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.FULL)
    as_of = models.DateTimeField()
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    source = models.CharField(max_length=500, blank=True)
    rows_read = models.PositiveBigIntegerField(default=0)
    added = models.PositiveBigIntegerField(default=0)
    changed = models.PositiveBigIntegerField(default=0)
    removed = models.PositiveBigIntegerField(default=0)
    rejected = models.PositiveBigIntegerField(default=0)
    entries = models.PositiveBigIntegerField(default=0)  # rows in force in this version

    class Meta:
        permissions = [("load_registry", "Can load a registry file")]

    def __str__(self) -> str:
        return f"registry v{self.pk} as of {self.as_of:%Y-%m-%d %H:%M}"

    @property
    def table_name(self) -> str:
        return f"compliance_registry_v{self.pk}"


class Consent(TokenisedNumber):
    """Explicit consent (DLT consent reference) of a number to a sender, for one scope."""

    class Scope(models.TextChoices):
        PROMOTIONAL = "promotional"
        SERVICE_EXPLICIT = "service_explicit"

    number = models.CharField(max_length=20, blank=True)  # blank once erased
    # Indexed by Meta's (number_token, sender, scope); a second index would only cost the
    # last-moment check planning time.
    number_token = models.CharField(max_length=64, default="", editable=False)
    sender = models.ForeignKey(Sender, on_delete=models.PROTECT, related_name="consents")
    scope = models.CharField(max_length=20, choices=Scope.choices)
    given_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    reference = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("revoke_consent", "Can revoke a consent")]
        indexes = [models.Index(fields=["number_token", "sender", "scope"])]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "reference"], name="consent_reference_unique_per_sender"
            )
        ]

    def __str__(self) -> str:
        return f"{self.number} -> {self.sender_id} ({self.scope}, {self.reference})"


class Suppression(TokenisedNumber):
    """An opt-out or internal do-not-call entry; no sender means every sender.

    Matched by number_token, so it still protects a person whose number was erased. Never
    deleted: lifting one sets lifted_at (compliance.suppressions.suppression_lift, audited).
    """

    number = models.CharField(max_length=20, blank=True)  # blank once erased
    number_token = models.CharField(max_length=64, default="", editable=False)
    sender = models.ForeignKey(Sender, null=True, blank=True, on_delete=models.PROTECT)
    reason = models.CharField(max_length=200, blank=True)
    # Left by an erasure: blocks every purpose (reason `erased`), not only the suppressible ones.
    erasure = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, editable=False)
    lifted_at = models.DateTimeField(null=True, blank=True, editable=False)
    lifted_by = models.CharField(max_length=150, blank=True, editable=False)
    lift_reason = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        permissions = [("lift_suppression", "Can lift a suppression")]
        # A plain index: db_index would add a LIKE index no query uses, and every index of a
        # table the last-moment check reads is planning time on every call.
        indexes = [models.Index(fields=["number_token"], name="suppression_token_idx")]

    def __str__(self) -> str:
        return f"{self.number or '(erased)'} suppressed ({self.reason or 'no reason'})"


class AuditEntry(TokenisedNumber):
    """A compliance decision (written before the call) or a call outcome (written after it)."""

    class Kind(models.TextChoices):
        DECISION = "decision"
        OUTCOME = "outcome"
        POLICY = "policy"  # the rule values in force changed
        OPT_OUT = "opt_out"  # the callee opted out during a call (DTMF key)
        # Changes to compliance data, each naming its actor.
        SUPPRESSION_ADDED = "suppression_added"
        SUPPRESSION_LIFTED = "suppression_lifted"
        CONSENT_ADDED = "consent_added"
        CONSENT_CHANGED = "consent_changed"
        CONSENT_REVOKED = "consent_revoked"
        REGISTRY_LOADED = "registry_loaded"
        SENDER_CHANGED = "sender_changed"
        CALLER_ID_CHANGED = "caller_id_changed"
        ERASURE = "erasure"
        RETENTION = "retention"
        CHAIN_KEYED = "chain_keyed"  # the chain moved to keyed MACs and number tokens

    # A default, not auto_now_add: the value is hashed before the row is inserted.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Who made a change to compliance data ("user:alice", "cli:root", "callee:dtmf", "system").
    actor = models.CharField(max_length=150, blank=True)
    # Plain ids, not foreign keys: the log must outlive (and never cascade with) what it describes.
    attempt_id = models.BigIntegerField(null=True, db_index=True)
    campaign_id = models.BigIntegerField(null=True, db_index=True)
    sender_dlt_id = models.CharField(max_length=64, blank=True)
    # The number in clear, outside the hashed content so that an erasure can blank it; the
    # chain covers number_token (compliance.keys), which stays.
    number = models.CharField(max_length=32, blank=True)
    number_token = models.CharField(max_length=64, blank=True, default="")
    purpose = models.CharField(max_length=32, blank=True)
    allowed = models.BooleanField(null=True)
    reasons = models.JSONField(default=list)
    detail = models.JSONField(default=dict)
    # Tamper evidence: entry_hash covers this entry's fields and prev_hash, the entry before's hash.
    prev_hash = models.CharField(max_length=64, blank=True)
    entry_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        permissions = [("export_auditentry", "Can export the audit log")]
        ordering = ["id"]
        indexes = [models.Index(fields=["number_token", "sender_dlt_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Erasure(models.Model):
    """One erasure of a person's number (DPDP Act 2023, s.12): who asked for it and what it
    removed. Keeps only the keyed token of the number, never the number."""

    number_token = models.CharField(max_length=64, db_index=True)
    requested_by = models.CharField(max_length=150)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    counts = models.JSONField(default=dict, blank=True)  # rows changed, per table

    def __str__(self) -> str:
        return f"erasure #{self.pk} ({self.created_at:%Y-%m-%d})"
