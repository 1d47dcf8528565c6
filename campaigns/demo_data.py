"""The demo's sample data: a sender, a trunk to the built-in callee, caller IDs, a small DND
registry, one suppression and a promotional campaign of a dozen contacts, each chosen to end in a
different way (the callee decides by the number's last digit: see telephony/callee.py)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from campaigns.models import CallerId, Campaign, Contact, ContactList, Trunk
from campaigns.services.caller_ids import caller_id_save
from compliance.models import Sender
from compliance.policy import callee_zone
from compliance.registry import registry_replace
from compliance.senders import sender_save
from compliance.suppressions import suppression_add

DEMO_CONTACTS = [
    ("+919876501230", "Asha"),  # answers
    ("+919876501231", "Ravi"),  # answers
    ("+919876501234", "Meera"),  # 183 early media, then answers
    ("+919876501235", "Kabir"),  # busy (486)
    ("+919876501236", "Priya"),  # rings until our ring timeout
    ("+919876501237", "Arjun"),  # declines (603)
    ("+919876501238", "Neha"),  # not found (404)
    ("+919876501239", "Vikram"),  # temporarily unavailable (480)
    ("+919876501240", "Sunita"),  # fully blocked in the DND registry
    ("+919876501241", "Rahul"),  # DND: accepts categories 1 and 2 only
    ("+919876501242", "Divya"),  # answers
    ("+919876501243", "Imran"),  # opted out earlier: suppressed for this sender
]
REGISTRY = [
    ("+919876501240", "0"),
    ("+919876501241", "1;2"),
    ("+919876509990", "0"),
    ("+919876509991", "3;4;5"),
]


@transaction.atomic
def demo_setup(*, callee_uri: str, agent_url: str) -> Campaign:
    """Create (or reuse) the demo's fixed objects and a fresh campaign ready to start."""
    now = timezone.now()
    # A sender of its own per run: the daily frequency caps count per number and sender, so
    # yesterday's (or five minutes ago's) demo calls must not block today's.
    sender = sender_save(
        sender=Sender(
            dlt_entity_id=f"1101DEMO{now:%Y%m%d%H%M%S}",
            name=f"Demo Academy ({timezone.localtime(now):%Y-%m-%d %H:%M:%S %Z})",
            sector="other",
        ),
        actor="demo",
    )
    trunk, _ = Trunk.objects.update_or_create(
        name="demo-callee", defaults={"sip_uri": callee_uri, "max_cps": 5, "max_channels": 4}
    )
    clis = []
    for number in ("+911401234501", "+911401234502"):
        caller_id = CallerId.objects.filter(number=number).first() or CallerId(number=number)
        caller_id.sender, caller_id.trunk = sender, trunk  # its series comes from the number
        clis.append(caller_id_save(caller_id=caller_id, actor="demo"))
    registry_replace(rows=REGISTRY, as_of=now, source="demo registry")
    suppression_add(
        number="+919876501243", actor="demo", sender_dlt_id=sender.dlt_entity_id,
        reason="opted out (demo)",
    )  # fmt: skip
    campaign = Campaign.objects.create(
        name=f"Demo campaign {timezone.localtime(now):%Y-%m-%d %H:%M:%S %Z}",
        sender=sender,
        purpose="promotional",
        category=3,
        trunk=trunk,
        max_cps=2,
        max_concurrent=4,
        ring_timeout_s=4,
        max_call_s=15,
        max_attempts=1,
        agent_url=agent_url,
    )
    campaign.caller_ids.set(clis)
    contact_list = ContactList.objects.create(campaign=campaign, name="demo contacts")
    Contact.objects.bulk_create(
        Contact(
            campaign=campaign,
            contact_list=contact_list,
            number=number,
            name=name,
            time_zone=callee_zone(number),
        )
        for number, name in DEMO_CONTACTS
    )
    return campaign
