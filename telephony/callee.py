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

Two options make it a measuring instrument for tests and benchmarks (both off by default):

* record_dir: each answered call's received audio goes to DIR/<Call-ID>.wav (pjsua2's
  AudioMediaRecorder: 16-bit PCM, 8 kHz, mono) with a JSON sidecar DIR/<Call-ID>.json that maps the
  WAV to time: the time.time() and time.monotonic() of the clock tick that wrote its first 160
  samples (each later 20 ms frame is one tick later), where the received audio turned on and off,
  when each burst of the callee's own tone went out, the number dialled, and each DTMF digit sent.
* dtmf: digits sent at offsets after the answer, as RFC 4733 telephone-events or SIP INFO
  (`parse_dtmf_spec`: "1500:5:rfc2833,2500:9:info").

The pjsua2 subclasses only note what happened; `CalleeSchedule` (plain, clock passed in) decides
what to send and when, and `Callee.step()`, called from the process's loop, applies it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pjsua2 as pj

from telephony.engine.tap import vector_bytes
from telephony.pjsip import (
    CLOCK_RATE,
    FRAME_MS,
    MAX_CALLS_PER_PROCESS,
    SAMPLES_PER_FRAME,
    media_port_range,
    start_endpoint,
)

with warnings.catch_warnings():
    # Deprecated (gone in 3.13) but the C speed matters here: a peak per 20 ms frame per call.
    # telephony/bridge/audio.py makes the same choice for G.711.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

log = logging.getLogger(__name__)

Action = Literal[
    "answer", "early_media_answer", "busy", "decline", "not_found", "no_answer", "unavailable"
]

DEFAULT_TALK_MS = 30_000
NO_ANSWER_GIVE_UP_MS = 120_000
SHUTDOWN_DRAIN_S = 2.0
TONE_HZ = 440
TONE_ON_MS = 1000
TONE_OFF_MS = 250
# A frame whose peak sample reaches this is "sound". The tone and the agents' test signals peak
# near 8000-12000; decoded G.711 silence is 0 and line noise on loopback is nothing.
EDGE_PEAK = 1000
SIDECAR_VERSION = 1


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


# --- DTMF plan: plain ---------------------------------------------------------------------------

DtmfMethod = Literal["rfc2833", "info"]

# RFC 4733 obsoletes RFC 2833 with the same telephone-event payload; accept either name.
_DTMF_METHODS: dict[str, DtmfMethod] = {
    "rfc2833": "rfc2833",
    "rfc4733": "rfc2833",
    "info": "info",
    "sip_info": "info",
}
DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class DtmfSend:
    """One digit the callee sends, offset_ms after it answered."""

    offset_ms: int
    digit: str
    method: DtmfMethod


def parse_dtmf_spec(spec: str) -> tuple[DtmfSend, ...]:
    """'1500:5:rfc2833,2500:9:info' -> the digits to send, in time order.

    Each item is OFFSET_MS:DIGIT[:METHOD]; METHOD is rfc2833 (or rfc4733, the default) or info
    (or sip_info). Raises ValueError naming the bad item."""
    sends: list[DtmfSend] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        parts = [p.strip() for p in item.split(":")]
        if len(parts) not in (2, 3):
            raise ValueError(f"DTMF item {item!r}: expected OFFSET_MS:DIGIT[:METHOD]")
        offset, digit = parts[0], parts[1].upper()
        method = parts[2].lower() if len(parts) == 3 else "rfc2833"
        if not offset.isdigit():
            raise ValueError(f"DTMF item {item!r}: offset must be whole milliseconds >= 0")
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise ValueError(f"DTMF item {item!r}: digit must be one of 0-9 * # A-D")
        if method not in _DTMF_METHODS:
            raise ValueError(f"DTMF item {item!r}: method must be rfc2833 or info")
        sends.append(DtmfSend(int(offset), digit, _DTMF_METHODS[method]))
    # Stable: two digits at the same offset go in the order written.
    return tuple(sorted(sends, key=lambda d: d.offset_ms))


# --- the schedule: plain, testable with a fake clock -------------------------------------------

