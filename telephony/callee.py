"""The built-in SIP callee for the demo: a pjsua2 process that behaves by the number dialled.

The last digit among the digits of the Request-URI user part picks the behaviour:

    last digit  action               what the caller sees
    ----------  -------------------  ------------------------------------------------------------
    0, 1, 2, 3  answer               180 Ringing at once, 200 OK after 0.8 s, a 440 Hz tone
    4           early_media_answer   183 Session Progress with SDP (the tone plays), 200 after 1.5 s
    5           busy                 486 Busy Here at once (no ringing, as a busy line does)
    6           no_answer            180 Ringing until the caller sends CANCEL (then 487)
    7           decline              180 Ringing, 603 Decline after 2 s (the person refused)
    8           not_found            404 Not Found at once
    9           unavailable          480 Temporarily Unavailable at once
    (no digits) answer               as 0

An answered call is hung up by the callee after talk_ms (30 s unless told otherwise) if the caller
has not hung up first. A call arriving while 4 are up gets 486 (one process holds at most 4 calls).
A call that rings forever is ended with 480 after NO_ANSWER_GIVE_UP_MS, so a caller that vanished
without a CANCEL cannot hold one of the 4 slots for ever.

The pjsua2 subclasses only note what happened; `CalleeSchedule` (plain, clock passed in) decides
what to send and when, and `Callee.step()`, called from the process's loop, applies it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import pjsua2 as pj

from telephony.pjsip import CLOCK_RATE, MAX_CALLS_PER_PROCESS, media_port_range, start_endpoint

log = logging.getLogger(__name__)

Action = Literal[
    "answer", "early_media_answer", "busy", "decline", "not_found", "no_answer", "unavailable"
]

DEFAULT_TALK_MS = 30_000
NO_ANSWER_GIVE_UP_MS = 120_000
SHUTDOWN_DRAIN_S = 2.0
TONE_HZ = 440


@dataclass(frozen=True)
class CalleeBehaviour:
    action: Action
    sip_code: int  # the final response: 200, or the error code (487 comes from the caller's CANCEL)
    ring_ms: int | None  # time before the final response; None: until the caller gives up
    talk_ms: int  # answered calls only: when the callee hangs up itself


_BY_LAST_DIGIT: dict[str, CalleeBehaviour] = {
    **{d: CalleeBehaviour("answer", 200, 800, DEFAULT_TALK_MS) for d in ("0", "1", "2", "3")},
    "4": CalleeBehaviour("early_media_answer", 200, 1500, DEFAULT_TALK_MS),
    "5": CalleeBehaviour("busy", 486, 0, 0),
    "6": CalleeBehaviour("no_answer", 487, None, 0),
    "7": CalleeBehaviour("decline", 603, 2000, 0),
    "8": CalleeBehaviour("not_found", 404, 0, 0),
    "9": CalleeBehaviour("unavailable", 480, 0, 0),
}


def callee_behaviour(user: str, *, talk_ms: int = DEFAULT_TALK_MS) -> CalleeBehaviour:
    """What the callee does for a call to this Request-URI user part (see the module table)."""
    digits = [c for c in user if c.isdigit()]
    behaviour = _BY_LAST_DIGIT[digits[-1] if digits else "0"]
    if behaviour.sip_code == 200:
        return replace(behaviour, talk_ms=talk_ms)
    return behaviour


def request_uri_user(invite: str) -> str:
    """The user part of the Request-URI in a raw SIP request ("" when the URI has none)."""
    start_line = invite.lstrip().split("\r\n", 1)[0].split("\n", 1)[0]
    parts = start_line.split()
    if len(parts) < 3:
        return ""
    uri = parts[1]
    scheme, _, rest = uri.partition(":")
    if scheme.lower() == "tel":
        return rest.split(";", 1)[0]
    if "@" not in rest:
        return ""
    return rest.split("@", 1)[0].split(";", 1)[0]


# --- the schedule: plain, testable with a fake clock -------------------------------------------

StepKind = Literal["answer", "reject", "hangup"]


@dataclass(frozen=True)
class Step:
    """One thing the main loop must do to a call now."""

    key: int
    kind: StepKind
    sip_code: int


class CalleeSchedule:
    """Decides each call's responses and their times. Keys are ours, never pjsua call ids:
    pjsua reuses ids 0-3, and a stale timer must not fire on the next call to get the id."""

    def __init__(
        self, *, talk_ms: int = DEFAULT_TALK_MS, max_calls: int = MAX_CALLS_PER_PROCESS
    ) -> None:
        self.talk_ms = talk_ms
        self.max_calls = max_calls
        self._live: set[int] = set()
        self._pending: dict[int, tuple[float, Step]] = {}  # at most one timer per call

    def admit(self, key: int, user: str, now: float) -> int | None:
        """A new call arrived. Returns the response to send at once (None: leave it at 100)."""
        if len(self._live) >= self.max_calls:
            return 486
        self._live.add(key)
        b = callee_behaviour(user, talk_ms=self.talk_ms)
        if b.sip_code == 200:
            self._at(now + b.ring_ms / 1000 if b.ring_ms else now, Step(key, "answer", 200))
            return 183 if b.action == "early_media_answer" else 180
        if b.ring_ms is None:
            self._at(now + NO_ANSWER_GIVE_UP_MS / 1000, Step(key, "reject", 480))
            return 180
        self._at(now + b.ring_ms / 1000, Step(key, "reject", b.sip_code))
        return 180 if b.ring_ms > 0 else None

    def due(self, now: float) -> list[Step]:
        """Steps whose time has come, in time order; an answer also starts the talk timer."""
        ready = sorted((t, s.key, s) for t, s in self._pending.values() if t <= now)
        steps = [s for _, _, s in ready]
        for step in steps:
            del self._pending[step.key]
            if step.kind == "answer":
                self._at(now + self.talk_ms / 1000, Step(step.key, "hangup", 0))
        return steps

    def ended(self, key: int) -> None:
        """The call is gone (either side hung up, CANCEL, or our own final response)."""
        self._live.discard(key)
        self._pending.pop(key, None)

    @property
    def live_calls(self) -> int:
        return len(self._live)

    def _at(self, when: float, step: Step) -> None:
        self._pending[step.key] = (when, step)


# --- the pjsua2 edge ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Note:
    key: int
    kind: Literal["media", "ended"]


class _CalleeCall(pj.Call):  # type: ignore[misc]
    """Thin: callbacks only note that media came up or the call ended."""

    def __init__(self, account: pj.Account, call_id: int, key: int, notes: list[_Note]) -> None:
        super().__init__(account, call_id)
        self.key = key
        self._notes = notes

    def onCallState(self, prm: Any) -> None:
        if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._notes.append(_Note(self.key, "ended"))

    def onCallMediaState(self, prm: Any) -> None:
        self._notes.append(_Note(self.key, "media"))


class _CalleeAccount(pj.Account):  # type: ignore[misc]
    """Thin: hands each incoming call to the Callee, which must adopt it inside this callback."""

    def __init__(self, on_incoming: Callable[[_CalleeAccount, int, str], None]) -> None:
        super().__init__()
        self._on_incoming = on_incoming

    def onIncomingCall(self, prm: Any) -> None:
        # An exception escaping a pjsua2 callback unwinds through C++; keep it on this side.
        try:
            self._on_incoming(self, prm.callId, prm.rdata.wholeMsg)
        except Exception:
            log.exception("incoming call %s not handled", prm.callId)


def _op(sip_code: int = 0) -> pj.CallOpParam:
    prm = pj.CallOpParam()
    prm.statusCode = sip_code
    return prm


def _audio_active(call: pj.Call) -> bool:
    # Keep the CallInfo alive while reading its media: SWIG hands out a reference into it, and
    # `call.getInfo().media` would read freed memory once the temporary is collected.
    info = call.getInfo()
    return any(
        m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE
        for m in info.media
    )


def _tone() -> pj.ToneGenerator:
    tone = pj.ToneGenerator()
    tone.createToneGenerator(CLOCK_RATE, 1)
    pattern = pj.ToneDescVector()
    desc = pj.ToneDesc()
    desc.freq1, desc.freq2, desc.on_msec, desc.off_msec = TONE_HZ, 0, 1000, 250
    pattern.append(desc)
    tone.play(pattern, True)
    return tone


class Callee:
    """The callee in one process: the endpoint, its account, live calls and their tones."""

    def __init__(self, *, host: str, port: int, talk_ms: int = DEFAULT_TALK_MS) -> None:
        self.host, self.port = host, port
        self.schedule = CalleeSchedule(talk_ms=talk_ms)
        self._notes: list[_Note] = []
        self._calls: dict[int, _CalleeCall] = {}
        self._tones: dict[int, pj.ToneGenerator] = {}
        self._next_key = 0
        self._ep = start_endpoint(host=host, port=port, user_agent="dialer-callee")
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:callee@{host}:{port}"
        rtp_port, rtp_range = media_port_range(port)
        cfg.mediaConfig.transportConfig.port = rtp_port
        cfg.mediaConfig.transportConfig.portRange = rtp_range
        cfg.mediaConfig.transportConfig.boundAddress = host
        self._account: _CalleeAccount | None = _CalleeAccount(self._incoming)
        self._account.create(cfg, True)

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"

    def _incoming(self, account: _CalleeAccount, call_id: int, invite: str) -> None:
        key, self._next_key = self._next_key, self._next_key + 1
        call = _CalleeCall(account, call_id, key, self._notes)
        self._calls[key] = call
        user = request_uri_user(invite)
        first = self.schedule.admit(key, user, time.monotonic())
        log.info("call %s to %r: first response %s", key, user, first or 100)
        if first is None:
            return
        if first >= 300:
            call.hangup(_op(first))
        else:
            call.answer(_op(first))

    def step(self, now: float | None = None) -> bool:
        """Apply what pjsua2 noted and what the schedule says is due. True if anything was done."""
        notes = self._notes[:]
        del self._notes[: len(notes)]
        for note in notes:
            if note.kind == "ended":
                self._drop(note.key)
            else:
                self._start_tone(note.key)
        steps = self.schedule.due(time.monotonic() if now is None else now)
        for step in steps:
            self._apply(step)
        return bool(notes or steps)

    def _apply(self, step: Step) -> None:
        call = self._calls.get(step.key)
        if call is None:
            return
        try:
            if step.kind == "answer":
                call.answer(_op(200))
            else:  # reject: the final error response; hangup: BYE after the talk time
                call.hangup(_op(step.sip_code))
        except pj.Error as err:
            # The caller hung up in the same instant; its "ended" note is on the way.
            log.info("call %s: %s not applied: %s", step.key, step.kind, err.info())

    def _start_tone(self, key: int) -> None:
        call = self._calls.get(key)
        if call is None or key in self._tones or not _audio_active(call):
            return
        tone = _tone()
        tone.startTransmit(call.getAudioMedia(-1))
        self._tones[key] = tone

    def _drop(self, key: int) -> None:
        self.schedule.ended(key)
        tone = self._tones.pop(key, None)
        if tone is not None:
            tone.stop()
        self._calls.pop(key, None)

    def shutdown(self) -> None:
        """Hang up every call, let the BYEs/responses go, free calls and tones, then the library.

        The order matters: media ports and calls must be gone before libDestroy(), or pjsua
        aborts in pjmedia_conf_remove_port. "Gone" means no Python reference left at all, not even
        a loop variable in this frame: a Call destroyed after libDestroy() trips an assertion.
        """
        for key in list(self._calls):
            self._apply(Step(key, "hangup", 503))  # 503 to a ringing call: transient, no refusal
        deadline = time.monotonic() + SHUTDOWN_DRAIN_S
        while self._calls and time.monotonic() < deadline:
            self._ep.libHandleEvents(20)
            self.step()
        for tone in self._tones.values():
            tone.stop()
        self._tones.clear()
        self._calls.clear()
        if self._account is not None:
            self._account.shutdown()
            self._account = None
        self._ep.libHandleEvents(50)
        self._ep.libDestroy()

    def run(self, should_stop: Callable[[], bool], poll_ms: int = 20) -> None:
        """Poll pjsua2 and apply the schedule until should_stop() says so, then shut down."""
        try:
            while not should_stop():
                self._ep.libHandleEvents(poll_ms)
                self.step()
        finally:
            self.shutdown()
