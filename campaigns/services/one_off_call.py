"""One-off test calls (manage.py dial) through the same attempt pipeline as campaigns."""

from __future__ import annotations

import datetime as dt
import re

from django.db import transaction
from django.utils import timezone

from campaigns.models import (
    AttemptStatus,
    CallAttempt,
    CallerId,
    Campaign,
    CampaignStatus,
    Contact,
    ContactList,
    ContactStatus,
    Trunk,
)
from campaigns.models.attempt import FINAL_STATUSES
from campaigns.services.caller_ids import caller_id_save
from compliance.models import Purpose, Sector, Sender
from compliance.numbers import InvalidNumber, to_e164
from compliance.senders import sender_save

_SIP_URI = re.compile(r"^sips?:(?:[^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(?::\d{1,5})?(?:;[^\s]*)?$")


class OneOffCallError(ValueError):
    """The test call's arguments are not usable."""


def _normalise(number: str) -> str:
    try:
        return to_e164(number, region="IN")
    except InvalidNumber:
        return number.strip()  # the compliance gate will block it as invalid_number


@transaction.atomic
def one_off_call_prepare(
    *,
    number: str,
    trunk_uri: str,
    cli: str,
    purpose: str,
    sender_dlt_id: str,
    sector: str | None,
    category: int | None,
    ring_timeout_s: int,
    max_call_s: int,
    agent_url: str,
    auth_user: str = "",
    opt_out_digit: str = "",
    stream_format: str = "twilio",
) -> int:
    """Create (or reuse) the sender, trunk, caller ID and test campaign; return a queued attempt."""
    if not _SIP_URI.match(trunk_uri):
        raise OneOffCallError(f"--trunk {trunk_uri!r} is not a SIP URI like sip:host:port")
    if purpose not in Purpose.values:
        raise OneOffCallError(f"--purpose must be one of {', '.join(Purpose.values)}")
    if sector is not None and sector not in Sector.values:
        raise OneOffCallError(f"--sector must be one of {', '.join(Sector.values)}")
    if category is not None and not 1 <= category <= 8:
        raise OneOffCallError("--category must be 1-8")
    if agent_url and not agent_url.startswith(("ws://", "wss://")):
        raise OneOffCallError("--agent must be a ws:// or wss:// URL")
    if opt_out_digit and (len(opt_out_digit) != 1 or opt_out_digit not in "0123456789*#"):
        raise OneOffCallError("--opt-out-digit must be one of 0-9, * or #")
    if stream_format not in ("twilio", "exotel"):
        raise OneOffCallError("--stream-format must be twilio or exotel")
    if not re.fullmatch(r"\+?\d{3,15}", cli):
        raise OneOffCallError(f"--cli {cli!r} is not a number")

    sender = Sender.objects.filter(dlt_entity_id=sender_dlt_id).first()
    if sender is None:
        sender = sender_save(
            sender=Sender(
                dlt_entity_id=sender_dlt_id, name=sender_dlt_id, sector=sector or Sector.OTHER
            ),
            actor="cli:dial",
        )
    elif sector is not None and sender.sector != sector:
        # The sector decides the caller-ID series rule for every campaign of the sender: a test
        # call must not loosen it. Changing it is an audited edit in the admin.
        raise OneOffCallError(
            f"sender {sender_dlt_id} is in sector {sender.sector}, not {sector}: use "
            f"--sector {sender.sector}, or change the sender in the admin"
        )
    # Several trunks may share an address (one carrier, two accounts): take the oldest.
    trunk = Trunk.objects.filter(sip_uri=trunk_uri).order_by("id").first()
    if trunk is None:
        trunk = Trunk.objects.create(
            sip_uri=trunk_uri,
            name="test-" + re.sub(r"[^a-z0-9]+", "-", trunk_uri.lower()).strip("-"),
        )
    if trunk.auth_username != auth_user:
        Trunk.objects.filter(id=trunk.pk).update(auth_username=auth_user)
    try:
        stored_cli = to_e164(cli, region="IN")  # caller IDs are stored in E.164
    except InvalidNumber as exc:
        raise OneOffCallError(f"--cli {cli!r} is not a valid number") from exc
    caller_id = CallerId.objects.filter(number=stored_cli).first() or caller_id_save(
        caller_id=CallerId(number=cli, sender=sender, trunk=trunk),
        actor="cli:dial",
    )
    if caller_id.sender_id != sender.pk:
        raise OneOffCallError(f"caller ID {cli} belongs to another sender ({caller_id.sender})")
    # One campaign per caller ID too: a campaign's caller IDs are fixed once it left draft
    # (campaigns.promises), and this one is created stopped.
    campaign, _ = Campaign.objects.get_or_create(
        name=f"Test calls {sender_dlt_id} {purpose} {trunk.name} {caller_id.number}",
        sender=sender,
        purpose=purpose,
        trunk=trunk,
        category=category,
        ring_timeout_s=ring_timeout_s,
        max_call_s=max_call_s,
        agent_url=agent_url,
        opt_out_digit=opt_out_digit,
        stream_format=stream_format,
        defaults={"status": CampaignStatus.STOPPED},
    )
    campaign.caller_ids.set([caller_id])
    contact_list, _ = ContactList.objects.get_or_create(campaign=campaign, name="test calls")
    contact, _ = Contact.objects.get_or_create(
        campaign=campaign, number=_normalise(number), defaults={"contact_list": contact_list}
    )
    Contact.objects.filter(id=contact.pk).update(
        status=ContactStatus.IN_PROGRESS, attempts=contact.attempts + 1
    )
    attempt = CallAttempt.objects.create(
        campaign=campaign,
        contact=contact,
        attempt_number=contact.attempts + 1,
        number=contact.number,
        queued_at=timezone.now(),
    )
    return attempt.pk


def attempt_is_final(*, attempt_id: int) -> bool:
    status = CallAttempt.objects.filter(id=attempt_id).values_list("status", flat=True).first()
    return status in FINAL_STATUSES


def attempt_result(*, attempt_id: int) -> dict[str, object]:
    """The test call's outcome as the dial command prints it."""
    a = CallAttempt.objects.get(id=attempt_id)

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    result: dict[str, object] = {
        "attempt_id": a.pk,
        "number": a.number,
        "status": a.status,
        "disposition": a.disposition or None,
        "sip_code": a.sip_code,
        "sip_reason": a.sip_reason or None,
        "pdd_ms": a.pdd_ms,
        "cli": a.cli or None,
        "invite_at": iso(a.invite_at),
        "answered_at": iso(a.answered_at),
        "ended_at": iso(a.ended_at),
        "duration_s": a.duration_s,
        "hangup_cause": a.hangup_cause or None,
        "reasons": list(a.reasons) if a.status == AttemptStatus.BLOCKED else [],
        "rx_loss_pct": a.rx_loss_pct,
        "jitter_ms": a.jitter_ms,
        "rtt_ms": a.rtt_ms,
        "mos": a.mos,
    }
    return result
