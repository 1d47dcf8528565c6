"""The rule values in force, from settings: one frozen object, fingerprinted for the audit log."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings


def parse_window(spec: str) -> tuple[dt.time, dt.time]:
    """'10:00-21:00' -> (10:00, 21:00); half-open [start, end); '24:00' means midnight."""
    try:
        start_s, end_s = spec.split("-")
        start = dt.time.fromisoformat(start_s.strip())
        end = dt.time(0) if end_s.strip() == "24:00" else dt.time.fromisoformat(end_s.strip())
    except ValueError as exc:
        raise ValueError(f"calling window {spec!r} is not HH:MM-HH:MM") from exc
    return start, end


def in_window(window: tuple[dt.time, dt.time], t: dt.time) -> bool:
    start, end = window
    if end == dt.time(0):  # up to midnight
        return t >= start
    if start <= end:
        return start <= t < end
    return t >= start or t < end  # across midnight


@dataclass(frozen=True)
class Policy:
    promo_window: str
    service_window: str
    registry_max_age_h: float
    max_attempts_per_day: int
    max_answered_promo_per_day: int
    cap_purposes: tuple[str, ...]
    promo_series: tuple[str, ...]
    service_series: tuple[str, ...]
    series_sectors: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    default_region: str
    default_tz: str

    def fingerprint(self) -> str:
        return _fingerprint(self)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@functools.lru_cache(maxsize=16)
def _fingerprint(policy: Policy) -> str:
    # Recorded with every decision; hashing the policy each time would cost ~0.1 ms per check.
    return hashlib.sha256(json.dumps(asdict(policy), sort_keys=True).encode()).hexdigest()[:16]


def policy_from_settings() -> Policy:
    """Read (and validate) the policy; a bad value fails loudly rather than allowing calls."""
    policy = Policy(
        promo_window=settings.COMPLIANCE_PROMO_WINDOW,
        service_window=settings.COMPLIANCE_SERVICE_WINDOW,
        registry_max_age_h=float(settings.COMPLIANCE_REGISTRY_MAX_AGE_H),
        max_attempts_per_day=int(settings.COMPLIANCE_MAX_ATTEMPTS_PER_DAY),
        max_answered_promo_per_day=int(settings.COMPLIANCE_MAX_ANSWERED_PROMO_PER_DAY),
        cap_purposes=tuple(settings.COMPLIANCE_CAP_PURPOSES),
        promo_series=tuple(settings.COMPLIANCE_PROMO_SERIES),
        service_series=tuple(settings.COMPLIANCE_SERVICE_SERIES),
        series_sectors=tuple(settings.COMPLIANCE_SERIES_SECTORS),
        jurisdictions=tuple(settings.COMPLIANCE_JURISDICTIONS),
        default_region=settings.COMPLIANCE_DEFAULT_REGION,
        default_tz=settings.COMPLIANCE_DEFAULT_TZ,
    )
    parse_window(policy.promo_window)
    parse_window(policy.service_window)
    return policy


def callee_zone(number: str) -> str:
    """The callee's time zone by their number (the policy's default zone when it cannot tell)."""
    from compliance.numbers import InvalidNumber, number_info

    policy = policy_from_settings()
    try:
        return number_info(
            number, region=policy.default_region, fallback_tz=policy.default_tz
        ).time_zone
    except InvalidNumber:
        return policy.default_tz


def zone_or_default(name: str, default: str) -> ZoneInfo:
    """The named zone; the default when the name is empty or not a zone this machine knows (a
    contact's stored zone comes from its number, or from an uploaded file)."""
    try:
        return ZoneInfo(name or default)
    except (ValueError, ZoneInfoNotFoundError):
        return ZoneInfo(default)
