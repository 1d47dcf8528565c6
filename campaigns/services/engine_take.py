"""Engine take: an engine (or its pool's supervisor) takes the oldest approved attempt that fits
the pacing limits, by a conditional UPDATE that gives it to exactly one engine of any host, and
gets a DialJob for it. An engine that cannot send the INVITE hands the attempt back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import AttemptStatus, CallAttempt, CampaignStatus
from campaigns.trunks import trunk_password, trunk_target_uri
from dialer.pacing import Limit, Pacer, lease_id
from telephony.engine.events import DialJob


def approved_work_waiting() -> bool:
    """Is any approved attempt waiting for an engine? The idle engines' poll, 20 times a second
    each: raw SQL, because the ORM's query building alone costs ~1.3 ms of CPU and 52 idle
    engines polling through it used both cores of a 2-core box (bench/engine.py)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM campaigns_callattempt"
            " WHERE status = %s AND engine_id IS NULL AND approved_at IS NOT NULL)",
            [AttemptStatus.DIALING.value],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class TrunkRow:
    id: int
    name: str
    sip_uri: str
    transport: str
    auth_username: str
    max_cps: float
    max_channels: int


@dataclass(frozen=True)
class Candidate:
    """An approved attempt waiting for an engine, with all it takes to pace and dial it."""

    attempt_id: int
    number: str
    cli: str
    stale: bool  # approved longer ago than DIAL_APPROVAL_MAX_AGE_S
    campaign_id: int
    campaign_cps: float
    campaign_channels: int
    ring_timeout_s: int
    max_call_s: int
    agent_url: str
    opt_out_digit: str
    stream_format: str
    contact_name: str
    contact_fields: dict[str, object]
    cli_daily_max: int | None
    trunks: tuple[TrunkRow, ...]  # the campaign's trunk, then its enabled fallback trunk


# One statement for what the ORM needed five queries and ~10 ms of Python for: a pool's
# supervisor runs it before every call it hands out (bench/engine.py). Columns are read by their
# alias; "t_" is the campaign's trunk, "f_" its fallback.
_TRUNK_COLUMNS = ("id", "name", "sip_uri", "transport", "auth_username", "max_cps", "max_channels")
_CANDIDATES_SQL = f"""
SELECT a.id AS attempt_id, a.number AS number, a.cli AS cli, a.approved_at < %s AS stale,
       c.id AS campaign_id, c.max_cps AS campaign_cps, c.max_concurrent AS campaign_channels,
       c.ring_timeout_s AS ring_timeout_s, c.max_call_s AS max_call_s, c.agent_url AS agent_url,
       c.opt_out_digit AS opt_out_digit, c.stream_format AS stream_format,
       p.name AS contact_name, p.fields AS contact_fields,
       (SELECT daily_max FROM campaigns_callerid WHERE number = a.cli) AS cli_daily_max,
       {", ".join(f"t.{c} AS t_{c}" for c in _TRUNK_COLUMNS)},
       {", ".join(f"f.{c} AS f_{c}" for c in _TRUNK_COLUMNS)}, f.enabled AS f_enabled
FROM campaigns_callattempt a
JOIN campaigns_campaign c ON c.id = a.campaign_id
JOIN campaigns_contact p ON p.id = a.contact_id
JOIN campaigns_trunk t ON t.id = c.trunk_id
LEFT JOIN campaigns_trunk f ON f.id = c.fallback_trunk_id
WHERE a.status = %s AND a.engine_id IS NULL AND a.approved_at IS NOT NULL
  AND c.status <> %s AND (%s = 0 OR a.id = %s)
ORDER BY a.approved_at, a.id
LIMIT 5
"""  # noqa: S608 -- the f-string only joins the fixed column names above


def _trunk(row: dict[str, Any], prefix: str) -> TrunkRow:
    return TrunkRow(**{column: row[prefix + column] for column in _TRUNK_COLUMNS})


def _candidate(row: dict[str, Any]) -> Candidate:
    fields = row["contact_fields"]
    if isinstance(fields, str):  # SQLite hands JSON back as text
        fields = json.loads(fields or "{}")
    trunks = [_trunk(row, "t_")]
    if row["f_id"] is not None and row["f_enabled"]:
        trunks.append(_trunk(row, "f_"))
    return Candidate(
        attempt_id=row["attempt_id"],
        number=row["number"],
        cli=row["cli"],
        stale=bool(row["stale"]),
        campaign_id=row["campaign_id"],
        campaign_cps=row["campaign_cps"],
        campaign_channels=row["campaign_channels"],
        ring_timeout_s=row["ring_timeout_s"],
        max_call_s=row["max_call_s"],
        agent_url=row["agent_url"],
        opt_out_digit=row["opt_out_digit"],
        stream_format=row["stream_format"],
        contact_name=row["contact_name"],
        contact_fields=fields or {},
        cli_daily_max=row["cli_daily_max"],
        trunks=tuple(trunks),
    )


def _candidates(*, oldest: dt.datetime, only_attempt: int | None) -> list[Candidate]:
    only = only_attempt or 0
    params = [
        connection.ops.adapt_datetimefield_value(oldest),
        AttemptStatus.DIALING.value,
        CampaignStatus.PAUSED.value,  # a pause stops new dials at once
        only,
        only,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES_SQL, params)
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    return [_candidate(dict(zip(names, row, strict=True))) for row in rows]


