"""An engine's database writes, on a thread of their own.

Call events end in audit entries, and audit appends queue on one lock: when many calls end at
once an engine could wait a second for its turn. Done on the engine's main loop, that wait held up
SIP, the calls' timers and the next call it was handed (bench/engine.py: taken -> INVITE p90 of
0.5 s with 52 engines). Here the writes wait instead, in order, and are retried while the
database is away, so a PostgreSQL restart costs nothing but time. pjsua2 releases the GIL while it
polls, so this thread runs while the main loop sleeps in libHandleEvents().

No write may stop this thread (issue #10): one that raised a ValueError once ended it silently,
the heartbeat stopped with it, the reaper closed the engine's live calls as engine_lost and their
contacts were called again. Now a write that fails for any reason but an unreachable database is
logged with its traceback and tried again (MAX_TRIES, backing off, the heartbeat still written in
between); then it goes to a dead-letter file, one JSON line each, for someone to look at and
replay, and its `on_dead_letter` fallback, if it has one, is run. While a write is failing, and
after one failed until a later write succeeds, `healthy` is False and the engine takes no new
call (telephony.pool.host).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

RETRY_S = 0.2  # the database is unreachable: try again this often, for as long as it takes
MAX_TRIES = 5  # any other failure: tries before the write is dead-lettered...
BACKOFF_S = 0.2  # ...waiting 0.2, 0.4, 0.8 and 1.6 s in between


def default_dead_letters() -> Path:
    return Path(settings.VAR_DIR) / "dead-letters" / "engine-writes.jsonl"


class EventWriter:
    def __init__(
        self,
        *,
        name: str,
        heartbeat: Callable[[], object],
        every_s: float,
        dead_letters: Path | None = None,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        """heartbeat() is written every every_s seconds while the writer runs; writes that keep
        failing are appended to dead_letters (default var/dead-letters/engine-writes.jsonl)."""
        self.name = name
        self._heartbeat = heartbeat
        self._every_s = every_s
        self._backoff_s = backoff_s
        self.dead_letters = dead_letters or default_dead_letters()
        self.dead_lettered = 0  # writes given up on since start
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._next_beat = 0.0
        self._last_ok = True  # the last write (heartbeat or event) went through
        self._retrying = False  # an event write failed and waits for its next try
        self._thread = threading.Thread(target=self._run, name=f"writer {name}", daemon=True)
        self._thread.start()

    def put(
        self, write: Callable[[], object], *, on_dead_letter: Callable[[], object] | None = None
    ) -> None:
        """Queue write(); if it is given up on, on_dead_letter() is tried once instead."""
        self._queue.put(_Item(write, on_dead_letter))

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def healthy(self) -> bool:
        """Whether a new call's events would be recorded: no write is failing, the last one went
        through, and the thread runs."""
        return self._last_ok and not self._retrying and self._thread.is_alive()

    def close(self, *, timeout: float) -> bool:
        """Write what is queued (retrying up to `timeout`), then stop. False if some was left."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                self._beat_if_due()
                try:
                    item = self._queue.get(timeout=max(0.0, self._next_beat - time.monotonic()))
                except queue.Empty:
                    continue
                if item is None:
                    return
                self._write(item)
        finally:
            connection.close()

    def _beat_if_due(self) -> None:
        if time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + self._every_s
        try:
            self._until_reachable(self._heartbeat)
        except Exception:
            # Not retried: the next beat is due in every_s anyway.
            self._failed()
            log.exception("%s: heartbeat not written", self.name)
        else:
            self._last_ok = True

    def _write(self, item: _Item) -> None:
        write = item.write
        for tries in range(1, MAX_TRIES + 1):
            try:
                self._until_reachable(write)
            except Exception as exc:
                self._failed()
                # A row the database refused (integrity, data) would be refused again.
                if isinstance(exc, DatabaseError) or tries == MAX_TRIES:
                    log.exception("%s: a write failed %d time(s); dead-lettering it to %s",
                                  self.name, tries, self.dead_letters)  # fmt: skip
                    self._retrying = False
                    self._dead_letter(write, exc, tries)
                    if item.on_dead_letter is not None:
                        self._fallback(item.on_dead_letter)
                    return
                wait_s = self._backoff_s * 2 ** (tries - 1)
                log.exception("%s: a write failed (try %d of %d); trying again in %.1f s",
                              self.name, tries, MAX_TRIES, wait_s)  # fmt: skip
                self._retrying = True
                self._pause(wait_s)
            else:
                self._last_ok = True
                self._retrying = False
                return

    def _until_reachable(self, write: Callable[[], object]) -> None:
        """write(), retried for as long as the database cannot be reached; raises anything else."""
        while True:
            try:
                write()
                return
            except (OperationalError, InterfaceError):
                self._last_ok = False
                log.exception("%s: database unavailable; retrying a write", self.name)
                connection.close()
                time.sleep(RETRY_S)

    def _fallback(self, fallback: Callable[[], object]) -> None:
        try:
            self._until_reachable(fallback)
        except Exception:
            self._failed()
            log.exception("%s: the fallback of a dead-lettered write failed too", self.name)

    def _failed(self) -> None:
        self._last_ok = False
        # Whatever went wrong may have left the connection mid-transaction: start clean.
        connection.close()

    def _pause(self, seconds: float) -> None:
        """Wait before trying a write again, heartbeat included: a writer that went quiet would
        have its engine's live calls closed as engine_lost, and their contacts called again."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._beat_if_due()
            time.sleep(max(0.0, min(left, self._next_beat - time.monotonic())))

    def _dead_letter(self, write: Callable[[], object], exc: BaseException, tries: int) -> None:
        self.dead_lettered += 1
        record = {
            "at": dt.datetime.now(dt.UTC).isoformat(),
            "writer": self.name,
            "tries": tries,
            "write": describe_write(write),
            "error": repr(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        }
        try:
            self.dead_letters.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letters.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, default=_jsonable) + "\n")
        except OSError:
            log.exception("%s: dead letter not saved: %s", self.name, record["write"])


@dataclasses.dataclass(frozen=True)
class _Item:
    write: Callable[[], object]
    on_dead_letter: Callable[[], object] | None = None


def describe_write(write: Callable[[], object]) -> dict[str, object]:
    """What a queued write would have done: the function and its arguments (an engine's writes
    are functools.partial of a service function), enough to replay it by hand."""
    if isinstance(write, functools.partial):
        return {"call": _qualname(write.func), "args": list(write.args), "kwargs": write.keywords}
    return {"call": _qualname(write)}


def _qualname(fn: object) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _jsonable(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return repr(value)
