"""What the engine pool needs from whoever has the work: the pool's one view of the layer above.

The host and the supervisor take jobs, hand them back and record call events through a
WorkSource; campaigns implements it (campaigns.engine_work.CampaignWork) with its services, so
every rule about which call to place, and what an event means, stays there. An engine's event
writes are functools.partial of these methods, so they run on its writer thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dialer.pacing import Pacer
from telephony.engine.events import CallEvent, DialJob


class WorkSource(Protocol):
    def waiting(self) -> bool:
        """Is any work waiting for an engine? Asked before every take: keep it one cheap query."""
        ...

    def take(
        self,
        *,
        engine_id: int,
        pacer: Pacer | None,
        on_paced: Callable[[int], None] | None,
        only_attempt: int | None = None,
    ) -> tuple[DialJob, list[str]] | None:
        """Give the next job that fits the pacing limits to this engine: the job and the pacing
        scopes its lease holds (released when the call ends), or None. on_paced(ms): a limit
        frees a slot in ms. Raises PacingUnavailable when the pacer cannot be asked."""
        ...

    def hand_back(self, *, attempt_id: int, engine_id: int) -> bool:
        """The engine took this job but sent no INVITE: someone else may take it."""
        ...

    def record_event(self, *, event: CallEvent) -> None:
        """Write what happened to a call."""
        ...

    def record_unrecorded_end(self, *, event: CallEvent) -> bool:
        """The ended event could not be written (its write was dead-lettered): close the call
        with what the engine saw, so that it is never placed again."""
        ...

    def engine_died(self) -> None:
        """An engine process exited and its record is marked stopped: settle its calls now."""
        ...
