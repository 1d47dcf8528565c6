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

from django.db.models import Count, Q

from compliance.models import AuditEntry, Consent, Purpose, Sender, Suppression
from compliance.numbers import InvalidNumber, cli_series, region_of, time_zone_of, to_e164
from compliance.policy import Policy, in_window, parse_window, policy_from_settings
from compliance.registry import FULLY_BLOCKED, registry_current, registry_lookup

_COMMERCIAL = frozenset(
    {Purpose.PROMOTIONAL, Purpose.SERVICE_IMPLICIT, Purpose.SERVICE_EXPLICIT, Purpose.TRANSACTIONAL}
)
_SERVICE_OR_TXN = frozenset(
    {Purpose.SERVICE_IMPLICIT, Purpose.SERVICE_EXPLICIT, Purpose.TRANSACTIONAL}
)
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


def _window_for(purpose: str, policy: Policy) -> tuple[dt.time, dt.time] | None:
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


def consent_valid(*, number: str, sender_id: int | None, scope: str, at: dt.datetime) -> str | None:
    """Reference of a consent valid at `at` (given_at <= at < expires_at, at < revoked_at)."""
    if sender_id is None:
        return None
    return (
        Consent.objects.filter(number=number, sender_id=sender_id, scope=scope, given_at__lte=at)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=at))
        .order_by("-given_at")
        .values_list("reference", flat=True)
        .first()
    )


def _over_cap(
    *, number: str, sender_dlt_id: str, purpose: str, local: dt.datetime, policy: Policy
) -> bool:
    """Today's (callee's local day) placed attempts, and answered promotional calls, so far."""
    if purpose not in policy.cap_purposes:
        return False
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    counts = AuditEntry.objects.filter(
        number=number, sender_dlt_id=sender_dlt_id, created_at__gte=midnight
    ).aggregate(
        attempts=Count("id", filter=Q(kind=AuditEntry.Kind.DECISION, allowed=True)),
        answered_promo=Count(
            "id",
            filter=Q(
                kind=AuditEntry.Kind.OUTCOME,
                purpose=Purpose.PROMOTIONAL,
                detail__disposition="answered",
            ),
        ),
    )
    if counts["attempts"] >= policy.max_attempts_per_day:
        return True
    return (
        purpose == Purpose.PROMOTIONAL
        and counts["answered_promo"] >= policy.max_answered_promo_per_day
    )


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
        e164 = to_e164(number, region=policy.default_region)
    except InvalidNumber:
        return Decision(number=number, purpose=purpose, reasons=("invalid_number",), inputs=inputs)

    sender_id = (
        Sender.objects.filter(dlt_entity_id=sender_dlt_id).values_list("id", flat=True).first()
        if sender_dlt_id
        else None
    )
    reasons: list[str] = []
    consent: str | None = None
    if region_of(e164) not in policy.jurisdictions:
        reasons.append("out_of_jurisdiction")

    if purpose in _SUPPRESSIBLE:
        suppressions = Suppression.objects.filter(number=e164)
        if suppressions.filter(Q(sender__isnull=True) | Q(sender_id=sender_id)).exists():
            reasons.append("suppressed")

    registry_version: int | None = None
    if purpose == Purpose.PROMOTIONAL:
        state = registry_current()
        max_age = dt.timedelta(hours=policy.registry_max_age_h)
        if state is None or not (at - max_age <= state.as_of <= at + dt.timedelta(minutes=5)):
            reasons.append("registry_stale")  # fail closed: no fresh registry, no promotion
        if state is not None:
            registry_version = state.version_id
            mask = registry_lookup(state=state, number=e164)
            dnd = None if mask is None else _dnd_reason(mask=mask, category=category)
            if dnd:
                consent = consent_valid(
                    number=e164, sender_id=sender_id, scope=Consent.Scope.PROMOTIONAL, at=at
                )
                if consent is None:
                    reasons.append(dnd)
    elif purpose == Purpose.SERVICE_EXPLICIT:
        consent = consent_valid(
            number=e164, sender_id=sender_id, scope=Consent.Scope.SERVICE_EXPLICIT, at=at
        )
        if consent is None:
            reasons.append("no_consent")

    local = at.astimezone(ZoneInfo(time_zone_of(e164, fallback=policy.default_tz)))
    window = _window_for(purpose, policy)
    if window is not None and not in_window(window, local.time()):
        reasons.append("outside_calling_hours")

    reasons.extend(
        cli_reasons(cli=cli, purpose=purpose, sector=sector, owned_clis=owned_clis, policy=policy)
    )
    if sender_dlt_id and _over_cap(
        number=e164, sender_dlt_id=sender_dlt_id, purpose=purpose, local=local, policy=policy
    ):
        reasons.append("frequency_cap")
    return Decision(
        number=e164,
        purpose=purpose,
        reasons=tuple(reasons),
        local_time=local.isoformat(timespec="seconds"),
        registry_version=registry_version,
        consent=consent,
        inputs=inputs,
    )
