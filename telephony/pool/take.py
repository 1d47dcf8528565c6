"""Taking jobs through the process's one pacer, for the supervisor and a polling engine alike.

Fails closed: while the pacer cannot be asked nothing is taken (without the shared limits we
cannot know a trunk has room), and the taker holds off for a moment before asking again.
"""

from __future__ import annotations

import logging
import time

from dialer.pacing import PacingUnavailable, lease_id, pacer_from_settings
from telephony.engine.events import DialJob
from telephony.pool.work import WorkSource

log = logging.getLogger(__name__)

PACING_DOWN_S = 0.2  # the pacer could not be asked: take nothing for this long


class Taker:
    def __init__(self, work: WorkSource, *, name: str) -> None:
        self.work = work
        self.name = name  # who takes, for the log
        self.pacer = pacer_from_settings()
        self.next_take = 0.0  # monotonic time; the owner's loop looks for work from then on

    def take(
        self, *, engine_id: int, only_attempt: int | None = None
    ) -> tuple[DialJob, list[str]] | None:
        """The next job for this engine and the pacing scopes its lease holds, or None."""
        try:
            return self.work.take(
                engine_id=engine_id,
                pacer=self.pacer,
                on_paced=self._paced,
                only_attempt=only_attempt,
            )
        except PacingUnavailable:
            log.warning("%s: pacing unavailable; not dialing", self.name)
            self.next_take = time.monotonic() + PACING_DOWN_S
            return None

    def _paced(self, retry_after_ms: int) -> None:
        # Look again right when the pacer says a slot frees, not at the next idle round.
        self.next_take = min(self.next_take, time.monotonic() + retry_after_ms / 1000)

    def release(self, *, attempt_id: int, scopes: list[str]) -> None:
        """The call holds its pacing slots no longer; if Redis is away its lease expires."""
        if not scopes or self.pacer is None:
            return
        try:
            self.pacer.release(lease_id=lease_id(attempt_id), scopes=scopes)
        except PacingUnavailable:
            log.warning("attempt %s: lease not released; it expires", attempt_id)
