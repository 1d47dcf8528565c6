"""Plain factory functions for tests: each builds one saved object with sensible, unique defaults.

Every keyword override is passed to the model as is; related objects are created when not given.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from access.roles import roles_setup
from campaigns.models import CallAttempt, CallerId, Campaign, Contact, ContactList, Trunk
from campaigns.services.lifecycle import campaign_start
from compliance.models import Purpose, Sender
from telephony.models import EngineProcess

_seq = itertools.count(1)


def make_sender(**overrides: Any) -> Sender:
    n = next(_seq)
    values: dict[str, Any] = {"dlt_entity_id": f"1101{n:014d}", "name": f"Sender {n}"}
    return Sender.objects.create(**(values | overrides))


def make_trunk(**overrides: Any) -> Trunk:
    n = next(_seq)
    values: dict[str, Any] = {"name": f"trunk-{n}", "sip_uri": "sip:127.0.0.1:5060"}
    return Trunk.objects.create(**(values | overrides))


def make_caller_id(**overrides: Any) -> CallerId:
    n = next(_seq)
    values: dict[str, Any] = {"number": f"+91140{n:07d}"}
    if "sender" not in overrides:
        values["sender"] = make_sender()
    return CallerId.objects.create(**(values | overrides))


def make_campaign(*, caller_ids: list[CallerId] | None = None, **overrides: Any) -> Campaign:
    """A draft campaign that can start: it has an enabled trunk and one active caller ID.

    Pass caller_ids=[] for a campaign without any.
    """
    n = next(_seq)
    values: dict[str, Any] = {"name": f"Campaign {n}", "purpose": Purpose.SERVICE_EXPLICIT}
    if "sender" not in overrides:
        values["sender"] = make_sender()
    if "trunk" not in overrides:
        values["trunk"] = make_trunk()
    campaign = Campaign.objects.create(**(values | overrides))
    if caller_ids is None:
        caller_ids = [make_caller_id(sender=campaign.sender, trunk=campaign.trunk)]
    campaign.caller_ids.set(caller_ids)
    return campaign


def make_started_campaign(contacts: int = 3, **overrides: Any) -> Campaign:
    """A started transactional campaign (BFSI sender, one caller ID) with `contacts` to dial."""
    sender = make_sender(sector="bfsi")
    trunk = make_trunk(sip_uri="sip:127.0.0.1:5999")
    cli = make_caller_id(number="+911600123456", sender=sender, trunk=trunk)
    values: dict[str, Any] = {"purpose": "transactional", "max_cps": 100, "max_concurrent": 10}
    campaign = make_campaign(sender=sender, trunk=trunk, caller_ids=[cli], **(values | overrides))
    for _ in range(contacts):
        make_contact(campaign=campaign)
    campaign_start(campaign_id=campaign.pk)
    return campaign


def make_engine_process(slots: int = 4, *, age_s: float = 0) -> EngineProcess:
    """An engine row whose last heartbeat was age_s seconds ago (no process behind it)."""
    return EngineProcess.objects.create(
        name=f"e{EngineProcess.objects.count()}", host="127.0.0.1", pid=1, sip_port=5080,
        slots=slots, heartbeat_at=timezone.now() - dt.timedelta(seconds=age_s),
    )  # fmt: skip


def make_contact_list(*, campaign: Campaign | None = None, **overrides: Any) -> ContactList:
    values: dict[str, Any] = {"name": f"List {next(_seq)}"}
    return ContactList.objects.create(campaign=campaign or make_campaign(), **(values | overrides))


def make_contact(*, campaign: Campaign | None = None, **overrides: Any) -> Contact:
    """A pending contact, due now, in the campaign's first list; a valid Indian mobile number."""
    campaign = campaign or make_campaign()
    values: dict[str, Any] = {"number": f"+9198{next(_seq):08d}"}
    if "contact_list" not in overrides:
        values["contact_list"] = campaign.contact_lists.first() or make_contact_list(
            campaign=campaign
        )
    return Contact.objects.create(campaign=campaign, **(values | overrides))


def make_call_attempt(*, contact: Contact | None = None, **overrides: Any) -> CallAttempt:
    """A queued attempt of the contact (next attempt number), to its number."""
    contact = contact or make_contact()
    values: dict[str, Any] = {
        "campaign": contact.campaign,
        "number": contact.number,
        "attempt_number": contact.call_attempts.count() + 1,
    }
    return CallAttempt.objects.create(contact=contact, **(values | overrides))


def make_user(*, role: str | None = None, perms: tuple[str, ...] = (), **overrides: Any) -> User:
    """A staff user (not a superuser) in the role's group and with the given "app.codename" perms.

    The role's group is brought to the matrix first (access.roles.roles_setup), so a test does not
    depend on the data migration's groups surviving another test's flush.
    """
    values: dict[str, Any] = {"username": f"user{next(_seq)}", "is_staff": True}
    user = User.objects.create_user(**(values | overrides))
    if role is not None:
        roles_setup()
        user.groups.add(Group.objects.get(name=role))
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user
