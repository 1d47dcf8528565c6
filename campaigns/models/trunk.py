from __future__ import annotations

from typing import Any

from django.db import models

from campaigns.validation import (
    caller_id_number,
    check_before_save,
    raise_if_any,
    trunk_errors,
)
from compliance.models import Sender


class Trunk(models.Model):
    """A SIP trunk. Its password is never stored here: env TRUNK_<NAME>_PASSWORD (or _FILE)."""

    class Transport(models.TextChoices):
        UDP = "udp"
        TCP = "tcp"
        TLS = "tls"

    name = models.SlugField(max_length=64, unique=True)
    sip_uri = models.CharField(max_length=255, help_text="sip:host[:port] of the carrier or SBC")
    transport = models.CharField(max_length=8, choices=Transport.choices, default=Transport.UDP)
    auth_username = models.CharField(max_length=128, blank=True)
    max_cps = models.FloatField(default=5.0)
    max_channels = models.PositiveIntegerField(default=30)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Checked on every save, not only in the admin: engines build each INVITE's target
        # from sip_uri (issue #10).
        check_before_save(
            self, update_fields=kwargs.get("update_fields"), rules=lambda: trunk_errors(self)
        )
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        raise_if_any(trunk_errors(self))


class CallerId(models.Model):
    """A number the sender owns and may present as CLI (From / P-Asserted-Identity)."""

    number = models.CharField(max_length=20, unique=True)
    series = models.CharField(max_length=8, blank=True, editable=False)
    sender = models.ForeignKey(Sender, on_delete=models.PROTECT, related_name="caller_ids")
    trunk = models.ForeignKey(Trunk, null=True, blank=True, on_delete=models.SET_NULL)
    active = models.BooleanField(default=True)
    daily_max = models.PositiveIntegerField(
        null=True, blank=True, help_text="calls per day from this caller ID (carrier limits)"
    )
    # Archived instead of deleted once it has history (a campaign out of draft, a call): the
    # dialer never presents an archived number, whatever `active` says.
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        permissions = [("archive_callerid", "Can archive a caller ID")]

    def __str__(self) -> str:
        return self.number

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "number" in update_fields:
            self.normalise_number()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "series"}
        check_before_save(self, update_fields=kwargs.get("update_fields"), rules=dict)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self.normalise_number()

    def normalise_number(self) -> None:
        """The number in E.164 and its series, from it: the one place either is set (the
        compliance gate compares CLIs as E.164 strings). Raises ValidationError on `number`."""
        self.number, self.series = caller_id_number(self.number)
