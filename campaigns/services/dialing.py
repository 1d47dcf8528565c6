"""The dial pipeline as small steps: dispatch due contacts, claim and check an attempt, hand it to
an engine, record what the engine reports, and put lost work back.

Every state change is a conditional UPDATE that must change exactly one row; a step that loses the
race does nothing. That is what makes a redelivered Celery task, a restarted worker or two engines
looking at the same row harmless: an attempt is INVITEd at most once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import (
    AttemptStatus,
    CallAttempt,
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
)
from campaigns.models.attempt import FINAL_STATUSES
from campaigns.services.outcomes import attempt_close
from compliance.decision_record import record_decision
from compliance.policy import in_window
from compliance.services import Decision, decide
from dialer.pacing import Limit, Pacer
from telephony.engine.events import DialJob
from telephony.models import EngineProcess

log = logging.getLogger(__name__)

LIVE_STATUSES = (
    AttemptStatus.QUEUED,
    AttemptStatus.DIALING,
    AttemptStatus.RINGING,
    AttemptStatus.ANSWERED,
)


# -- dispatch: due contacts -> queued attempts ---------------------------------------------------
def engine_free_slots(*, now: dt.datetime) -> int:
    """Free call slots across live engines, less approved attempts no engine has taken yet."""
    fresh = now - dt.timedelta(seconds=settings.ENGINE_HEARTBEAT_STALE_S)
    engines = EngineProcess.objects.filter(heartbeat_at__gte=fresh, stopped_at=None, draining=False)
    slots = sum(e.slots - e.live_calls for e in engines)
    waiting = CallAttempt.objects.filter(
        status__in=(AttemptStatus.QUEUED, AttemptStatus.DIALING), engine=None
    ).count()
    return max(0, slots - waiting)


def _per_tick(cps: float) -> int:
    return max(1, math.floor(cps * settings.DIALER_TICK_SECONDS))


FULL_DAY = (dt.time(0, 0), dt.time(23, 59, 59))


def campaign_open_zones(*, campaign: Campaign, now: dt.datetime) -> list[str] | None:
    """The time zones, among the campaign's waiting contacts, where it is now inside the
    campaign's daily window (half-open, callee's local time); None: the window is all day."""
    window = (campaign.window_start, campaign.window_end)
    if window == FULL_DAY:
        return None
    zones = (
        Contact.objects.filter(campaign=campaign, status=ContactStatus.PENDING)
        .values_list("time_zone", flat=True)
        .distinct()
    )
    return [z for z in zones if in_window(window, now.astimezone(_zone(z)).time())]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or settings.COMPLIANCE_DEFAULT_TZ)
    except (ValueError, KeyError):  # not a zone this machine knows: the jurisdiction's
        return ZoneInfo(settings.COMPLIANCE_DEFAULT_TZ)


def dispatch_due(*, now: dt.datetime | None = None) -> list[int]:
    """Queue attempts for due contacts of running campaigns, within the campaign's window and
    concurrency, its trunk's channels, calls-per-tick of both, and the engines' free slots.

    Returns the new attempt ids; the caller enqueues them once the transaction has committed.
    """
    now = now or timezone.now()
    capacity = engine_free_slots(now=now)
    trunk_room: dict[int, int] = {}
    created: list[int] = []
    running = Campaign.objects.filter(status=CampaignStatus.RUNNING).select_related("trunk")
    for campaign in running.order_by("id"):
        if capacity <= 0:
            break
        zones = campaign_open_zones(campaign=campaign, now=now)
        if zones == []:
            continue  # outside the window for every callee waiting
        trunk = campaign.trunk
        if not trunk.enabled:
            continue
        if trunk.pk not in trunk_room:
            on_trunk = CallAttempt.objects.filter(
                campaign__trunk=trunk, status__in=LIVE_STATUSES
            ).count()
            trunk_room[trunk.pk] = min(trunk.max_channels - on_trunk, _per_tick(trunk.max_cps))
        live = CallAttempt.objects.filter(campaign=campaign, status__in=LIVE_STATUSES).count()
        budget = min(
            capacity,
            trunk_room[trunk.pk],
            campaign.max_concurrent - live,
            _per_tick(campaign.max_cps),
        )
        if budget <= 0:
            continue
        new_ids = _queue_for_campaign(campaign=campaign, budget=budget, now=now, zones=zones)
        capacity -= len(new_ids)
        trunk_room[trunk.pk] -= len(new_ids)
        created.extend(new_ids)
        if not new_ids:
            campaign_complete_if_done(campaign_id=campaign.pk)
    return created


def _queue_for_campaign(
    *, campaign: Campaign, budget: int, now: dt.datetime, zones: list[str] | None
) -> list[int]:
    due = Contact.objects.filter(campaign=campaign, status=ContactStatus.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    if zones is not None:
        due = due.filter(time_zone__in=zones)
    rows = due.order_by(F("next_attempt_at").asc(nulls_first=True), "id").values_list(
        "id", "number", "attempts"
    )[:budget]
    created: list[int] = []
    for contact_id, number, attempts in rows:
        with transaction.atomic():
            taken = Contact.objects.filter(id=contact_id, status=ContactStatus.PENDING).update(
                status=ContactStatus.IN_PROGRESS, attempts=attempts + 1
            )
            if taken != 1:
                continue  # another dispatcher got it
            attempt = CallAttempt.objects.create(
                campaign=campaign,
                contact_id=contact_id,
                attempt_number=attempts + 1,
                number=number,
                queued_at=now,
            )
        created.append(attempt.pk)
    return created


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """A running campaign with no contact left to dial is completed."""
    if Contact.objects.filter(
        campaign_id=campaign_id, status__in=(ContactStatus.PENDING, ContactStatus.IN_PROGRESS)
    ).exists():
        return False
    return (
        Campaign.objects.filter(id=campaign_id, status=CampaignStatus.RUNNING).update(
            status=CampaignStatus.COMPLETED, finished_at=timezone.now()
        )
        == 1
    )


# -- worker: claim, check, approve ---------------------------------------------------------------
def attempt_claim(*, attempt_id: int) -> str | None:
    """queued -> dialing for exactly one worker; returns its claim token, or None if it lost."""
    token = uuid.uuid4().hex
    changed = CallAttempt.objects.filter(id=attempt_id, status=AttemptStatus.QUEUED).update(
        status=AttemptStatus.DIALING, claim_token=token, claimed_at=timezone.now()
    )
    return token if changed == 1 else None


def _choose_cli(*, campaign: Campaign, attempt_id: int) -> str:
    usable = campaign.caller_ids.filter(active=True, archived_at=None)
    clis = sorted(usable.values_list("number", flat=True))
    return clis[attempt_id % len(clis)] if clis else ""


def attempt_check(
    *, attempt_id: int, token: str, now: dt.datetime | None = None
) -> Decision | None:
    """Run the last-moment compliance check on a claimed attempt and record it.

    Allowed: the attempt is approved for an engine. Blocked, or the check could not run: the
    attempt is closed as blocked and nothing is dialed (compliance fails closed). None if the
    claim was lost meanwhile.
    """
    now = now or timezone.now()
    attempt = CallAttempt.objects.select_related("campaign__sender").get(id=attempt_id)
    campaign = attempt.campaign
    cli = _choose_cli(campaign=campaign, attempt_id=attempt_id)
    try:
        decision = decide(
            number=attempt.number,
            purpose=campaign.purpose,
            category=campaign.category,
            sender_dlt_id=campaign.sender.dlt_entity_id,
            sector=campaign.sender.sector,
            cli=cli,
            at=now,
            owned_clis=set(
                campaign.sender.caller_ids.filter(active=True, archived_at=None).values_list(
                    "number", flat=True
                )
            ),
        )
    except Exception:
        log.exception("attempt %s: compliance check could not run; not dialing", attempt_id)
        decision = Decision(
            number=attempt.number, purpose=campaign.purpose, reasons=("check_unavailable",)
        )
    with transaction.atomic():
        record_decision(
            decision=decision,
            attempt_id=attempt_id,
            campaign_id=campaign.pk,
            sender_dlt_id=campaign.sender.dlt_entity_id,
        )
        claimed = CallAttempt.objects.filter(
            id=attempt_id, status=AttemptStatus.DIALING, claim_token=token
        )
        if decision.allowed:
            if claimed.update(approved_at=now, cli=cli) != 1:
                transaction.set_rollback(True)
                return None
        else:
            if (
                claimed.update(
                    status=AttemptStatus.BLOCKED,
                    disposition="blocked",
                    reasons=list(decision.reasons),
                    cli=cli,
                    ended_at=now,
                )
                != 1
            ):
                transaction.set_rollback(True)
                return None
            attempt_close(attempt_id=attempt_id, now=now)
    return decision


def attempt_process(*, attempt_id: int) -> str:
    """The worker's whole job for one attempt: claim it, then check it. Safe to run twice."""
    status = (
        Campaign.objects.filter(attempts__id=attempt_id).values_list("status", flat=True).first()
    )
    if status == CampaignStatus.PAUSED:
        return "paused"  # left queued: the reaper sends it again, and it goes on after resume
    token = attempt_claim(attempt_id=attempt_id)
    if token is None:
        return "not_claimed"
    decision = attempt_check(attempt_id=attempt_id, token=token)
    if decision is None:
        return "claim_lost"
    return "approved" if decision.allowed else "blocked"