def attempt_limits(*, candidate: Candidate, trunk: TrunkRow, now: dt.datetime) -> list[Limit]:
    """The pacing limits an INVITE for this attempt must fit in: the trunk's and campaign's
    calls per second and channels, and its caller ID's calls per day."""
    limits = [
        Limit(scope=f"trunk:{trunk.id}", cps=trunk.max_cps, channels=trunk.max_channels),
        Limit(
            scope=f"campaign:{candidate.campaign_id}",
            cps=candidate.campaign_cps,
            channels=candidate.campaign_channels,
        ),
    ]
    if candidate.cli_daily_max:
        day = now.astimezone(ZoneInfo(settings.COMPLIANCE_DEFAULT_TZ)).date().isoformat()
        limits.append(Limit(scope=f"cli:{candidate.cli}", daily=candidate.cli_daily_max, day=day))
    return limits


def engine_take_next(
    *,
    engine_id: int,
    now: dt.datetime | None = None,
    only_attempt: int | None = None,
    pacer: Pacer | None = None,
    on_paced: Callable[[int], None] | None = None,
) -> tuple[DialJob, list[str]] | None:
    """Give the oldest approved attempt that fits the pacing limits to this engine.

    Returns the job and the pacing scopes its lease holds (release them when the call ends), or
    None. An approval older than DIAL_APPROVAL_MAX_AGE_S is not dialed on: it goes back to the
    queue to be checked again, so no call is placed on an old compliance answer. Raises
    PacingUnavailable when Redis cannot be asked: then nothing is dialed.
    """
    now = now or timezone.now()
    oldest = now - dt.timedelta(seconds=settings.DIAL_APPROVAL_MAX_AGE_S)
    for candidate in _candidates(oldest=oldest, only_attempt=only_attempt):
        if candidate.stale:
            CallAttempt.objects.filter(
                id=candidate.attempt_id, engine=None, status=AttemptStatus.DIALING
            ).update(
                status=AttemptStatus.QUEUED,
                approved_at=None,
                claim_token="",
                claimed_at=None,
                queued_at=now,
            )
            continue
        trunk = candidate.trunks[0]
        scopes: list[str] = []
        if pacer is not None:
            paced = _pace(candidate=candidate, pacer=pacer, now=now, on_paced=on_paced)
            if paced is None:
                continue  # over a limit now; another campaign or trunk may still fit
            trunk, scopes = paced
        if _take(attempt_id=candidate.attempt_id, engine_id=engine_id, trunk_id=trunk.id):
            return _job_for(candidate, trunk), scopes
        if pacer is not None:
            pacer.release(lease_id=lease_id(candidate.attempt_id), scopes=scopes)
    return None


def _take(*, attempt_id: int, engine_id: int, trunk_id: int) -> bool:
    """The conditional UPDATE that gives an attempt to exactly one engine of any host."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_callattempt SET engine_id = %s, taken_at = %s, trunk_id = %s"
            " WHERE id = %s AND status = %s AND engine_id IS NULL",
            [
                engine_id,
                connection.ops.adapt_datetimefield_value(timezone.now()),
                trunk_id,
                attempt_id,
                AttemptStatus.DIALING.value,
            ],
        )
        return cursor.rowcount == 1


def attempt_return(*, attempt_id: int, engine_id: int) -> bool:
    """An engine hands back an attempt it took but could not send (no INVITE left)."""
    return (
        CallAttempt.objects.filter(
            id=attempt_id, engine_id=engine_id, invite_at=None, status=AttemptStatus.DIALING
        ).update(engine=None, taken_at=None)
        == 1
    )


def _pace(
    *,
    candidate: Candidate,
    pacer: Pacer,
    now: dt.datetime,
    on_paced: Callable[[int], None] | None,
) -> tuple[TrunkRow, list[str]] | None:
    """A pacing slot for the attempt on its campaign's trunk or, when that one is held back or
    full, on the campaign's fallback trunk: (trunk, scopes held) or None."""
    for trunk in candidate.trunks:
        if pacer.held_back(scope=f"trunk:{trunk.id}"):
            continue  # the trunk said it is over its limit: give it a moment
        limits = attempt_limits(candidate=candidate, trunk=trunk, now=now)
        grant = pacer.acquire(lease_id=lease_id(candidate.attempt_id), limits=limits)
        if grant.already_held:
            return None  # another engine is taking this very attempt: its lease, not ours
        if grant.ok:
            return trunk, [limit.scope for limit in limits]
        if on_paced is not None and grant.retry_after_ms:
            on_paced(grant.retry_after_ms)  # when the next slot frees up
    return None


def _job_for(candidate: Candidate, trunk: TrunkRow) -> DialJob:
    target = trunk_target_uri(
        sip_uri=trunk.sip_uri, transport=trunk.transport, number=candidate.number
    )
    params = {
        "attemptId": str(candidate.attempt_id),
        "campaignId": str(candidate.campaign_id),
        "number": candidate.number,
        "name": candidate.contact_name,
        **{str(k): str(v) for k, v in candidate.contact_fields.items()},
    }
    return DialJob(
        attempt_id=candidate.attempt_id,
        target_uri=target,
        cli=candidate.cli,
        ring_timeout_s=float(candidate.ring_timeout_s),
        max_call_s=float(min(candidate.max_call_s, settings.MAX_CALL_SECONDS)),
        agent_url=candidate.agent_url,
        custom_parameters=params,
        auth_username=trunk.auth_username,
        auth_password=trunk_password(trunk.name) if trunk.auth_username else "",
        opt_out_digit=candidate.opt_out_digit,
        stream_format=candidate.stream_format,
    )
