"""The compliance gate: one decision per call, with every reason that applies.

Walking-skeleton gate: number validity and jurisdiction, suppression, the DND registry (full and
category blocks) with staleness failing closed, calling hours in the callee's zone, and caller-ID
series and ownership. Consent and frequency caps come with the full policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q

from compliance.models import Purpose, Sector, Suppression
from compliance.numbers import InvalidNumber, cli_series, region_of, time_zone_of, to_e164
from compliance.registry import FULLY_BLOCKED, registry_current, registry_lookup

REGISTRY_MAX_AGE = dt.timedelta(hours=24)
_COMMERCIAL = {
    Purpose.PROMOTIONAL,
    Purpose.SERVICE_IMPLICIT,
    Purpose.SERVICE_EXPLICIT,
    Purpose.TRANSACTIONAL,
}


@dataclass(frozen=True)
class Decision:
    number: str  # E.164 when it parsed, else what was given
    purpose: str
    reasons: tuple[str, ...]
    local_time: str | None = None
    registry_version: int | None = None
    consent: str | None = None
    inputs: dict[str, object] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return not self.reasons


def parse_window(spec: str) -> tuple[dt.time, dt.time]:
    """'10:00-21:00' -> (10:00, 21:00); the window is half-open [start, end)."""
    try:
        start_s, end_s = spec.split("-")
        start = dt.time.fromisoformat(start_s.strip())
        end = dt.time(0) if end_s.strip() == "24:00" else dt.time.fromisoformat(end_s.strip())
    except ValueError as exc:
        raise ValueError(f"calling window {spec!r} is not HH:MM-HH:MM") from exc
    return start, end


def _inside(window: tuple[dt.time, dt.time], t: dt.time) -> bool:
    start, end = window
    if end == dt.time(0):  # '...-24:00': up to midnight
        return t >= start
    return start <= t < end


def _window_for(purpose: str) -> tuple[dt.time, dt.time] | None:
    if purpose == Purpose.PROMOTIONAL:
        return parse_window(settings.COMPLIANCE_PROMO_WINDOW)
    if purpose in (Purpose.SERVICE_IMPLICIT, Purpose.SERVICE_EXPLICIT):
        return parse_window(settings.COMPLIANCE_SERVICE_WINDOW)
    return None  # transactional and government calls have no window


def _cli_reasons(
    *, cli: str, purpose: str, sector: str, owned_clis: Collection[str] | None
) -> list[str]:
    reasons: list[str] = []
    series = cli_series(cli)
    if purpose in _COMMERCIAL and series == "mobile":
        reasons.append("cli_series_mismatch")
    elif purpose == Purpose.PROMOTIONAL and series != "140":
        reasons.append("cli_series_mismatch")
    elif (
        purpose != Purpose.PROMOTIONAL
        and sector in (Sector.BFSI, Sector.GOVERNMENT)
        and series != "1600"
    ):
        reasons.append("cli_series_mismatch")
    if owned_clis is not None and cli not in owned_clis:
        reasons.append("cli_not_owned")
    return reasons


def _dnd_reason(*, mask: int, category: int | None) -> str | None:
    if mask & FULLY_BLOCKED:
        return "dnd_fully_blocked"
    if category is None or not mask & (1 << category):
        return "dnd_category_blocked"
    return None


def decide(
    *,
    number: str,
    purpose: str,
    sender_id: int | None,
    sector: str,
    cli: str,
    at: dt.datetime,
    category: int | None = None,
    owned_clis: Collection[str] | None = None,
) -> Decision:
    """Decide whether a call may be placed now. Raises only when the check itself cannot run."""
    if at.tzinfo is None:
        raise ValueError("the time of the call must carry a UTC offset")
    if purpose not in Purpose.values:
        raise ValueError(f"unknown purpose {purpose!r}")
    inputs: dict[str, object] = {
        "sender_id": sender_id,
        "sector": sector,
        "cli": cli,
        "category": category,
        "at": at.isoformat(),
    }
    try:
        e164 = to_e164(number, region=settings.COMPLIANCE_DEFAULT_REGION)
    except InvalidNumber:
        return Decision(number=number, purpose=purpose, reasons=("invalid_number",), inputs=inputs)

    reasons: list[str] = []
    if region_of(e164) not in settings.COMPLIANCE_JURISDICTIONS:
        reasons.append("out_of_jurisdiction")

    if purpose not in (Purpose.TRANSACTIONAL, Purpose.GOVERNMENT):
        suppressed = Suppression.objects.filter(number=e164).filter(
            Q(sender__isnull=True) | Q(sender_id=sender_id)
        )
        if suppressed.exists():
            reasons.append("suppressed")

    registry_version: int | None = None
    if purpose == Purpose.PROMOTIONAL:
        state = registry_current()
        if state is None or not (
            at - REGISTRY_MAX_AGE <= state.as_of <= at + dt.timedelta(minutes=5)
        ):
            reasons.append("registry_stale")  # fail closed: no fresh registry, no promotional call
        if state is not None:
            registry_version = state.version_id
            mask = registry_lookup(state=state, number=e164)
            if mask is not None:
                dnd = _dnd_reason(mask=mask, category=category)
                if dnd:
                    reasons.append(dnd)

    local = at.astimezone(ZoneInfo(time_zone_of(e164, fallback="Asia/Kolkata")))
    window = _window_for(purpose)
    if window is not None and not _inside(window, local.time()):
        reasons.append("outside_calling_hours")

    reasons.extend(_cli_reasons(cli=cli, purpose=purpose, sector=sector, owned_clis=owned_clis))
    return Decision(
        number=e164,
        purpose=purpose,
        reasons=tuple(reasons),
        local_time=local.isoformat(timespec="seconds"),
        registry_version=registry_version,
        inputs=inputs,
    )