StepKind = Literal["answer", "reject", "hangup", "dtmf"]


@dataclass(frozen=True)
class Step:
    """One thing the main loop must do to a call now."""

    key: int
    kind: StepKind
    sip_code: int
    dtmf: DtmfSend | None = None  # kind "dtmf" only


class CalleeSchedule:
    """Decides each call's responses and their times. Keys are ours, never pjsua call ids:
    pjsua reuses ids 0-3, and a stale timer must not fire on the next call to get the id."""

    def __init__(
        self,
        *,
        talk_ms: int = DEFAULT_TALK_MS,
        max_calls: int = MAX_CALLS_PER_PROCESS,
        dtmf: Sequence[DtmfSend] = (),
    ) -> None:
        self.talk_ms = talk_ms
        self.max_calls = max_calls
        self.dtmf = tuple(dtmf)
        self._live: set[int] = set()
        # The one response or hang-up timer of each call, and separately its DTMF digits to go:
        # (when, order, step), the order keeping steps due at the same instant as scheduled.
        self._pending: dict[int, tuple[float, int, Step]] = {}
        self._digits: dict[int, list[tuple[float, int, Step]]] = {}
        self._order = 0

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
        """Steps whose time has come, in time order. An answer starts the talk timer and the DTMF
        plan, both counted from `now` (when the 200 goes out, not when it was planned)."""
        ready = [entry for entry in self._pending.values() if entry[0] <= now]
        for digits in self._digits.values():
            ready.extend(entry for entry in digits if entry[0] <= now)
        ready.sort(key=lambda entry: (entry[0], entry[1]))
        steps = [step for _, _, step in ready]
        for step in steps:
            if step.kind == "dtmf":
                remaining = [e for e in self._digits[step.key] if e[2] is not step]
                if remaining:
                    self._digits[step.key] = remaining
                else:
                    del self._digits[step.key]
                continue
            del self._pending[step.key]
            if step.kind == "answer":
                self._at(now + self.talk_ms / 1000, Step(step.key, "hangup", 0))
                for send in self.dtmf:
                    self._order += 1
                    digit = (
                        now + send.offset_ms / 1000,
                        self._order,
                        Step(step.key, "dtmf", 0, send),
                    )
                    self._digits.setdefault(step.key, []).append(digit)
            else:  # the call is being ended by us: digits still to come would hit a dead dialog
                self._digits.pop(step.key, None)
        return steps

    def ended(self, key: int) -> None:
        """The call is gone (either side hung up, CANCEL, or our own final response)."""
        self._live.discard(key)
        self._pending.pop(key, None)
        self._digits.pop(key, None)

    @property
    def live_calls(self) -> int:
        return len(self._live)

    def _at(self, when: float, step: Step) -> None:
        self._order += 1
        self._pending[step.key] = (when, self._order, step)


# --- timing of the audio: plain, fed from pjmedia's clock thread -------------------------------


@dataclass(frozen=True)
class Edge:
    """Where a stream of frames turned loud ("on") or quiet ("off")."""

    kind: Literal["on", "off"]
    frame: int  # index of the first frame of the new state, counted from the log's first frame
    sample: int  # first sample at or above the threshold in that frame (0 for "off")
    mono: float  # time.monotonic() of the clock tick that carried that frame
    wall: float  # time.time() of the same tick


@dataclass
class FrameLog:
    """What a stream of 20 ms frames looked like over time: when its first frame came, how many
    came, and the edges where it turned loud or quiet. A frame's time is when the conference
    bridge's clock tick handed it over: the moment it was written to a WAV beside us, or sent
    into a call as RTP."""

    threshold: int = EDGE_PEAK
    frames: int = 0
    first_mono: float | None = None
    first_wall: float | None = None
    last_mono: float | None = None
    edges: list[Edge] = field(default_factory=list)
    _loud: bool = False

    def feed(self, pcm: bytes, mono: float, wall: float) -> Edge | None:
        """One frame (16-bit LE PCM, possibly empty for a tick without audio) at a tick."""
        if self.first_mono is None:
            self.first_mono, self.first_wall = mono, wall
        index = self.frames
        self.frames += 1
        self.last_mono = mono
        loud = bool(pcm) and audioop.max(pcm, 2) >= self.threshold
        if loud == self._loud:
            return None
        self._loud = loud
        sample = 0
        if loud:
            # Only on an edge: walk the samples for where the sound starts within the frame.
            sample = next(i for i, v in enumerate(array("h", pcm)) if abs(v) >= self.threshold)
        edge = Edge("on" if loud else "off", index, sample, mono, wall)
        self.edges.append(edge)  # list.append is atomic: the main thread may read meanwhile
        return edge

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_frame": _stamp(self.first_mono, self.first_wall),
            "last_frame_mono": self.last_mono,
            "frames": self.frames,
            "edges": [asdict(e) for e in list(self.edges)],
        }


