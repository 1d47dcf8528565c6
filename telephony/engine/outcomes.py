"""SIP outcome -> disposition. Kept pure so every code is tested without SIP."""

from __future__ import annotations

from telephony.engine.events import Disposition

BUSY_CODES = frozenset({486, 600})
NO_ANSWER_CODES = frozenset({480, 408, 487})
REJECTED_CODES = frozenset({603})
INVALID_CODES = frozenset({404, 484})


def disposition_for(
    *, answered: bool, sip_code: int | None, ring_timed_out: bool, response_seen: bool
) -> Disposition:
    """Map how a call ended to a disposition.

    A timeout with no response at all (not even 100 Trying) is a transport failure, not an
    unanswered phone, though pjsua reports it as 408 (or 487 after our own CANCEL).
    """
    if answered:
        return Disposition.ANSWERED
    if ring_timed_out:
        # Nothing at all came back before our ring timeout: the far end never got the INVITE.
        return Disposition.NO_ANSWER if response_seen else Disposition.FAILED
    if sip_code is None:
        return Disposition.FAILED
    if sip_code == 408 and not response_seen:
        return Disposition.FAILED
    if sip_code in BUSY_CODES:
        return Disposition.BUSY
    if sip_code in NO_ANSWER_CODES:
        return Disposition.NO_ANSWER
    if sip_code in REJECTED_CODES:
        return Disposition.REJECTED
    if sip_code in INVALID_CODES:
        return Disposition.INVALID_NUMBER
    return Disposition.FAILED
