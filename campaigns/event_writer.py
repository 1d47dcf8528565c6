"""An engine's database writes, on a thread of their own.

Call events end in audit entries, and audit appends queue on one lock: when many calls end at
once an engine could wait a second for its turn. Done on the engine's main loop, that wait held up
SIP, the calls' timers and the next call it was handed (bench/engine.py: taken -> INVITE p90 of
0.5 s with 52 engines). Here the writes wait instead, in order, and are retried while the
database is away, so a PostgreSQL restart costs nothing but time. pjsua2 releases the GIL while it
polls, so this thread runs while the main loop sleeps in libHandleEvents().
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

RETRY_S = 0.2


class EventWriter:
    def __init__(self, *, name: str, heartbeat: Callable[[], object], every_s: float) -> None:
        """heartbeat() is written every every_s seconds while the writer runs."""
        self.name = name
        self._heartbeat = heartbeat
        self._every_s = every_s
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"writer {name}", daemon=True)
        self._thread.start()

    def put(self, write: Callable[[], object]) -> None:
        self._queue.put(write)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, *, timeout: float) -> bool:
        """Write what is queued (retrying up to `timeout`), then stop. False if some was left."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        next_beat = 0.0
        try:
            while True:
                if time.monotonic() >= next_beat:
                    self._write(self._heartbeat)
                    next_beat = time.monotonic() + self._every_s
                try:
                    item = self._queue.get(timeout=max(0.0, next_beat - time.monotonic()))
                except queue.Empty:
                    continue
                if item is None:
                    return
                self._write(item)
        finally:
            connection.close()

    def _write(self, write: Callable[[], object]) -> None:
        """Retry while the database is unreachable; a write it refuses outright is logged and
        dropped, so one bad row cannot stop every later one."""
        while True:
            try:
                write()
                return
            except (OperationalError, InterfaceError):
                log.exception("%s: database unavailable; retrying a write", self.name)
                connection.close()
                time.sleep(RETRY_S)
            except DatabaseError:
                log.exception("%s: database refused a write; dropping it", self.name)
                connection.close()
                return
