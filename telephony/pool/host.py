"""One engine process as the database sees it: a pjsua2 Engine plus the loop that feeds it work,
writes its events and keeps its heartbeat. Thin: every rule lives behind its WorkSource.

Work arrives one of two ways. In a pool (`run_engine --processes N`) the supervisor is the host's
only poller: it takes jobs for its engines and writes them down a pipe (telephony.pool.wire),
so N idle engines sleep instead of polling the database N times over. Alone (`dial`) the engine
polls for work itself. Either way the main loop never waits on the database for a call's events:
those are written by an EventWriter thread. While that writer cannot record (a write failing,
see telephony.pool.event_writer) the engine takes no new call: it reports no free slot to its
supervisor, hands back jobs already on their way, and stops polling; live calls go on.
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import socket
import time
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from dialer.pacing import PacingUnavailable, lease_id
from telephony.engine.core import Engine
from telephony.engine.events import CallEvent, DialJob, EventKind
from telephony.pjsip import MAX_CALLS_PER_PROCESS
from telephony.pool.event_writer import EventWriter
from telephony.pool.models import EngineProcess
from telephony.pool.take import Taker
from telephony.pool.wire import LineReader, Status, decode_job, encode_status
from telephony.pool.work import WorkSource

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
OVER_LIMIT_CODES = frozenset({403, 503})
IDLE_POLL_MS = 50  # poll mode (no supervisor): how often an idle engine looks for work
# A fed engine is woken by its supervisor; it only wakes on its own for its calls' timers (ring
# timeout, maximum length, the agent hanging up) and to refresh its pacing leases.
FED_IDLE_MS = 250
CLOSE_WRITES_S = 30.0  # at shutdown, how long queued writes may wait for the database


def _bridge_factory(sip_port: int) -> Callable[[], object]:
    def make() -> object:
        from telephony.bridge.runner import BridgeRunner

        # A fixed REST port is a base, like the SIP ports: process i of a pool serves base + i.
        base = settings.ENGINE_REST_PORT
        rest_port = base + (sip_port - settings.ENGINE_BASE_PORT) if base else 0
        return BridgeRunner(
            rest_host=settings.ENGINE_REST_HOST,
            rest_port=max(0, rest_port),
            rest_secret=settings.ENGINE_REST_SECRET.encode(),
            rest_max_conn_per_client=settings.ENGINE_REST_MAX_CONN_PER_CLIENT,
            idle_timeout=settings.AGENT_IDLE_TIMEOUT_S,
            ping_interval=settings.AGENT_PING_INTERVAL_S,
        )

    return make


class EngineHost:
    def __init__(
        self,
        *,
        work: WorkSource,
        host: str,
        port: int,
        only_attempt: int | None = None,
        log_level: int = 1,
        feed: tuple[int, int] | None = None,
    ) -> None:
        """feed: (read fd for jobs, write fd for status) from a pool supervisor; None: poll."""
        self.work = work
        self.only_attempt = only_attempt
        self._outbox: collections.deque[CallEvent] = collections.deque()
        self.engine = Engine(
            host=host,
            port=port,
            on_event=self._outbox.append,
            bridge_factory=_bridge_factory(port),
            log_level=log_level,
            relay_media=settings.ENGINE_BRIDGE_MEDIA == "relay",
            sip_allow=settings.ENGINE_SIP_ALLOW,
        )
        self.record = EngineProcess.objects.create(
            name=f"{socket.gethostname()}:{port}:{os.getpid()}:{time.time_ns()}",
            host=host,
            pid=os.getpid(),
            sip_port=port,
            slots=MAX_CALLS_PER_PROCESS,
            heartbeat_at=timezone.now(),
        )
        self.draining = False
        self._next_refresh = 0.0
        # Poll mode takes through it; both modes release and refresh leases with its pacer.
        self.taker = Taker(work, name=f"engine {self.record.name}")
        self._leases: dict[int, list[str]] = {}  # attempt id -> pacing scopes it holds
        self._hold_until = 0.0  # after pjsua said it had no slot: wait a moment
        self.writer = EventWriter(
            name=f"engine {self.record.name}", heartbeat=self._write_heartbeat, every_s=HEARTBEAT_S
        )
        self._jobs = LineReader(feed[0]) if feed else None
        self._status_fd = feed[1] if feed else None
        self._jobs_read = 0
        self._reported: tuple[int, int] | None = None
        self._writer_was_healthy = True
        self._report(Status(engine_id=self.record.pk))
        if feed:
            # Fed, the main loop never touches the database again: one connection per engine
            # (the writer's), so a 52-engine pool fits PostgreSQL's default 100 connections.
            connection.close()

    @property
    def feed_closed(self) -> bool:
        """The supervisor is gone: nobody will send more work."""
        return self._jobs is not None and self._jobs.closed

    # -- work in ------------------------------------------------------------------------------
    def take_work(self) -> bool:
        """Poll mode: dial one approved attempt if a slot is free. True if a call was started."""
        if self.draining or self.engine.free_slots() <= 0 or time.monotonic() < self._hold_until:
            return False
        if not self.can_record():
            return False
        taken = self.taker.take(engine_id=self.record.pk, only_attempt=self.only_attempt)
        if taken is None:
            return False
        return self._dial(*taken)

    def take_fed(self) -> bool:
        """Fed mode: dial the jobs the supervisor sent; hand back what cannot be dialed now."""
        assert self._jobs is not None
        busy = False
        for line in self._jobs.read_lines():
            self._jobs_read += 1
            try:
                job, scopes = decode_job(line)
            except ValueError:
                log.exception("engine %s: ignoring a bad job line", self.record.name)
                continue
            # Sent before our last report reached the supervisor, or before the writer failed.
            if self.draining or self.engine.free_slots() <= 0 or not self.can_record():
                self._leases[job.attempt_id] = scopes
                self._hand_back(job.attempt_id)
                continue
            busy = self._dial(job, scopes) or busy
        if self._jobs.closed and not self.draining:
            log.warning("engine %s: its supervisor is gone; draining", self.record.name)
            self.draining = True
        return busy

    def _dial(self, job: DialJob, scopes: list[str]) -> bool:
        if scopes:
            self._leases[job.attempt_id] = scopes
        if self.engine.dial(job) == "busy":
            self._hand_back(job.attempt_id)
            self._hold_until = time.monotonic() + 0.1  # let pjsua finish freeing its slot
            return False
        return True

    def can_record(self) -> bool:
        """Whether a new call's events would be written; logs each change."""
        healthy = self.writer.healthy
        if healthy != self._writer_was_healthy:
            self._writer_was_healthy = healthy
            if healthy:
                log.warning("engine %s: its writer records again; taking calls", self.record.name)
            else:
                log.error("engine %s: its writer cannot record; taking no new call",
                          self.record.name)  # fmt: skip
        return healthy

    def _hand_back(self, attempt_id: int) -> None:
        self.writer.put(
            partial(self.work.hand_back, attempt_id=attempt_id, engine_id=self.record.pk)
        )
        self._release(attempt_id)

    # -- events out ---------------------------------------------------------------------------
    def handle_events(self) -> None:
        """Pacing feedback at once (Redis), the database writes queued for the writer thread."""
        while self._outbox:
            event = self._outbox.popleft()
            if event.kind in (EventKind.ENDED, EventKind.RINGING, EventKind.ANSWERED):
                self._trunk_feedback(event)
            if event.kind == EventKind.ENDED:
                self._release(event.attempt_id)
            record = partial(self.work.record_event, event=event)
            if event.kind == EventKind.ENDED:
                # Should its record be given up on, the call must still never be dialed again.
                lost = partial(self.work.record_unrecorded_end, event=event)
                self.writer.put(record, on_dead_letter=lost)
            else:
                self.writer.put(record)

    def _trunk_feedback(self, event: CallEvent) -> None:
        """503/403 from a trunk slow it down (instead of burning contacts); progress clears it."""
        trunk = next(
            (s for s in self._leases.get(event.attempt_id, []) if s.startswith("trunk:")), None
        )
        pacer = self.taker.pacer
        if trunk is None or pacer is None:
            return
        try:
            if event.kind == EventKind.ENDED and event.sip_code in OVER_LIMIT_CODES:
                hold_ms = pacer.backoff(scope=trunk)
                log.warning("%s answered %s: holding it for %d ms", trunk, event.sip_code, hold_ms)
            elif event.kind in (EventKind.RINGING, EventKind.ANSWERED):
                pacer.clear_backoff(scope=trunk)
        except PacingUnavailable:
            log.warning("%s: back-off not recorded (pacing unavailable)", trunk)

    def _release(self, attempt_id: int) -> None:
        scopes = self._leases.pop(attempt_id, None)
        if scopes:
            self.taker.release(attempt_id=attempt_id, scopes=scopes)

    # -- liveness -----------------------------------------------------------------------------
    def _write_heartbeat(self) -> None:
        """On the writer thread, every HEARTBEAT_S: the reaper's proof that we are alive."""
        EngineProcess.objects.filter(id=self.record.pk).update(
            heartbeat_at=timezone.now(), live_calls=self.engine.live_calls, draining=self.draining
        )

    def _write_stopped(self) -> None:
        EngineProcess.objects.filter(id=self.record.pk).update(
            stopped_at=timezone.now(), live_calls=0, draining=True
        )

    def refresh_leases(self) -> None:
        """Our live calls keep their channels; a dead engine's leases simply expire."""
        now = time.monotonic()
        pacer = self.taker.pacer
        if now < self._next_refresh or pacer is None or not self._leases:
            return
        self._next_refresh = now + HEARTBEAT_S
        scopes = sorted({scope for held in self._leases.values() for scope in held})
        try:
            pacer.refresh(lease_ids=[lease_id(a) for a in self._leases], scopes=scopes)
        except PacingUnavailable:
            log.warning("engine %s: could not refresh pacing leases", self.record.name)

    def _report(self, status: Status) -> None:
        if self._status_fd is None:
            return
        try:
            os.write(self._status_fd, encode_status(status))
        except OSError:  # the supervisor is gone; the job pipe's EOF will drain us
            self._status_fd = None

    def report_capacity(self) -> None:
        """Tell the supervisor our free slots whenever they, or the jobs we have read, change."""
        held = self.draining or time.monotonic() < self._hold_until or not self.can_record()
        free = 0 if held else self.engine.free_slots()
        if (free, self._jobs_read) != self._reported:
            self._reported = (free, self._jobs_read)
            self._report(Status(free=free, jobs_read=self._jobs_read))

    # -- the loop -----------------------------------------------------------------------------
    def step(self) -> bool:
        """One round of the loop. True if anything happened."""
        # SIP and media wake the poll at once whatever the timeout; the timeout only paces our own
        # checks, so an idle engine sleeps longer (52 idle engines at 10 ms cost ~1 core).
        if self._jobs is not None:
            timeout = self.engine.timers_due_ms(limit_ms=FED_IDLE_MS)
        elif self.engine.live_calls:
            timeout = 10
        else:
            due_ms = int((self.taker.next_take - time.monotonic()) * 1000)
            timeout = max(1, min(IDLE_POLL_MS, due_ms))
        busy = self.engine.step(timeout)
        self.handle_events()
        if self._jobs is not None:
            busy = self.take_fed() or busy
            self.report_capacity()
        else:
            busy = self._poll_for_work() or busy
        self.refresh_leases()
        return busy

    def _poll_for_work(self) -> bool:
        now = time.monotonic()
        if self.engine.free_slots() <= 0 or now < self.taker.next_take:
            return False
        self.taker.next_take = now + IDLE_POLL_MS / 1000
        busy = False
        try:
            while self.work.waiting() and self.take_work():
                busy = True
        except DatabaseError:
            # The database went away: keep calls up, keep events queued, reconnect next round.
            log.exception("engine %s: database error; retrying", self.record.name)
            connection.close()
            self.taker.next_take = now + 0.2
        return busy

    def run(self, *, should_stop: Callable[[], bool], drain_s: float = 30.0) -> None:
        """Loop until asked to stop, then stop taking work, let live calls end, and shut down."""
        # Django, pjsua2 and their modules are ~10^5 long-lived objects: out of the collector's
        # sight, a full collection no longer stalls the loop (and the call it was handed).
        gc.freeze()
        while not should_stop() and not self.feed_closed:
            self.step()
        self.draining = True
        if self._jobs is not None:
            self.report_capacity()
        deadline = time.monotonic() + drain_s
        while self.engine.live_calls and time.monotonic() < deadline:
            self.step()
        self.close()

    def _hand_back_unread(self, wait_s: float = 3.0) -> None:
        """Stopping: give back every job still in the pipe, until the supervisor closes it."""
        if self._jobs is None:
            return
        self.draining = True
        deadline = time.monotonic() + wait_s
        while not self._jobs.closed and time.monotonic() < deadline:
            self.take_fed()
            time.sleep(0.02)
        self.take_fed()

    def close(self) -> None:
        self._hand_back_unread()
        self.engine.shutdown()
        self.handle_events()
        self.writer.put(self._write_stopped)
        if not self.writer.close(timeout=CLOSE_WRITES_S):
            left = self.writer.pending
            log.error("engine %s: %d writes not done at exit", self.record.name, left)
        close_old_connections()
