"""A host's engine pool: N engine processes (4 calls each) and the supervisor that feeds them.

The supervisor is the host's only poller: it takes jobs for its engines from its WorkSource
(for campaigns, the same conditional UPDATE every host uses, so several hosts can share one
database) and writes each down the chosen engine's pipe, then wakes that engine with a SIP
keep-alive on its port. Idle engines therefore sleep in pjsua's poll instead of asking the
database 20 times a second each, and an engine that is handed a job dials within a millisecond.
A dead engine is restarted and its calls are closed at once.

The supervisor does not know how its children are started: `spawn` does (for campaigns,
`manage.py run_engine_process`, started by `manage.py run_engine`).
"""

from __future__ import annotations

import gc
import logging
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from telephony.pjsip import SIP_KEEPALIVE
from telephony.pool.models import EngineProcess
from telephony.pool.take import Taker
from telephony.pool.wire import LineReader, decode_status, encode_job
from telephony.pool.work import WorkSource

log = logging.getLogger(__name__)

LIVENESS_S = 0.5  # how often dead engines are looked for
IDLE_WAIT_S = 0.5  # nothing to do: wait this long for an engine to speak


@dataclass
class Child:
    port: int
    proc: subprocess.Popen[bytes]
    jobs_fd: int  # we write jobs here
    status: LineReader  # it reports here
    engine_id: int | None = None
    free: int = 0
    jobs_read: int = 0
    jobs_sent: int = 0

    @property
    def available(self) -> int:
        """Slots we may still fill: what it last reported free, less jobs it has not read yet."""
        if self.engine_id is None:
            return 0
        return self.free - (self.jobs_sent - self.jobs_read)


class EnginePool:
    def __init__(
        self,
        *,
        work: WorkSource,
        host: str,
        ports: list[int],
        spawn: Callable[[int, tuple[int, int]], subprocess.Popen[bytes]],
        poll_s: float | None = None,
    ) -> None:
        """spawn(port, (jobs read fd, status write fd)) starts one engine process."""
        self.host = host
        self.ports = ports
        self._spawn = spawn
        self.poll_s = settings.ENGINE_POLL_MS / 1000 if poll_s is None else poll_s
        self.children: dict[int, Child] = {}
        self.work = work
        self.taker = Taker(work, name="engine pool")
        self._wake = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._next_liveness = 0.0

    # -- processes --------------------------------------------------------------------------
    def start(self) -> None:
        gc.freeze()  # as in EngineHost.run: long-lived objects out of the collector's way
        for port in self.ports:
            self.children[port] = self._start_child(port)

    def _start_child(self, port: int) -> Child:
        jobs_r, jobs_w = os.pipe()
        status_r, status_w = os.pipe()
        os.set_inheritable(jobs_r, True)
        os.set_inheritable(status_w, True)
        try:
            proc = self._spawn(port, (jobs_r, status_w))
        finally:
            os.close(jobs_r)
            os.close(status_w)
        return Child(port=port, proc=proc, jobs_fd=jobs_w, status=LineReader(status_r))

    def _check_children(self) -> None:
        for port, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            log.warning("engine on port %s exited with %s; restarting", port, code)
            self._close_pipes(child)
            self._reconcile(child)
            self.children[port] = self._start_child(port)

    def _reconcile(self, child: Child) -> None:
        """A dead engine's calls are gone with it: close them now, not after a stale heartbeat."""
        stopped = EngineProcess.objects.filter(stopped_at=None)
        if child.engine_id is not None:
            stopped = stopped.filter(id=child.engine_id)
        else:
            stopped = stopped.filter(pid=child.proc.pid, sip_port=child.port, host=self.host)
        stopped.update(stopped_at=timezone.now())
        self.work.engine_died()

    @staticmethod
    def _close_pipes(child: Child) -> None:
        for fd in (child.jobs_fd, child.status.fd):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- the loop ---------------------------------------------------------------------------
    def step(self) -> None:
        """Wait for an engine to report (or the next poll), then hand out work."""
        now = time.monotonic()
        want_work = any(c.available > 0 for c in self.children.values())
        wait = max(0.0, self.taker.next_take - now) if want_work else IDLE_WAIT_S
        wait = min(wait, max(0.0, self._next_liveness - now))
        fds = [c.status.fd for c in self.children.values() if not c.status.closed]
        readable, _, _ = select.select(fds, [], [], wait)
        self._read_status(set(readable))
        try:
            if time.monotonic() >= self._next_liveness:
                self._next_liveness = time.monotonic() + LIVENESS_S
                self._check_children()
            self.dispatch()
        except DatabaseError:
            # The database went away: engines keep their calls; we reconnect next round.
            log.exception("engine pool: database error; retrying")
            connection.close()
            self.taker.next_take = time.monotonic() + 0.2

    def _read_status(self, readable: set[int]) -> None:
        for child in self.children.values():
            if child.status.fd not in readable:
                continue
            for line in child.status.read_lines():
                try:
                    status = decode_status(line)
                except ValueError:
                    log.warning("engine on port %s: bad status line %r", child.port, line)
                    continue
                if status.engine_id is not None:
                    child.engine_id = status.engine_id
                if status.free is not None:
                    child.free = status.free
                if status.jobs_read is not None:
                    child.jobs_read = status.jobs_read

    def dispatch(self) -> int:
        """Take jobs for engines with room, while there are any. Returns how many."""
        now = time.monotonic()
        if now < self.taker.next_take:
            return 0
        self.taker.next_take = now + self.poll_s
        sent = 0
        while True:
            child = max(self.children.values(), key=lambda c: c.available, default=None)
            if child is None or child.available <= 0 or child.engine_id is None:
                return sent
            if sent == 0 and not self.work.waiting():
                return sent
            taken = self.taker.take(engine_id=child.engine_id)
            if taken is None:
                return sent
            job, scopes = taken
            try:
                # A line is far below PIPE_BUF, so it arrives whole; an engine holds at most
                # 4 unread lines, so the pipe never fills.
                os.write(child.jobs_fd, encode_job(job, scopes))
            except OSError:
                log.warning("engine on port %s is gone; handing attempt %s back", child.port,
                            job.attempt_id)  # fmt: skip
                child.free = 0
                self.work.hand_back(attempt_id=job.attempt_id, engine_id=child.engine_id)
                self.taker.release(attempt_id=job.attempt_id, scopes=scopes)
                continue
            child.jobs_sent += 1
            self._wake.sendto(SIP_KEEPALIVE, (self.host, child.port))
            sent += 1

    def stop(self, *, drain_s: float) -> None:
        """Stop handing out work, let every engine finish its calls, wait for them to exit."""
        for child in self.children.values():
            try:
                os.close(child.jobs_fd)  # EOF: the engine hands back unread jobs and drains
            except OSError:
                pass
            if child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + drain_s + 10
        for child in self.children.values():
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            try:
                os.close(child.status.fd)
            except OSError:
                pass
        self._wake.close()
