"""Plain commands into the engine and plain events out of it: no pjsua2, no Django."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class DialJob:
    attempt_id: int
    target_uri: str  # sip:+919876543210@carrier:5060
    cli: str  # presented in From and P-Asserted-Identity
    ring_timeout_s: float
    max_call_s: float
    agent_url: str = ""
    custom_parameters: dict[str, str] = field(default_factory=dict)
    auth_username: str = ""
    # The trunk's digest password (TRUNK_<NAME>_PASSWORD): never in a repr, so never in a log.
    auth_password: str = field(default="", repr=False)
    opt_out_digit: str = ""  # a DTMF key that opts the callee out ("" = none)
    stream_format: str = "twilio"  # the agent's WebSocket format: twilio or exotel


class EventKind(StrEnum):
    """What an engine reports about a call, in the order a call can report them."""

    INVITE_SENT = "invite_sent"  # the INVITE left; the call may now reach the callee
    RINGING = "ringing"  # first 180/183: post-dial delay known
    ANSWERED = "answered"  # 200 OK; the agent stream starts
    OPT_OUT = "opt_out"  # the callee pressed the campaign's opt-out key (digit)
    ENDED = "ended"  # the call is over: disposition, SIP code, duration, quality


class Disposition(StrEnum):
    """How an attempt ended: the one list, for the engine that reports it and the attempts that
    store it (campaigns.models.CallAttempt.disposition)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"  # not placed, or no answer came back, or its engine was lost
    BLOCKED = "blocked"  # compliance refused it (or its number was erased): nothing was dialed
    CANCELLED = "cancelled"  # its campaign stopped before any engine took it: nothing was dialed


@dataclass(frozen=True)
class CallEvent:
    """What happened to a call (see EventKind)."""

    attempt_id: int
    kind: EventKind
    at: dt.datetime
    sip_code: int | None = None
    sip_reason: str = ""
    pdd_ms: int | None = None
    disposition: Disposition | None = None  # kind ended
    duration_s: float | None = None
    frames_to_agent: int = 0
    frames_from_agent: int = 0
    digit: str = ""  # kind opt_out
    quality: dict[str, float] | None = None  # kind ended, answered calls: loss, jitter, rtt, mos
    hangup_cause: str = ""
