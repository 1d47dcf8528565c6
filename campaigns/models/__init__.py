from __future__ import annotations

from campaigns.models.attempt import AttemptStatus, CallAttempt
from campaigns.models.campaign import Campaign, CampaignStatus
from campaigns.models.contact import Contact, ContactList, ContactStatus
from campaigns.models.trunk import CallerId, Trunk
from telephony.engine.events import Disposition  # the one list, shared with the engine

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
