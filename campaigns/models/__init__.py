from __future__ import annotations

from campaigns.models.attempt import AttemptStatus, CallAttempt, Disposition
from campaigns.models.campaign import Campaign, CampaignStatus
from campaigns.models.contact import Contact, ContactList, ContactStatus
from campaigns.models.trunk import CallerId, Trunk

__all__ = [
    "AttemptStatus",
    "CallAttempt",
    "CallerId",
    "Campaign",
    "CampaignStatus",
    "Contact",
    "ContactList",
    "ContactStatus",
    "Disposition",
    "Trunk",
]
