from __future__ import annotations

from typing import Any

from django.db import models

from campaigns.models.campaign import Campaign
from compliance.policy import callee_zone


class ContactList(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contact_lists")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ContactStatus(models.TextChoices):
    PENDING = "pending"  # due at next_attempt_at
    IN_PROGRESS = "in_progress"  # has a live attempt
    DONE = "done"  # final: last_disposition says how it ended


class Contact(models.Model):
    # No index of its own: the unique (campaign, number) constraint and the two indexes below
    # lead with it, and one index less to keep up makes a large import faster.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="contacts")
    number = models.CharField(max_length=20, help_text="E.164")
    name = models.CharField(max_length=200, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=ContactStatus.choices, default=ContactStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_disposition = models.CharField(max_length=32, blank=True)
    # The callee's zone, from the number when the contact is created: campaign windows are
    # the callee's local hours.
    time_zone = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "number"], name="contact_unique_per_campaign"
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "status", "next_attempt_at"]),
            models.Index(fields=["campaign", "status", "time_zone"]),
        ]

    def __str__(self) -> str:
        return self.number

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.time_zone:
            self.time_zone = callee_zone(self.number)
        super().save(*args, **kwargs)
