"""Pre-flight scrub of a campaign's list: who the last-moment check would block now, and why,
before anyone is dialed; a reason that blocks every call (a stale registry, a refused caller ID
pool, a closed calling window) counts every contact."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from django.utils import timezone

from campaigns.models import Campaign, Contact, ContactStatus
from campaigns.selectors import sender_cli_numbers
from compliance.policy import Policy, in_window, policy_from_settings, zone_or_default
from compliance.scrub import ScrubResult, scrub_numbers
from compliance.services import cli_reasons, purpose_window


@dataclass(frozen=True)
class _Assessment:
    result: ScrubResult
    cli_issues: dict[str, list[str]]  # caller ID -> why it may not be used
    campaign_reasons: list[str]  # each blocks every call placed now
    opens_at: str | None  # closed calling window: when it next opens, "HH:MM zone"


def _pool_reasons(clis: list[str], cli_issues: dict[str, list[str]]) -> list[str]:
    """Why every call would be refused for its caller ID (calls take the pool's IDs in turn)."""
    if not clis or any(cli not in cli_issues for cli in clis):
        return []
    first, *others = (cli_issues[cli] for cli in clis)
    shared = [r for r in first if all(r in other for other in others)]
    return shared or ["cli_pool_refused"]


def _next_opening(
    windows: list[tuple[dt.time, dt.time]], zone: ZoneInfo, now: dt.datetime
) -> dt.datetime | None:
    """None while every window is open now; else when they next all are (the latest of the
    windows' starts), or the far future when they never overlap."""
    local = now.astimezone(zone)
    if all(in_window(w, local.time()) for w in windows):
        return None
    starts = sorted(
        dt.datetime.combine(local.date() + dt.timedelta(days=days), start, zone)
        for days in range(3)
        for start, _ in windows
    )
    opening = next(
        (t for t in starts if t > local and all(in_window(w, t.time()) for w in windows)), None
    )
    return opening or dt.datetime.max.replace(tzinfo=dt.UTC)


def _window_closed(
    *, campaign: Campaign, zones: set[str], policy: Policy, now: dt.datetime
) -> tuple[bool, str | None]:
    """Whether the calling window (the purpose's, within the campaign's own) is closed now in
    every zone of the contacts still to dial, and when it opens first, "HH:MM zone"."""
    windows = [(campaign.window_start, campaign.window_end)]
    if (rule := purpose_window(campaign.purpose, policy)) is not None:
        windows.append(rule)
    openings: list[tuple[dt.datetime, str]] = []
    for name in sorted(zones):
        zone = zone_or_default(name, policy.default_tz)
        opening = _next_opening(windows, zone, now)
        if opening is None:
            return False, None
        openings.append((opening, zone.key))
    if not openings:
        return False, None
    opening, zone_name = min(openings)
    if opening.year == dt.MAXYEAR:
        return True, None
    return True, f"{opening.astimezone(ZoneInfo(zone_name)):%H:%M} {zone_name}"


def _assess(campaign: Campaign, now: dt.datetime) -> _Assessment:
    policy = policy_from_settings()
    usable = {"active": True, "archived_at": None}
    clis = sorted(campaign.caller_ids.filter(**usable).values_list("number", flat=True))
    owned = sender_cli_numbers(sender_id=campaign.sender_id)
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
    waiting = Contact.objects.filter(campaign=campaign).exclude(status=ContactStatus.DONE)
    numbers = list(waiting.values_list("number", flat=True))
    result = scrub_numbers(
        numbers=numbers,
        purpose=campaign.purpose,
        sender_dlt_id=campaign.sender.dlt_entity_id,
        sector=campaign.sender.sector,
        cli=clis[0] if clis else "",
        at=now,
        category=campaign.category,
        owned_clis=owned,
        policy=policy,
    )
    # The scrub holds one caller ID; the last-moment check sees each in turn, so only what
    # refuses the whole pool (or no caller ID at all) blocks every call.
    if clis:
        pool = _pool_reasons(clis, cli_issues)
    else:
        pool = cli_reasons(cli="", purpose=campaign.purpose, sector=campaign.sender.sector,
                           owned_clis=owned, policy=policy)  # fmt: skip
    zones = set(waiting.values_list("time_zone", flat=True).distinct())
    closed, opens_at = _window_closed(campaign=campaign, zones=zones, policy=policy, now=now)
    campaign_reasons = [r for r in result.campaign_reasons if r == "registry_stale"]
    campaign_reasons += pool
    if closed:
        campaign_reasons.append("outside_calling_hours")
    return _Assessment(result, cli_issues, campaign_reasons, opens_at)


@dataclass(frozen=True)
class Preflight:
    """A pre-flight scrub's summary; stored on the campaign as JSON (Campaign.preflight)."""

    total: int  # contacts still to be dialed
    blocked: int  # of those, how many the last-moment check would block now
    by_reason: dict[str, int]  # reason -> contacts it would block
    # Would block every call now: registry_stale, the caller ID pool's, outside_calling_hours
    campaign_reasons: list[str]
    registry_version: int | None
    cli_issues: dict[str, list[str]]  # caller ID -> why it may not be used
    at: str  # when it ran, ISO 8601
    opens_at: str | None = None  # outside the calling window: when it opens, "HH:MM zone"


def campaign_preflight(*, campaign_id: int, now: dt.datetime | None = None) -> Preflight:
    """Scrub the contacts still to be dialed; store and return the summary."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("sender").get(id=campaign_id)
    found = _assess(campaign, now)
    result = found.result
    by_reason = collections.Counter(result.by_reason)
    by_reason.update({reason: result.total for reason in found.campaign_reasons})
    preflight = Preflight(
        total=result.total,
        blocked=result.total if found.campaign_reasons else len(result.blocked),
        by_reason=dict(sorted(by_reason.items())),
        campaign_reasons=found.campaign_reasons,
        registry_version=result.registry_version,
        cli_issues=found.cli_issues,
        at=now.isoformat(timespec="seconds"),
        opens_at=found.opens_at,
    )
    Campaign.objects.filter(id=campaign_id).update(preflight=asdict(preflight))
    return preflight


def campaign_preflight_rows(*, campaign_id: int) -> Iterator[tuple[str, str, str]]:
    """(number, name, reasons) of every contact the scrub would block, for the report download."""
    campaign = Campaign.objects.select_related("sender").get(id=campaign_id)
    found = _assess(campaign, timezone.now())
    contacts = Contact.objects.filter(campaign=campaign).exclude(status=ContactStatus.DONE)
    for number, name in contacts.order_by("id").values_list("number", "name").iterator():
        reasons = found.result.blocked.get(number, []) + found.campaign_reasons
        if reasons:
            yield number, name, ";".join(reasons)
