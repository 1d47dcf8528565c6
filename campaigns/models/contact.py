from __future__ import annotations

from django.db import models

from campaigns.models.campaign import Campaign


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
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contacts")
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

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "number"], name="contact_unique_per_campaign"
            )
        ]
        indexes = [models.Index(fields=["campaign", "status", "next_attempt_at"])]

    def __str__(self) -> str:
        return self.number
