"""The compliance gate: one decision per call, listing every reason that applies.

Implements Part 1 of the project policy (India TRAI pack): number validity and jurisdiction,
suppression, the DND registry with consent overriding it and staleness failing closed, explicit
consent for service_explicit calls, calling hours in the callee's zone, caller-ID series and
ownership, and daily frequency caps. Every rule value comes from `compliance.policy`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from compliance.facts import number_facts
from compliance.models import Consent, Purpose
from compliance.numbers import InvalidNumber, cli_series, number_info
from compliance.policy import Policy, in_window, parse_window, policy_from_settings
from compliance.registry import FULLY_BLOCKED, registry_current

_COMMERCIAL = frozenset(
    {Purpose.PROMOTIONAL, Purpose.SERVICE_IMPLICIT, Purpose.SERVICE_EXPLICIT, Purpose.TRANSACTIONAL}
)
_SERVICE_OR_TXN = frozenset(
    {Purpose.SERVICE_IMPLICIT, Purpose.SERVICE_EXPLICIT, Purpose.TRANSACTIONAL}
)
_CONSENT_SCOPE: dict[str, str] = {
    Purpose.PROMOTIONAL: Consent.Scope.PROMOTIONAL,
    Purpose.SERVICE_EXPLICIT: Consent.Scope.SERVICE_EXPLICIT,
}
_SUPPRESSIBLE = frozenset({Purpose.PROMOTIONAL, Purpose.SERVICE_IMPLICIT, Purpose.SERVICE_EXPLICIT})

__all__ = ["Decision", "decide", "parse_window"]


@dataclass(frozen=True)
class Decision:
    number: str  # E.164 when it parsed, else what was given
    purpose: str
    reasons: tuple[str, ...]
    local_time: str | None = None
    registry_version: int | None = None
    consent: str | None = None  # reference of the consent relied on
    inputs: dict[str, object] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return not self.reasons


def purpose_window(purpose: str, policy: Policy) -> tuple[dt.time, dt.time] | None:
    if purpose == Purpose.PROMOTIONAL:
        return parse_window(policy.promo_window)
    if purpose in (Purpose.SERVICE_IMPLICIT, Purpose.SERVICE_EXPLICIT):
        return parse_window(policy.service_window)
    return None  # transactional and government calls have no window


def cli_reasons(
    *, cli: str, purpose: str, sector: str, owned_clis: Collection[str] | None, policy: Policy
) -> list[str]:
    reasons: list[str] = []
    series = cli_series(cli, series=policy.promo_series + policy.service_series)
    if purpose in _COMMERCIAL and series == "mobile":
        reasons.append("cli_series_mismatch")
    elif purpose == Purpose.PROMOTIONAL and series not in policy.promo_series:
        reasons.append("cli_series_mismatch")
    elif (
        purpose in _SERVICE_OR_TXN
        and sector in policy.series_sectors
        and series not in policy.service_series
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
    sender_dlt_id: str | None,
    sector: str,
    cli: str,
    at: dt.datetime,
    category: int | None = None,
    owned_clis: Collection[str] | None = None,
    policy: Policy | None = None,
) -> Decision:
    """Decide whether a call may be placed at `at`. Raises only when the check cannot run.

    owned_clis: the caller IDs the sender may present (campaign calls always pass it);
    None skips the ownership rule (a bare number check).
    """
    policy = policy or policy_from_settings()
    if at.tzinfo is None:
        raise ValueError("the time of the call must carry a UTC offset")
    if purpose not in Purpose.values:
        raise ValueError(f"unknown purpose {purpose!r}")
    if category is not None and not 1 <= category <= 8:
        raise ValueError(f"category {category} is not 1-8")
    inputs: dict[str, object] = {
        "sender": sender_dlt_id,
        "sector": sector,
        "cli": cli,
        "category": category,
        "at": at.isoformat(),
        "policy": policy.fingerprint(),
    }
    try:
        info = number_info(number, region=policy.default_region, fallback_tz=policy.default_tz)
    except InvalidNumber:
        return Decision(number=number, purpose=purpose, reasons=("invalid_number",), inputs=inputs)

    e164 = info.e164
    local = at.astimezone(ZoneInfo(info.time_zone))
    registry = registry_current() if purpose == Purpose.PROMOTIONAL else None
    scope = _CONSENT_SCOPE.get(purpose)
    facts = number_facts(
        number=e164,
        sender_dlt_id=sender_dlt_id or "",
        at=at,
        day_start=local.replace(hour=0, minute=0, second=0, microsecond=0),
        registry=registry,
        consent_scope=scope,
    )
    reasons: list[str] = []
    consent: str | None = None
    if info.region not in policy.jurisdictions:
        reasons.append("out_of_jurisdiction")
    if facts.erased:
        # The person had their number erased (DPDP): no purpose reaches them again unless a
        # compliance officer lifts that suppression, which is audited.
        reasons.append("erased")
    if purpose in _SUPPRESSIBLE and facts.suppressed:
        reasons.append("suppressed")

    if purpose == Purpose.PROMOTIONAL:
        max_age = dt.timedelta(hours=policy.registry_max_age_h)
        if registry is None or not (at - max_age <= registry.as_of <= at + dt.timedelta(minutes=5)):
            reasons.append("registry_stale")  # fail closed: no fresh registry, no promotion
        dnd = None if facts.prefs is None else _dnd_reason(mask=facts.prefs, category=category)
        if dnd:
            if facts.consent is None:
                reasons.append(dnd)
            else:
                consent = facts.consent  # explicit consent overrides the DND preference
    elif purpose == Purpose.SERVICE_EXPLICIT:
        consent = facts.consent
        if consent is None:
            reasons.append("no_consent")

    window = purpose_window(purpose, policy)
    if window is not None and not in_window(window, local.time()):
        reasons.append("outside_calling_hours")

    reasons.extend(
        cli_reasons(cli=cli, purpose=purpose, sector=sector, owned_clis=owned_clis, policy=policy)
    )
    if (
        sender_dlt_id
        and purpose in policy.cap_purposes
        and (
            facts.attempts_today >= policy.max_attempts_per_day
            or (
                purpose == Purpose.PROMOTIONAL
                and facts.answered_promo_today >= policy.max_answered_promo_per_day
            )
        )
    ):
        reasons.append("frequency_cap")
    return Decision(
        number=e164,
        purpose=purpose,
        reasons=tuple(reasons),
        local_time=local.isoformat(timespec="seconds"),
        registry_version=registry.version_id if registry else None,
        consent=consent,
        inputs=inputs,
    )
