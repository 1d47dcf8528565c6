"""One engine process as the database sees it: a pjsua2 Engine plus the loop that feeds it work,
writes its events and keeps its heartbeat. Thin: every rule lives in campaigns.services."""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from campaigns.services.dialing import (
    approved_work_waiting,
    attempt_return,
    engine_take_next,
    lease_id,
)
from campaigns.services.outcomes import attempt_record_event
from dialer.pacing import Pacer, PacingUnavailable
from telephony.engine.core import Engine
from telephony.engine.events import CallEvent
from telephony.models import EngineProcess
from telephony.pjsip import MAX_CALLS_PER_PROCESS

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
IDLE_POLL_S = 0.05
OVER_LIMIT_CODES = frozenset({403, 503})
IDLE_POLL_MS = 50


def _bridge_factory() -> object:
    from telephony.bridge.runner import BridgeRunner

    return BridgeRunner()


class EngineHost:
    def __init__(
        self, *, host: str, port: int, only_attempt: int | None = None, log_level: int = 1
    ) -> None:
        self.only_attempt = only_attempt
        self._outbox: collections.deque[CallEvent] = collections.deque()
        self.engine = Engine(
            host=host,
            port=port,
            on_event=self._outbox.append,
            bridge_factory=_bridge_factory,
            log_level=log_level,
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
        self._last_heartbeat = 0.0
        self._next_poll = 0.0
        # Distributed pacing needs Redis; the embedded set-up paces per dispatch tick only.
        self.pacer = (
            Pacer.from_url(settings.REDIS_URL, guard_ms=settings.PACING_GUARD_MS)
            if settings.REDIS_URL
            else None
        )
        self._leases: dict[int, list[str]] = {}  # attempt id -> pacing scopes it holds
        self._hold_until = 0.0  # after pjsua said it had no slot: wait a moment

    def take_work(self) -> bool:
        """Dial one approved attempt if a slot is free. True if a call was started."""
        if self.draining or self.engine.free_slots() <= 0 or time.monotonic() < self._hold_until:
            return False
        try:
            taken = engine_take_next(
                engine_id=self.record.pk,
                only_attempt=self.only_attempt,
                pacer=self.pacer,
                on_paced=self._paced,
            )
        except PacingUnavailable:
            # Fail closed: without the shared limits we cannot know the trunk has room.
            log.warning("engine %s: pacing unavailable; not dialing", self.record.name)
            return False
        if taken is None:
            return False
        job, scopes = taken
        if scopes:
            self._leases[job.attempt_id] = scopes
        if self.engine.dial(job) == "busy":
            attempt_return(attempt_id=job.attempt_id, engine_id=self.record.pk)
            self._release(job.attempt_id)
            self._hold_until = time.monotonic() + 0.1  # let pjsua finish freeing its slot
            return False
        return True

    def _trunk_feedback(self, event: CallEvent) -> None:
        """503/403 from a trunk slow it down (instead of burning contacts); progress clears it."""
        trunk = next(
            (s for s in self._leases.get(event.attempt_id, []) if s.startswith("trunk:")), None
        )
        if trunk is None or self.pacer is None:
            return
        try:
            if event.kind == "ended" and event.sip_code in OVER_LIMIT_CODES:
                hold_ms = self.pacer.backoff(scope=trunk)
                log.warning("%s answered %s: holding it for %d ms", trunk, event.sip_code, hold_ms)
            elif event.kind in ("ringing", "answered"):
                self.pacer.clear_backoff(scope=trunk)
        except PacingUnavailable:
            log.warning("%s: back-off not recorded (pacing unavailable)", trunk)

    def _paced(self, retry_after_ms: int) -> None:
        # Poll again right when the pacer says a slot frees, not at the next idle tick.
        self._next_poll = min(self._next_poll, time.monotonic() + retry_after_ms / 1000)

    def _release(self, attempt_id: int) -> None:
        scopes = self._leases.pop(attempt_id, None)
        if scopes and self.pacer is not None:
            try:
                self.pacer.release(lease_id=lease_id(attempt_id), scopes=scopes)
            except PacingUnavailable:
                log.warning("attempt %s: lease not released; it expires", attempt_id)

    def flush_events(self) -> None:
        """Write engine events in order; on a database error keep them for the next round."""
        while self._outbox:
            event = self._outbox[0]
            attempt_record_event(event=event)
            if event.kind in ("ended", "ringing", "answered"):
                self._trunk_feedback(event)
            if event.kind == "ended":
                self._release(event.attempt_id)
            self._outbox.popleft()

    def heartbeat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < HEARTBEAT_S:
            return
        self._last_heartbeat = now
        EngineProcess.objects.filter(id=self.record.pk).update(
            heartbeat_at=timezone.now(), live_calls=self.engine.live_calls, draining=self.draining
        )
        if self.pacer is not None and self._leases:
            # Our live calls keep their channels; a dead engine's leases simply expire.
            scopes = sorted({scope for held in self._leases.values() for scope in held})
            try:
                self.pacer.refresh(lease_ids=[lease_id(a) for a in self._leases], scopes=scopes)
            except PacingUnavailable:
                log.warning("engine %s: could not refresh pacing leases", self.record.name)

    def step(self) -> bool:
        """One round of the loop. True if anything happened."""
        # SIP and media wake the poll at once whatever the timeout; the timeout only paces our own
        # checks, so an idle engine sleeps longer (52 idle engines at 10 ms cost ~1 core).
        wait_ms = max(1, min(IDLE_POLL_MS, int((self._next_poll - time.monotonic()) * 1000)))
        busy = self.engine.step(10 if self.engine.live_calls else wait_ms)
        try:
            self.flush_events()
            now = time.monotonic()
            if self.engine.free_slots() > 0 and now >= self._next_poll:
                self._next_poll = now + IDLE_POLL_S
                while approved_work_waiting() and self.take_work():
                    busy = True
            self.heartbeat()
        except DatabaseError:
            # The database went away: keep calls up, keep events queued, reconnect next round.
            log.exception("engine %s: database error; retrying", self.record.name)
            connection.close()
            time.sleep(0.2)
        return busy

    def run(self, *, should_stop: Callable[[], bool], drain_s: float = 30.0) -> None:
        """Loop until asked to stop, then stop taking work, let live calls end, and shut down."""
        while not should_stop():
            self.step()
        self.draining = True
        self.heartbeat(force=True)
        deadline = time.monotonic() + drain_s
        while self.engine.live_calls and time.monotonic() < deadline:
            self.step()
        self.close()

    def close(self) -> None:
        self.engine.shutdown()
        close_old_connections()
        for _ in range(20):
            try:
                self.flush_events()
                EngineProcess.objects.filter(id=self.record.pk).update(
                    stopped_at=timezone.now(), live_calls=0, draining=True
                )
                return
            except DatabaseError:
                log.exception("engine %s: could not record shutdown; retrying", self.record.name)
                connection.close()
                time.sleep(0.5)
