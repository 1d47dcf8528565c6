from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns.models.trunk import CallerId, Trunk
from campaigns.validation import campaign_errors, check_before_save, raise_if_any
from compliance.models import Purpose, Sender


class CampaignStatus(models.TextChoices):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # starts by itself at starts_at (beat)
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    COMPLETED = "completed"


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    sender = models.ForeignKey(Sender, on_delete=models.PROTECT, related_name="campaigns")
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    category = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(8)],
        help_text="TRAI preference category (1-8) of a promotional campaign",
    )
    trunk = models.ForeignKey(Trunk, on_delete=models.PROTECT, related_name="campaigns")
    fallback_trunk = models.ForeignKey(
        Trunk,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fallback_for",
        help_text="used when the trunk is held back (503/403) or full (needs Redis pacing)",
    )
    caller_ids = models.ManyToManyField(CallerId, related_name="campaigns")
    starts_at = models.DateTimeField(
        null=True, blank=True, help_text="a scheduled campaign starts by itself at this time"
    )
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="the campaign stops by itself at this time"
    )
    # The campaign's own daily dialing window (COMPLIANCE_DEFAULT_TZ), on top of the regulatory
    # windows that the compliance gate applies in each callee's zone.
    window_start = models.TimeField(default=dt.time(0, 0))
    window_end = models.TimeField(default=dt.time(23, 59, 59))
    max_cps = models.FloatField(default=1.0, validators=[MinValueValidator(0.01)])
    max_concurrent = models.PositiveIntegerField(default=4, validators=[MinValueValidator(1)])
    ring_timeout_s = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    max_call_s = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(1)],
        help_text="hang up answered calls after this",
    )
    max_attempts = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    retry_delays = models.JSONField(
        default=dict,
        blank=True,
        help_text='seconds before retrying, per disposition, e.g. {"busy": 600, "no_answer": 3600,'
        ' "failed": 300} (these are the defaults); other dispositions are never retried',
    )
    agent_url = models.CharField(max_length=500, blank=True, help_text="ws:// or wss:// agent URL")
    stream_format = models.CharField(
        max_length=8,
        choices=[("twilio", "Twilio Media Streams (mu-law)"), ("exotel", "Exotel (16-bit PCM)")],
        default="twilio",
        help_text="the WebSocket message format the agent speaks",
    )
    opt_out_digit = models.CharField(
        max_length=1,
        blank=True,
        choices=[(d, d) for d in "0123456789*#"],
        help_text="a DTMF key that suppresses the number for this sender at once (blank: none)",
    )
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    # The last pre-flight scrub's summary (counts by reason), shown in the admin.
    preflight = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A campaign with call history is archived, never deleted (its attempts PROTECT it).
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        permissions = [
            ("scrub_campaign", "Can run a campaign's pre-flight scrub"),
            ("start_campaign", "Can schedule, start and resume a campaign"),
            ("pause_campaign", "Can pause and stop a campaign"),
            ("archive_campaign", "Can archive a campaign"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Django validates in forms only; a campaign saved from code with a bad setting was
        # found by an engine mid-call instead (issue #10). campaigns.validation says which
        # rules this leaves to the form, and why.
        check_before_save(
            self,
            update_fields=kwargs.get("update_fields"),
            rules=lambda: campaign_errors(self, complete=False),
        )
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        raise_if_any(campaign_errors(self, complete=True))