def _stamp(mono: float | None, wall: float | None) -> dict[str, float] | None:
    return None if mono is None or wall is None else {"mono": mono, "wall": wall}


def _now_stamp() -> dict[str, float]:
    return {"mono": time.monotonic(), "wall": time.time()}


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def recording_stem(call_id: str, counter: int) -> str:
    """A file name stem for a call's recording: its SIP Call-ID made safe, else call-<counter>."""
    stem = _UNSAFE_NAME.sub("_", call_id).strip("._")[:120]
    return stem or f"call-{counter}"


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Readers (a test, a benchmark) poll the sidecar while calls run: never show a torn file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


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


class _TimingProbe(pj.AudioMediaPort):  # type: ignore[misc]
    """A conference port that only listens: it timestamps each frame handed to it into its
    FrameLog. Connected beside the recorder it gives the WAV its clock; beside the tone
    generator it tells when each burst of the tone went out.

    Probes are reused from call to call and destroyed only once the conference clock is
    stopped: destroying a Python AudioMediaPort while the clock runs crashes pjsua2 2.15 now and
    then (bench/port_churn.py shows it), which a measuring instrument cannot afford."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.frame_log = FrameLog()  # before createPort: frames may come at once
        self._failed = False
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, CLOCK_RATE, 1, FRAME_MS * 1000, 16)
        self.createPort(name, fmt)

    def restart(self) -> FrameLog:
        """Start a fresh log; returns the one that was filling (no frame goes to it after)."""
        used, self.frame_log = self.frame_log, FrameLog()
        return used

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        # A tick with nothing connected brings an empty frame, which the WAV writer skips too:
        # counting only frames with audio keeps frame n of the log sample n * 160 of the WAV.
        if not frame.size:
            return
        mono, wall = time.monotonic(), time.time()
        # Runs on pjmedia's clock thread: an exception must not unwind into C++.
        try:
            self.frame_log.feed(vector_bytes(frame.buf), mono, wall)
        except Exception:
            if not self._failed:
                self._failed = True
                log.exception("timing probe failed; its frame logs stop here")


@dataclass
class _Recording:
    """One answered call's recorder, its clock and everything its sidecar says."""

    key: int
    wav: Path
    sidecar: Path
    recorder: pj.AudioMediaRecorder | None
    probe: _TimingProbe
    frame_log: FrameLog
    info: dict[str, Any]


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


def _rtp_addresses(call: pj.Call) -> dict[str, str]:
    """The call's RTP addresses ("ip:port"): ours, and where the caller's RTP comes from. A
    packet capture can then tell this call's audio from the others'."""
    info = call.getInfo()
    for m in info.media:
        if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
            try:
                transport = call.getMedTransportInfo(m.index)
            except pj.Error:
                break
            return {"local": transport.localRtpName, "remote": transport.srcRtpName}
    return {}


def _tone() -> pj.ToneGenerator:
    tone = pj.ToneGenerator()
    tone.createToneGenerator(CLOCK_RATE, 1)
    pattern = pj.ToneDescVector()
    desc = pj.ToneDesc()
    desc.freq1, desc.freq2, desc.on_msec, desc.off_msec = TONE_HZ, 0, TONE_ON_MS, TONE_OFF_MS
    pattern.append(desc)
    tone.play(pattern, True)
    return tone


