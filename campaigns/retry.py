"""When to try a contact again: pure functions, so every rule is tested without a database.

Dispositions: busy, no_answer and failed are retried after the campaign's delay for that
disposition, up to its max_attempts of dialed attempts; answered, rejected and invalid_number
close the contact. A compliance block closes it too, unless every reason is temporary (outside
the calling hours, a daily cap, a stale registry, a check that could not run): then the contact
waits for the moment the block lifts, without using up an attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from compliance.policy import Policy, parse_window
from telephony.engine.events import Disposition

log = logging.getLogger(__name__)

DEFAULT_DELAYS_S = {Disposition.BUSY: 600, Disposition.NO_ANSWER: 3600, Disposition.FAILED: 300}
RETRYABLE = frozenset(DEFAULT_DELAYS_S)
MAX_DELAY_S = 7 * 24 * 3600  # a week: anything longer is a typo, not a plan
TEMPORARY_BLOCKS = frozenset(
    {"outside_calling_hours", "frequency_cap", "registry_stale", "check_unavailable"}
)
MAX_TEMPORARY_BLOCKS = 20  # a contact that keeps hitting them is closed rather than spun forever
SHORT_WAIT = dt.timedelta(minutes=15)


def delay_seconds(value: object) -> int | None:
    """A stored retry delay as whole seconds, or None if it is not 1..MAX_DELAY_S.

    The one test of a delay: campaign validation refuses what this refuses, and retry_delay
    falls back to the default for it. bool is an int to Python, but `true` is no delay.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_DELAY_S else None


def retry_delay(
    *, disposition: str, delays: object, campaign_id: int | None = None
) -> dt.timedelta | None:
    """The wait before the next attempt after this disposition, or None: do not retry.

    Never raises: `delays` may be anything stored before campaigns were validated (a string, a
    list, {"busy": "ten minutes"}); a value that is not a delay gets the disposition's default.
    Raising here once killed an engine's writer thread (issue #10).
    """
    if disposition not in RETRYABLE:
        return None
    default = DEFAULT_DELAYS_S[Disposition(disposition)]
    if not delays or (isinstance(delays, dict) and disposition not in delays):
        return dt.timedelta(seconds=default)  # not set for this disposition
    seconds = delay_seconds(delays.get(disposition) if isinstance(delays, dict) else None)
    if seconds is None:
        log.warning(
            "campaign %s: retry_delays %r holds no valid %s delay (whole seconds, 1-%d); "
            "using the default %d s",
            campaign_id, delays, disposition, MAX_DELAY_S, default,
        )  # fmt: skip
        return dt.timedelta(seconds=default)
    return dt.timedelta(seconds=seconds)


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
