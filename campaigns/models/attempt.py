from __future__ import annotations

from django.db import models

from campaigns.models.campaign import Campaign
from campaigns.models.contact import Contact
from telephony.engine.events import Disposition
from telephony.pool.models import EngineProcess


class AttemptStatus(models.TextChoices):
    QUEUED = "queued"  # created by the dispatcher, waiting for a worker
    DIALING = "dialing"  # claimed by a worker; approved_at set once compliance allowed it
    RINGING = "ringing"  # first 180/183 received
    ANSWERED = "answered"
    ENDED = "ended"  # the call was placed and has ended; disposition says how
    BLOCKED = "blocked"  # compliance refused it; nothing was dialed
    FAILED = "failed"  # could not be placed or its engine was lost
    CANCELLED = "cancelled"  # its campaign stopped before any engine took it; nothing was dialed


# An attempt reaches one of these only through campaigns.services.attempt_end.attempt_finalise.
FINAL_STATUSES = (
    AttemptStatus.ENDED,
    AttemptStatus.BLOCKED,
    AttemptStatus.FAILED,
    AttemptStatus.CANCELLED,
)
# Attempts that never reached a phone: they use up none of the contact's max_attempts.
NOT_DIALED_STATUSES = (AttemptStatus.BLOCKED, AttemptStatus.CANCELLED)

DISPOSITION_CHOICES = [(d.value, d.name.replace("_", " ").title()) for d in Disposition]


class CallAttempt(models.Model):
    # PROTECT: call history outlives nothing it belongs to. Deleting a campaign, contact, contact
    # list or trunk that has attempts is refused; archive the campaign instead. (Contacts and
    # lists still cascade from their campaign: without attempts they are no history.)
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="attempts")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="call_attempts")
    attempt_number = models.PositiveSmallIntegerField()
    number = models.CharField(max_length=20)
    status = models.CharField(
        max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.QUEUED, db_index=True
    )
    queued_at = models.DateTimeField(null=True, blank=True)  # last (re-)enqueue of its task
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    engine = models.ForeignKey(EngineProcess, null=True, blank=True, on_delete=models.SET_NULL)
    taken_at = models.DateTimeField(null=True, blank=True)  # an engine took it (setup starts)
    trunk = models.ForeignKey(
        "campaigns.Trunk", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # the trunk that carried it (the campaign's, or its fallback)
    cli = models.CharField(max_length=20, blank=True)
    reasons = models.JSONField(default=list, blank=True)  # compliance block reasons
    hangup_cause = models.CharField(max_length=100, blank=True)
    sip_code = models.PositiveSmallIntegerField(null=True, blank=True)
    sip_reason = models.CharField(max_length=200, blank=True)
    disposition = models.CharField(max_length=32, choices=DISPOSITION_CHOICES, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    invite_at = models.DateTimeField(null=True, blank=True)
    ringing_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    pdd_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    agent_frames_in = models.PositiveIntegerField(default=0)
    agent_frames_out = models.PositiveIntegerField(default=0)
    # Media quality of an answered call, from RTCP (telephony.engine.quality).
    rx_loss_pct = models.FloatField(null=True, blank=True)
    jitter_ms = models.FloatField(null=True, blank=True)
    rtt_ms = models.FloatField(null=True, blank=True)
    mos = models.FloatField(null=True, blank=True, help_text="estimated, ITU-T G.107 E-model")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "attempt_number"], name="attempt_unique_per_contact"
            )
        ]
        indexes = [models.Index(fields=["status", "engine"])]

    def __str__(self) -> str:
        return f"attempt {self.pk} to {self.number}"