_PJ_DTMF_METHOD: dict[DtmfMethod, int] = {
    "rfc2833": pj.PJSUA_DTMF_METHOD_RFC2833,
    "info": pj.PJSUA_DTMF_METHOD_SIP_INFO,
}


class Callee:
    """The callee in one process: the endpoint, its account, live calls and their tones."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        talk_ms: int = DEFAULT_TALK_MS,
        record_dir: Path | None = None,
        dtmf: Sequence[DtmfSend] = (),
    ) -> None:
        self.host, self.port = host, port
        self.schedule = CalleeSchedule(talk_ms=talk_ms, dtmf=dtmf)
        self.record_dir = record_dir
        if record_dir is not None:
            record_dir.mkdir(parents=True, exist_ok=True)
        self._notes: list[_Note] = []
        self._calls: dict[int, _CalleeCall] = {}
        self._tones: dict[int, pj.ToneGenerator] = {}
        self._next_key = 0
        # Per call, for recording and DTMF: what was dialled, the Call-ID, when it was answered.
        self._users: dict[int, str] = {}
        self._call_ids: dict[int, str] = {}
        self._answered: dict[int, dict[str, float]] = {}
        self._recordings: dict[int, _Recording] = {}
        self._tone_probes: dict[int, _TimingProbe] = {}
        self._tone_logs: dict[int, FrameLog] = {}
        self._spare_probes: list[_TimingProbe] = []
        self._probes_made = 0
        self._tone_started: dict[int, dict[str, float]] = {}
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
        self._users[key] = user
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
                self._start_recording(note.key)
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
                self._answered[step.key] = _now_stamp()
                self._start_recording(step.key)  # early media: the audio is up already
            elif step.kind == "dtmf":
                assert step.dtmf is not None
                self._send_dtmf(step.key, call, step.dtmf)
            else:  # reject: the final error response; hangup: BYE after the talk time
                call.hangup(_op(step.sip_code))
        except pj.Error as err:
            # The caller hung up in the same instant; its "ended" note is on the way.
            log.info("call %s: %s not applied: %s", step.key, step.kind, err.info())

    def _send_dtmf(self, key: int, call: _CalleeCall, send: DtmfSend) -> None:
        prm = pj.CallSendDtmfParam()
        prm.digits = send.digit
        prm.method = _PJ_DTMF_METHOD[send.method]
        sent: dict[str, Any] = {**asdict(send), **_now_stamp(), "ok": True}
        try:
            call.sendDtmf(prm)
        except pj.Error as err:
            sent |= {"ok": False, "error": err.info()}
            log.info("call %s: DTMF %s by %s failed: %s", key, send.digit, send.method, err.info())
        else:
            log.info("call %s: DTMF %s sent by %s", key, send.digit, send.method)
        recording = self._recordings.get(key)
        if recording is not None:
            recording.info["dtmf"].append(sent)
            self._write_sidecar(recording)

    def _start_tone(self, key: int) -> None:
        call = self._calls.get(key)
        if call is None or key in self._tones or not _audio_active(call):
            return
        tone = _tone()
        if self.record_dir is not None:
            # Listens to the tone generator itself, so it sees each tone frame in the very tick
            # the call's stream encodes it and sends it as RTP: the send time of every burst.
            probe = self._take_probe()
            tone.startTransmit(probe)
            self._tone_probes[key] = probe
            self._tone_logs[key] = probe.frame_log
        tone.startTransmit(call.getAudioMedia(-1))
        self._tones[key] = tone
        self._tone_started[key] = _now_stamp()

    def _start_recording(self, key: int) -> None:
        call = self._calls.get(key)
        if (
            self.record_dir is None
            or call is None
            or key in self._recordings
            or key not in self._answered
            or not _audio_active(call)
        ):
            return
        call_id = self._call_ids.get(key)
        if call_id is None:
            call_id = self._call_ids[key] = call.getInfo().callIdString
        stem = recording_stem(call_id, key)
        wav = self.record_dir / f"{stem}.wav"
        media = call.getAudioMedia(-1)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(wav))
        # The probe hears exactly what the recorder hears, frame for frame: both are connected
        # in one go here, so the conference bridge starts feeding them on the same clock tick.
        probe = self._take_probe()
        media.startTransmit(probe)
        media.startTransmit(recorder)
        recording = _Recording(
            key=key,
            wav=wav,
            sidecar=wav.with_suffix(".json"),
            recorder=recorder,
            probe=probe,
            frame_log=probe.frame_log,
            info={
                "version": SIDECAR_VERSION,
                "call_id": call_id,
                "number": self._users.get(key, ""),
                "wav": wav.name,
                "sample_rate": CLOCK_RATE,
                "samples_per_frame": SAMPLES_PER_FRAME,
                "frame_ms": FRAME_MS,
                "answered": self._answered[key],
                "recording_started": _now_stamp(),
                "rtp": _rtp_addresses(call),
                "dtmf": [],
                "ended": None,
            },
        )
        self._recordings[key] = recording
        self._write_sidecar(recording)
        log.info("call %s: recording to %s", key, wav)

    def _write_sidecar(self, recording: _Recording) -> None:
        data = dict(recording.info)
        # What the recorder's clock saw: WAV sample n was written at first_frame + (n // 160)
        # ticks of 20 ms; "edges" are where the received audio turned on and off.
        data["received"] = recording.frame_log.as_dict()
        data["tone"] = self._tone_info(recording.key)
        try:
            write_json_atomically(recording.sidecar, data)
        except OSError as exc:
            log.warning("sidecar %s not written: %s", recording.sidecar, exc)

    def _tone_info(self, key: int) -> dict[str, Any]:
        tone_log = self._tone_logs.get(key)
        started = self._tone_started.get(key)
        if tone_log is None:
            return {"hz": TONE_HZ, "started": started}
        onsets = [asdict(e) for e in list(tone_log.edges) if e.kind == "on"]
        return {
            "hz": TONE_HZ,
            "on_ms": TONE_ON_MS,
            "off_ms": TONE_OFF_MS,
            "started": started,  # when the main loop connected it; the first tick came later
            "first_frame": _stamp(tone_log.first_mono, tone_log.first_wall),
            "last_frame_mono": tone_log.last_mono,
            "frames": tone_log.frames,
            # Each burst's first frame: the tick that sent it into the call as RTP.
            "onsets": onsets,
        }

    def _take_probe(self) -> _TimingProbe:
        if self._spare_probes:
            probe = self._spare_probes.pop()
        else:
            self._probes_made += 1
            probe = _TimingProbe(f"probe{self._probes_made}")
        probe.restart()
        return probe

    def _return_probe(self, probe: _TimingProbe, source: pj.AudioMedia | None) -> None:
        if source is not None:
            try:
                source.stopTransmit(probe)
            except pj.Error:
                pass  # the source is gone (a call's media ends with the call): so is the link
        probe.restart()
        self._spare_probes.append(probe)

    def _finish_recording(self, key: int) -> None:
        recording = self._recordings.pop(key, None)
        if recording is None:
            return
        # Stop both first: destroying the recorder closes the WAV and writes its final header,
        # and the frame log must stop counting before its last numbers are written.
        recording.recorder = None
        self._return_probe(recording.probe, None)  # the call's media, its source, is gone
        recording.info["ended"] = _now_stamp()
        self._write_sidecar(recording)

    def _drop(self, key: int) -> None:
        self.schedule.ended(key)
        self._finish_recording(key)
        tone = self._tones.pop(key, None)
        probe = self._tone_probes.pop(key, None)
        if probe is not None:
            self._return_probe(probe, tone)
        if tone is not None:
            tone.stop()
        self._tone_logs.pop(key, None)
        self._tone_started.pop(key, None)
        self._calls.pop(key, None)
        self._users.pop(key, None)
        self._call_ids.pop(key, None)
        self._answered.pop(key, None)

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
        for key in list(self._recordings):
            self._finish_recording(key)
        # Stop the conference clock before the probes go: no tick can then reach a port
        # being destroyed.
        self._ep.audDevManager().setNoDev()
        for tone in self._tones.values():
            tone.stop()
        self._tones.clear()
        self._tone_probes.clear()
        self._spare_probes.clear()
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
