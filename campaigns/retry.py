"""When to try a contact again: pure functions, so every rule is tested without a database.

Dispositions: busy, no_answer and failed are retried after the campaign's delay for that
disposition, up to its max_attempts of dialed attempts; answered, rejected and invalid_number
close the contact. A compliance block closes it too, unless every reason is temporary (outside
the calling hours, a daily cap, a stale registry, a check that could not run): then the contact
waits for the moment the block lifts, without using up an attempt.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from compliance.policy import Policy, parse_window

DEFAULT_DELAYS_S = {"busy": 600, "no_answer": 3600, "failed": 300}
RETRYABLE = frozenset(DEFAULT_DELAYS_S)
TEMPORARY_BLOCKS = frozenset(
    {"outside_calling_hours", "frequency_cap", "registry_stale", "check_unavailable"}
)
MAX_TEMPORARY_BLOCKS = 20  # a contact that keeps hitting them is closed rather than spun forever
SHORT_WAIT = dt.timedelta(minutes=15)


def retry_delay(*, disposition: str, delays: dict[str, int] | None) -> dt.timedelta | None:
    """The wait before the next attempt after this disposition, or None: do not retry."""
    if disposition not in RETRYABLE:
        return None
    seconds = (delays or {}).get(disposition, DEFAULT_DELAYS_S[disposition])
    return dt.timedelta(seconds=int(seconds))


def _next_opening(*, local: dt.datetime, start: dt.time) -> dt.datetime:
    opening = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
    return opening if opening > local else opening + dt.timedelta(days=1)


def block_lifts_at(
    *, reasons: list[str], purpose: str, now: dt.datetime, tz: str, policy: Policy
) -> dt.datetime | None:
    """When a temporary compliance block will have lifted, or None if any reason is permanent."""
    if not reasons or not set(reasons) <= TEMPORARY_BLOCKS:
        return None
    local = now.astimezone(ZoneInfo(tz))
    window = policy.promo_window if purpose == "promotional" else policy.service_window
    start, _ = parse_window(window)
    when = now + SHORT_WAIT
    if "outside_calling_hours" in reasons:
        when = max(when, _next_opening(local=local, start=start))
    if "frequency_cap" in reasons:
        tomorrow = (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        opening = tomorrow.replace(hour=start.hour, minute=start.minute)
        when = max(
            when,
            opening
            if purpose in ("promotional", "service_implicit", "service_explicit")
            else tomorrow,
        )
    return when.astimezone(dt.UTC)
