"""The campaigns' side of the engine pool: its WorkSource (telephony.pool.work), by the services.

Take, hand back and record are the service functions themselves, so an engine's queued writes
(and its dead letters) name the service they call.
"""

from __future__ import annotations

from django.db import transaction

from campaigns.services.engine_take import approved_work_waiting, attempt_return, engine_take_next
from campaigns.services.outcomes import attempt_end_unrecorded, attempt_record_event
from campaigns.services.reap import reap_stale


class CampaignWork:
    """Approved call attempts are the work; call events are written onto them."""

    waiting = staticmethod(approved_work_waiting)
    take = staticmethod(engine_take_next)
    hand_back = staticmethod(attempt_return)
    record_event = staticmethod(attempt_record_event)
    record_unrecorded_end = staticmethod(attempt_end_unrecorded)

    def engine_died(self) -> None:
        """Close the dead engine's calls now, not once its heartbeat goes stale. The reap also
        sends the queued attempts it returns to the workers again, once this commits."""
        with transaction.atomic():
            reap_stale()