# -- engine: take approved work ------------------------------------------------------------------
def _trunk_password(name: str) -> str:
    from dialer.env import env_str

    return env_str(f"TRUNK_{name.upper().replace('-', '_')}_PASSWORD", "")


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
# supervisor runs it before every call it hands out (bench/engine.py).
_CANDIDATES_SQL = """
SELECT a.id, a.number, a.cli, a.approved_at < %s,
       c.id, c.max_cps, c.max_concurrent, c.ring_timeout_s, c.max_call_s, c.agent_url,
       c.opt_out_digit, c.stream_format, p.name, p.fields,
       (SELECT daily_max FROM campaigns_callerid WHERE number = a.cli),
       t.id, t.name, t.sip_uri, t.transport, t.auth_username, t.max_cps, t.max_channels,
       f.id, f.name, f.sip_uri, f.transport, f.auth_username, f.max_cps, f.max_channels, f.enabled
FROM campaigns_callattempt a
JOIN campaigns_campaign c ON c.id = a.campaign_id
JOIN campaigns_contact p ON p.id = a.contact_id
JOIN campaigns_trunk t ON t.id = c.trunk_id
LEFT JOIN campaigns_trunk f ON f.id = c.fallback_trunk_id
WHERE a.status = %s AND a.engine_id IS NULL AND a.approved_at IS NOT NULL
  AND c.status <> %s AND (%s = 0 OR a.id = %s)
ORDER BY a.approved_at, a.id
LIMIT 5
"""


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
        rows = cursor.fetchall()
    found = []
    for row in rows:
        fields = row[13]
        if isinstance(fields, str):  # SQLite hands JSON back as text
            fields = json.loads(fields or "{}")
        trunks = [TrunkRow(*row[15:22])]
        if row[22] is not None and row[29]:
            trunks.append(TrunkRow(*row[22:29]))
        found.append(
            Candidate(
                attempt_id=row[0],
                number=row[1],
                cli=row[2],
                stale=bool(row[3]),
                campaign_id=row[4],
                campaign_cps=row[5],
                campaign_channels=row[6],
                ring_timeout_s=row[7],
                max_call_s=row[8],
                agent_url=row[9],
                opt_out_digit=row[10],
                stream_format=row[11],
                contact_name=row[12],
                contact_fields=fields or {},
                cli_daily_max=row[14],
                trunks=tuple(trunks),
            )
        )
    return found


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


