"""Pre-flight scrub of a campaign's list: who would be blocked, and why, before anyone is dialed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from django.utils import timezone

from campaigns.models import Campaign, Contact, ContactStatus
from compliance.policy import policy_from_settings
from compliance.scrub import ScrubResult, scrub_numbers
from compliance.services import cli_reasons


def _scrub(campaign: Campaign) -> tuple[ScrubResult, dict[str, list[str]]]:
    policy = policy_from_settings()
    usable = {"active": True, "archived_at": None}
    clis = sorted(campaign.caller_ids.filter(**usable).values_list("number", flat=True))
    owned = set(campaign.sender.caller_ids.filter(**usable).values_list("number", flat=True))
    cli_issues = {
        cli: reasons
        for cli in clis
        if (
            reasons := cli_reasons(
                cli=cli, purpose=campaign.purpose, sector=campaign.sender.sector,
                owned_clis=owned, policy=policy,
            )
        )
    }  # fmt: skip
    numbers = list(
        Contact.objects.filter(campaign=campaign)
        .exclude(status=ContactStatus.DONE)
        .values_list("number", flat=True)
    )
    result = scrub_numbers(
        numbers=numbers,
        purpose=campaign.purpose,
        sender_dlt_id=campaign.sender.dlt_entity_id,
        sector=campaign.sender.sector,
        cli=clis[0] if clis else "",
        at=timezone.now(),
        category=campaign.category,
        owned_clis=owned,
        policy=policy,
    )
    return result, cli_issues


@dataclass(frozen=True)
class Preflight:
    """A pre-flight scrub's summary; stored on the campaign as JSON (Campaign.preflight)."""

    total: int  # contacts still to be dialed
    blocked: int  # of those, how many the scrub would block
    by_reason: dict[str, int]  # reason -> contacts it would block
    campaign_reasons: list[str]  # would block every call: registry_stale
    registry_version: int | None
    cli_issues: dict[str, list[str]]  # caller ID -> why it may not be used
    at: str  # when it ran, ISO 8601


def campaign_preflight(*, campaign_id: int) -> Preflight:
    """Scrub the contacts still to be dialed; store and return the summary."""
    campaign = Campaign.objects.select_related("sender").get(id=campaign_id)
    result, cli_issues = _scrub(campaign)
    preflight = Preflight(
        total=result.total,
        blocked=len(result.blocked),
        by_reason=dict(sorted(result.by_reason.items())),
        campaign_reasons=[r for r in result.campaign_reasons if r == "registry_stale"],
        registry_version=result.registry_version,
        cli_issues=cli_issues,
        at=timezone.now().isoformat(timespec="seconds"),
    )
    Campaign.objects.filter(id=campaign_id).update(preflight=asdict(preflight))
    return preflight


def campaign_preflight_rows(*, campaign_id: int) -> Iterator[tuple[str, str, str]]:
    """(number, name, reasons) of every contact the scrub would block, for the report download."""
    campaign = Campaign.objects.select_related("sender").get(id=campaign_id)
    result, _ = _scrub(campaign)
    contacts = Contact.objects.filter(campaign=campaign).exclude(status=ContactStatus.DONE)
    for number, name in contacts.order_by("id").values_list("number", "name").iterator():
        reasons = result.blocked.get(number)
        if reasons:
            yield number, name, ";".join(reasons)