def lease_id(attempt_id: int) -> str:
    return f"attempt:{attempt_id}"


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
    host = trunk.sip_uri.removeprefix("sips:").removeprefix("sip:")
    target = f"sip:{candidate.number}@{host}"
    if trunk.transport != "udp":
        target += f";transport={trunk.transport}"
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
        auth_password=_trunk_password(trunk.name) if trunk.auth_username else "",
        opt_out_digit=candidate.opt_out_digit,
        stream_format=candidate.stream_format,
    )


# -- reaper: put lost work back ------------------------------------------------------------------
def reap_stale(*, now: dt.datetime | None = None) -> list[int]:
    """Recover from dead workers and engines. Returns queued attempt ids to (re-)enqueue.

    - a claim whose worker vanished before deciding goes back to the queue (nothing was dialed:
      engines only take approved attempts);
    - an attempt held by an engine whose heartbeat stopped is closed as failed (its INVITE may
      have gone out, so it is never dialed again; the retry policy decides about the contact);
    - queued attempts older than a few ticks are returned so their Celery task is sent again.
    """
    now = now or timezone.now()
    claim_stale = now - dt.timedelta(seconds=settings.DIAL_CLAIM_STALE_S)
    CallAttempt.objects.filter(
        status=AttemptStatus.DIALING, approved_at=None, engine=None, claimed_at__lt=claim_stale
    ).update(status=AttemptStatus.QUEUED, claim_token="", claimed_at=None, queued_at=now)

    dead_before = now - dt.timedelta(seconds=settings.ENGINE_HEARTBEAT_STALE_S)
    dead_engines = EngineProcess.objects.filter(
        Q(heartbeat_at__lt=dead_before) | ~Q(stopped_at=None)
    )
    orphans = CallAttempt.objects.filter(engine__in=dead_engines).exclude(status__in=FINAL_STATUSES)
    for attempt_id in orphans.values_list("id", flat=True):
        with transaction.atomic():
            closed = (
                CallAttempt.objects.filter(id=attempt_id)
                .exclude(status__in=FINAL_STATUSES)
                .update(
                    status=AttemptStatus.FAILED,
                    disposition="failed",
                    ended_at=now,
                    hangup_cause="engine_lost",
                )
            )
            if closed == 1:
                attempt_close(attempt_id=attempt_id, now=now)
    lost = now - dt.timedelta(seconds=settings.DIAL_REQUEUE_AFTER_S)
    resend = list(
        CallAttempt.objects.filter(status=AttemptStatus.QUEUED, queued_at__lt=lost).values_list(
            "id", flat=True
        )
    )
    CallAttempt.objects.filter(id__in=resend, status=AttemptStatus.QUEUED).update(queued_at=now)
    return resend
