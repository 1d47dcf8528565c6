"""One pjsua2 engine: at most 4 calls in one process, driven by step() from the process's loop.

The engine takes plain DialJobs and reports plain CallEvents through a callback; it knows nothing
of campaigns or the database. pjsua2 callbacks only snapshot what happened into a list; step()
turns those notes into state changes and events outside of pjsua2's own call stack.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
import math
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from telephony.engine.events import CallEvent, DialJob, Disposition, EventKind
from telephony.engine.outcomes import disposition_for
from telephony.engine.quality import MediaQuality, media_quality
from telephony.engine.tap import BridgeTap
from telephony.pjsip import (
    MAX_CALLS_PER_PROCESS,
    SIP_KEEPALIVE,
    OutboundEndpoint,
    media_port_range,
    start_endpoint,
)
from telephony.sip_guard import SipGuard, uri_host

if TYPE_CHECKING:
    from telephony.bridge.relay import RtpRelay

log = logging.getLogger(__name__)

PJ_ETOOMANY = 70010  # PJ_ERRNO_START_STATUS + 10: the compiled call limit is reached
QUALITY_EVERY_S = 1.0  # how often a live call's RTCP statistics are read
# pjmedia/stream.h and pjsua.h values, which the wheel does not export.
DTMF_IS_END = 2
DTMF_METHOD_RFC2833 = 0
DTMF_METHOD_RELAY = -1  # our RTP relay's RFC 4733 detector: already one event per key press
# A call with an agent is also checked this often for the agent hanging up (the bridge wakes
# the loop when it does; this is the backstop).
AGENT_POLL_MS = 100
_MAX_ACCOUNTS = 6  # pjsua allows 8 accounts per process; one more is the refusing account


@dataclass(frozen=True)
class _Note:
    attempt_id: int
    kind: str  # state, media, response, dtmf
    state: int = 0
    sip_code: int = 0
    sip_reason: str = ""
    audio_active: bool = False
    digit: str = ""
    dtmf_flags: int = 0
    dtmf_method: int = 0


def read_quality(call: pj.Call) -> MediaQuality | None:
    """The call's receive-side quality from pjsua2's RTCP statistics; None without a stream."""
    try:
        stat = call.getStreamStat(0)
    except pj.Error:
        return None
    rx = stat.rtcp.rxStat
    rtt = stat.rtcp.rttUsec
    return media_quality(
        received=rx.pkt,
        lost=rx.loss,
        discarded=rx.discard,
        jitter_ms=rx.jitterUsec.mean / 1000 if rx.jitterUsec.n else 0.0,
        rtt_ms=rtt.mean / 1000 if rtt.n else None,
        jb_delay_ms=float(stat.jbuf.avgDelayMsec),
    )


class _Call(pj.Call):  # type: ignore[misc]
    """Thin: every callback becomes a _Note; nothing else happens here."""

    def __init__(
        self,
        notes: list[_Note],
        account: pj.Account,
        attempt_id: int,
        wake: Callable[[], None] = lambda: None,
        sdp_rewrite: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(account)
        self._notes = notes
        self.attempt_id = attempt_id
        self._wake = wake
        self._sdp_rewrite = sdp_rewrite

    def onCallSdpCreated(self, prm: Any) -> None:
        # A relayed call's SDP names the relay's socket; pjsua2 re-parses a changed SDP.
        if self._sdp_rewrite is not None:
            prm.sdp.wholeSdp = self._sdp_rewrite(prm.sdp.wholeSdp)

    def onCallState(self, prm: Any) -> None:
        ci = self.getInfo()
        self._notes.append(
            _Note(self.attempt_id, "state", ci.state, ci.lastStatusCode, ci.lastReason)
        )

    def onDtmfEvent(self, prm: Any) -> None:
        # RFC 4733 telephone-events and SIP INFO (application/dtmf-relay) both arrive here.
        self._notes.append(
            _Note(self.attempt_id, "dtmf", digit=str(prm.digit)[:1], dtmf_flags=prm.flags,
                  dtmf_method=prm.method)
        )  # fmt: skip
        # RFC 4733 events arrive on pjmedia's thread, not in the main loop's poll: wake it, so
        # the digit reaches the agent (and an opt-out takes effect) now, not at the next tick.
        self._wake()

    def onCallMediaState(self, prm: Any) -> None:
        ci = self.getInfo()
        active = any(
            m.type == pj.PJMEDIA_TYPE_AUDIO and m.status == pj.PJSUA_CALL_MEDIA_ACTIVE
            for m in ci.media
        )
        self._notes.append(_Note(self.attempt_id, "media", audio_active=active))

    def onCallTsxState(self, prm: Any) -> None:
        tsx = prm.e.body.tsxState.tsx
        if tsx.method == "INVITE" and tsx.statusCode >= 100:
            self._notes.append(_Note(self.attempt_id, "response", sip_code=tsx.statusCode))

    # Every number we call is checked before its INVITE. pjsua would otherwise place calls the
    # checks never saw: it accepts a REFER by dialing its Refer-To (its default is 202), and an
    # INVITE with Replaces would take this call over. A 3xx is not followed either (pjsua2's
    # default too; said here so that it stays so).
    def onCallTransferRequest(self, prm: Any) -> None:
        prm.statusCode = 403

    def onCallReplaceRequest(self, prm: Any) -> None:
        prm.statusCode = 403
        prm.reason = "Forbidden"

    def onCallRedirected(self, prm: Any) -> int:
        code = _status_code(prm.e.body.rxMsg.rdata.wholeMsg) or 302
        self._notes.append(_Note(self.attempt_id, "response", sip_code=code))
        return int(pj.PJSIP_REDIRECT_STOP)


def _status_code(message: str) -> int | None:
    first = message.split("\r\n", 1)[0].split()
    if len(first) >= 2 and first[0] == "SIP/2.0" and first[1].isdigit() and len(first[1]) == 3:
        return int(first[1])
    return None


class _RefusingAccount(pj.Account):  # type: ignore[misc]
    """The account every out-of-dialog request is handed to (OutboundEndpoint): an INVITE is
    refused with 403, never 500, and its media is a loopback transport that opens no socket."""

    def __init__(self) -> None:
        super().__init__()
        self._refused: collections.deque[pj.Call] = collections.deque(maxlen=8)

    def onIncomingCall(self, prm: Any) -> None:
        call = pj.Call(self, prm.callId)
        op = pj.CallOpParam(True)
        op.statusCode = 403
        op.reason = "Outbound only"
        try:
            call.hangup(op)
        except pj.Error:
            pass
        # pjsua2 hangs up a call whose object is destroyed: keep it until pjsua is done with it.
        self._refused.append(call)

    def release_refused(self) -> None:
        self._refused.clear()


@dataclass
class _Live:
    job: DialJob
    call: _Call
    account_key: tuple[str, str, bool]
    invite_mono: float
    ringing: bool = False
    answered_mono: float | None = None
    audio_active: bool = False
    response_seen: bool = False
    last_response: int = 0  # the latest response code to our INVITE
    ring_timed_out: bool = False
    hangup_sent: bool = False
    hangup_cause: str = ""
    tap: BridgeTap | None = None
    relay: RtpRelay | None = None  # the call's RTP, when it is relayed to the agent
    session: Any = None  # a bridge session (telephony.bridge), when an agent is attached
    quality: MediaQuality | None = None  # latest RTCP reading of an answered call
    next_quality_mono: float = 0.0
    opted_out: bool = False
    dtmf_pressed: bool = False  # an RFC 4733 key press is under way (its updates follow)
    extra: dict[str, object] = field(default_factory=dict)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Engine:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        on_event: Callable[[CallEvent], None],
        bridge_factory: Callable[[], Any] | None = None,
        log_level: int = 1,
        relay_media: bool = True,
        sip_allow: Sequence[str] = (),
    ) -> None:
        """relay_media: carry calls with an agent through the bridge's RTP relay
        (telephony.bridge.relay); False: through pjsua's media and an AudioMediaPort tap.
        sip_allow: addresses besides the trunks it dials that may send it SIP (an SBC)."""
        self.host = host
        self._relay_media = relay_media
        self.port = port
        self._on_event = on_event
        self._bridge_factory = bridge_factory
        self._bridge: Any = None
        self._notes: list[_Note] = []
        self._live: dict[int, _Live] = {}
        self._accounts: dict[tuple[str, str, bool], pj.Account] = {}
        self._taps: list[BridgeTap] = []  # every tap made, alive until shutdown
        self._free_taps: list[BridgeTap] = []
        self._ep = start_endpoint(
            host=host,
            port=port,
            user_agent="dialer-engine",
            log_level=log_level,
            endpoint_class=OutboundEndpoint,
        )
        self._guard = SipGuard(host=host, port=port, allow=sip_allow)
        self._refuser = self._refusing_account()
        self._wake_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    # -- capacity -----------------------------------------------------------------------------
    @property
    def live_calls(self) -> int:
        return len(self._live)

    def free_slots(self) -> int:
        return MAX_CALLS_PER_PROCESS - len(self._live)

    # -- commands -----------------------------------------------------------------------------
    def dial(self, job: DialJob) -> str:
        """Send the INVITE: 'sent'; 'busy' when pjsua has no call slot yet (nothing was sent,
        the job can go back to the queue); 'failed' (with an 'ended' event) otherwise."""
        if self.free_slots() <= 0:
            raise RuntimeError("engine is full; take work only when a slot is free")
        relay = self._relay_for(job) if job.agent_url and self._relay_media else None
        key = (job.cli, job.auth_username, relay is not None)
        rewrite = None
        if relay is not None:
            from telephony.bridge.relay import rewrite_sdp

            rewrite = functools.partial(rewrite_sdp, host=self.host, port=relay.port)
        self._guard.allow_host(uri_host(job.target_uri))  # its answers must reach pjsua
        call = _Call(self._notes, self._account_for(job, key), job.attempt_id, self.wake, rewrite)
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 1
        prm.opt.videoCount = 0
        pai = pj.SipHeader()
        pai.hName = "P-Asserted-Identity"
        pai.hValue = f"<sip:{job.cli}@{self.host}>"
        prm.txOption.headers.append(pai)
        live = _Live(job=job, call=call, account_key=key, invite_mono=time.monotonic(), relay=relay)
        self._live[job.attempt_id] = live
        try:
            call.makeCall(job.target_uri, prm)
        except pj.Error as exc:
            del self._live[job.attempt_id]
            if relay is not None:
                relay.close_unstarted()
            if exc.status == PJ_ETOOMANY:
                # pjsua frees a call slot a little after the call's DISCONNECTED callback (its
                # INVITE session is still being torn down): a free slot by our count may not
                # be free yet by pjsua's.
                log.info("attempt %s: no pjsua call slot yet; handing it back", job.attempt_id)
                return "busy"
            log.warning("attempt %s: INVITE not sent: %s", job.attempt_id, exc.info())
            self._emit(
                CallEvent(
                    job.attempt_id,
                    EventKind.ENDED,
                    _now(),
                    disposition=Disposition.FAILED,
                    hangup_cause=f"invite_not_sent: {exc.reason}",
                )
            )
            return "failed"
        self._emit(CallEvent(job.attempt_id, EventKind.INVITE_SENT, _now()))
        return "sent"

    def hangup(self, attempt_id: int, cause: str) -> None:
        live = self._live.get(attempt_id)
        if live is None or live.hangup_sent:
            return
        live.hangup_sent = True
        live.hangup_cause = live.hangup_cause or cause
        if live.answered_mono is not None:
            live.quality = self._read_quality(live) or live.quality  # the last reading
        try:
            live.call.hangup(pj.CallOpParam(True))
        except pj.Error as exc:
            log.info("attempt %s: hangup: %s", attempt_id, exc.info())

    def hangup_all(self, cause: str) -> None:
        for attempt_id in list(self._live):
            self.hangup(attempt_id, cause)

    # -- the loop's unit of work --------------------------------------------------------------
    def step(self, timeout_ms: int = 10) -> bool:
        """Poll SIP and media once, apply what happened, enforce timers. True if anything moved."""
        self._ep.libHandleEvents(timeout_ms)
        # Other threads append notes (RFC 4733 digits): take exactly the ones read, so one
        # appended in between stays for the next step.
        notes = self._notes[:]
        del self._notes[: len(notes)]
        for note in notes:
            self._apply(note)
        self._enforce_timers()
        return bool(notes)

    def wake(self) -> None:
        """Return the main loop's libHandleEvents() at once, from any thread: a SIP keep-alive
        (CRLFCRLF) to our own port, which pjsip reads and drops."""
        try:
            self._wake_sock.sendto(SIP_KEEPALIVE, (self.host, self.port))
        except OSError:
            pass  # the loop still wakes at its next timer

    def timers_due_ms(self, *, limit_ms: int) -> int:
        """How long the loop may sleep before a call's timer is due (ring timeout, maximum
        length), at most limit_ms. A call with an agent is polled every AGENT_POLL_MS for the
        agent hanging up. SIP and media wake the loop anyway."""
        now = time.monotonic()
        due = now + limit_ms / 1000
        for live in self._live.values():
            if live.hangup_sent:
                continue
            if live.session is not None:
                due = min(due, now + AGENT_POLL_MS / 1000)
            elif live.answered_mono is None:
                due = min(due, live.invite_mono + live.job.ring_timeout_s)
            else:
                due = min(due, live.answered_mono + live.job.max_call_s)
        return max(1, math.ceil((due - now) * 1000))

    def shutdown(self, *, grace_s: float = 5.0) -> None:
        """Hang up everything, wait for the calls to end, then tear pjsua2 down in a safe order."""
        self.hangup_all("engine_shutdown")
        deadline = time.monotonic() + grace_s
        while self._live and time.monotonic() < deadline:
            self.step(20)
        for live in list(self._live.values()):
            self._finish(live, sip_code=None, sip_reason="engine shutdown")
        if self._bridge is not None:
            self._bridge.shutdown()
        # Stop the conference clock before the taps go: a port destroyed under a running clock
        # can crash the process. Calls and media ports must be gone before libDestroy, or
        # pjmedia aborts the process.
        self._ep.audDevManager().setNoDev()
        self._free_taps.clear()
        self._taps.clear()
        self._refuser.release_refused()
        for account in [*self._accounts.values(), self._refuser]:
            account.shutdown()
        self._accounts.clear()
        self._ep.libDestroy()
        self._wake_sock.close()

    # -- internals ----------------------------------------------------------------------------
    def _emit(self, event: CallEvent) -> None:
        self._on_event(event)

    def _relay_for(self, job: DialJob) -> RtpRelay | None:
        from telephony.bridge.relay import RtpRelay, bind_pair

        rtp_port, rtp_range = media_port_range(self.port)
        try:
            rtp_sock, rtcp_sock = bind_pair(self.host, range(rtp_port, rtp_port + rtp_range))
        except OSError as exc:
            log.warning("attempt %s: %s; pjsua carries its media", job.attempt_id, exc)
            return None
        attempt_id = job.attempt_id
        return RtpRelay(
            rtp_sock,
            rtcp_sock,
            on_digit=lambda digit: self._relayed_digit(attempt_id, digit),
            cname=f"dialer-{self.host}-{self.port}",
        )

    def _relayed_digit(self, attempt_id: int, digit: str) -> None:
        # The bridge loop's thread: note it for step() like pjsua's own callbacks, and wake it.
        self._notes.append(_Note(attempt_id, "dtmf", digit=digit, dtmf_method=DTMF_METHOD_RELAY))
        self.wake()

    def _read_quality(self, live: _Live) -> MediaQuality | None:
        if live.relay is not None:
            return live.relay.quality()
        return read_quality(live.call)

    def _refusing_account(self) -> _RefusingAccount:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:refuse@{self.host}"
        cfg.mediaConfig.useLoopMedTp = True
        cfg.mediaConfig.enableLoopback = False
        account = _RefusingAccount()
        account.create(cfg)
        self._ep.incoming_account = account.getId()
        return account

    def _account_for(self, job: DialJob, key: tuple[str, str, bool]) -> pj.Account:
        account = self._accounts.get(key)
        if account is not None:
            return account
        # One account per presented CLI (pjsua puts the account's URI in From); evict idle ones.
        in_use = {live.account_key for live in self._live.values()}
        idle = [k for k in self._accounts if k not in in_use]
        while len(self._accounts) >= _MAX_ACCOUNTS and idle:
            self._accounts.pop(idle.pop(0)).shutdown()
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:{job.cli}@{self.host}"
        rtp_port, rtp_range = media_port_range(self.port)
        cfg.mediaConfig.transportConfig.port = rtp_port
        cfg.mediaConfig.transportConfig.portRange = rtp_range
        cfg.mediaConfig.transportConfig.boundAddress = self.host
        if key[2]:
            # Relayed calls: pjsua signals only; its stream sits on a loopback transport that
            # sends nothing, while the SDP names the relay (verified: no packet leaves pjsua).
            cfg.mediaConfig.useLoopMedTp = True
            cfg.mediaConfig.enableLoopback = False
        if job.auth_username:
            cfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", job.auth_username, 0, job.auth_password)
            )
        account = pj.Account()
        account.create(cfg)
        self._accounts[key] = account
        return account

    def _apply(self, note: _Note) -> None:
        live = self._live.get(note.attempt_id)
        if live is None:
            return
        if note.kind == "response":
            live.response_seen = True
            live.last_response = note.sip_code
        elif note.kind == "dtmf":
            self._on_dtmf_event(live, note)
        elif note.kind == "media":
            live.audio_active = note.audio_active
            if live.relay is not None and live.session is not None and note.audio_active:
                self._update_relay(live)
            elif live.answered_mono is not None:
                self._attach_agent(live)
        elif note.state == pj.PJSIP_INV_STATE_EARLY and note.sip_code in (180, 183):
            live.response_seen = True
            if not live.ringing:
                live.ringing = True
                pdd = round((time.monotonic() - live.invite_mono) * 1000)
                self._emit(
                    CallEvent(
                        live.job.attempt_id,
                        EventKind.RINGING,
                        _now(),
                        sip_code=note.sip_code,
                        sip_reason=note.sip_reason,
                        pdd_ms=pdd,
                    )
                )
        elif note.state == pj.PJSIP_INV_STATE_CONFIRMED and live.answered_mono is None:
            live.answered_mono = time.monotonic()
            self._emit(CallEvent(live.job.attempt_id, EventKind.ANSWERED, _now(), sip_code=200))
            self._attach_agent(live)
        elif note.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if 300 <= live.last_response < 400:
                # pjsua reports a redirect it did not follow as 487; the 3xx is what happened.
                self._finish(live, sip_code=live.last_response, sip_reason="redirect not followed")
            else:
                self._finish(live, sip_code=note.sip_code or None, sip_reason=note.sip_reason)

    def _on_dtmf_event(self, live: _Live, note: _Note) -> None:
        """One key press is one digit: RFC 4733 reports a press as a start, updates while it is
        held and an end; a SIP INFO is one event per press."""
        if note.dtmf_method != DTMF_METHOD_RFC2833:
            self._on_dtmf(live, note.digit)
            return
        if not live.dtmf_pressed:
            self._on_dtmf(live, note.digit)
        live.dtmf_pressed = not note.dtmf_flags & DTMF_IS_END

    def _on_dtmf(self, live: _Live, digit: str) -> None:
        if not digit:
            return
        if live.session is not None:
            live.session.on_dtmf(digit)
        if live.job.opt_out_digit and digit == live.job.opt_out_digit and not live.opted_out:
            live.opted_out = True  # once per call, however often the key is pressed
            self._emit(CallEvent(live.job.attempt_id, EventKind.OPT_OUT, _now(), digit=digit))

    def _attach_agent(self, live: _Live) -> None:
        if not live.job.agent_url or live.session is not None or not live.audio_active:
            return
        if self._bridge is None:
            if self._bridge_factory is None:
                return
            self._bridge = self._bridge_factory()
        from telephony.bridge.runner import StreamInfo  # the bridge is only loaded when used

        live.session = self._bridge.open(
            url=live.job.agent_url,
            stream=StreamInfo(
                call_sid=f"CA{live.job.attempt_id:032d}",
                account_sid="AC" + "0" * 32,
                stream_sid="",
                custom_parameters=live.job.custom_parameters,
                wire=live.job.stream_format,
                on_hangup_request=self.wake,
            ),
        )
        if live.relay is not None:
            remote = self._remote_media(live)
            if remote is None:
                self.hangup(live.job.attempt_id, "bridge_failed")
                return
            self._bridge.attach_relay(live.relay, live.session, remote)
            return
        try:
            media = live.call.getAudioMedia(-1)
            live.tap = self._take_tap()
            live.tap.attach(live.session)
            media.startTransmit(live.tap)
            live.tap.startTransmit(media)
        except pj.Error as exc:
            log.warning(
                "attempt %s: could not attach the agent: %s", live.job.attempt_id, exc.info()
            )
            self.hangup(live.job.attempt_id, "bridge_failed")

    def _remote_media(self, live: _Live) -> Any:
        from telephony.bridge.relay import remote_media_from

        try:
            remote = remote_media_from(live.call.getStreamInfo(0))
        except pj.Error as exc:
            log.warning("attempt %s: no stream info: %s", live.job.attempt_id, exc.info())
            return None
        if remote is None:
            log.warning("attempt %s: the far end's SDP gives no G.711 address", live.job.attempt_id)
        return remote

    def _update_relay(self, live: _Live) -> None:
        remote = self._remote_media(live)
        if remote is not None:
            self._bridge.update_relay(live.relay, remote)

    def _take_tap(self) -> BridgeTap:
        if self._free_taps:
            return self._free_taps.pop()
        tap = BridgeTap(f"tap{len(self._taps)}")
        self._taps.append(tap)
        return tap

    def _enforce_timers(self) -> None:
        now = time.monotonic()
        for attempt_id, live in list(self._live.items()):
            if live.hangup_sent:
                continue
            if live.answered_mono is not None and now >= live.next_quality_mono:
                # Kept fresh while the call is up (the stream is gone by the time pjsua reports
                # the call disconnected), so a call that ends remotely still has a reading.
                if live.next_quality_mono:
                    live.quality = self._read_quality(live) or live.quality
                live.next_quality_mono = now + QUALITY_EVERY_S
            if live.answered_mono is None:
                if now - live.invite_mono >= live.job.ring_timeout_s:
                    live.ring_timed_out = True
                    self.hangup(attempt_id, "ring_timeout")
            elif now - live.answered_mono >= live.job.max_call_s:
                self.hangup(attempt_id, "max_duration")
            elif live.session is not None and live.session.hangup_requested():
                # "agent:<reason>" when the agent ended it, the bare reason when the dialer
                # did (agent_idle, agent_protocol_error, ...): see session.AGENT_HANGUPS.
                self.hangup(attempt_id, live.session.hangup_cause or "agent:closed")

    def _finish(self, live: _Live, *, sip_code: int | None, sip_reason: str) -> None:
        self._live.pop(live.job.attempt_id, None)
        answered = live.answered_mono is not None
        duration = round(time.monotonic() - live.answered_mono, 3) if live.answered_mono else None
        frames_to = frames_from = 0
        if live.session is not None:
            live.session.close()
            frames_to = live.session.frames_to_agent
            frames_from = live.session.frames_from_agent
        if live.relay is not None:
            if answered:
                live.quality = live.relay.quality() or live.quality
            if self._bridge is not None:
                self._bridge.detach_relay(live.relay)
            else:
                live.relay.close_unstarted()
            live.relay = None
        if live.tap is not None:
            # The call's stream has left the conference (pjsua removes it, and its connections,
            # before reporting the call disconnected): the tap is free for the next call.
            live.tap.detach()
            self._free_taps.append(live.tap)
        live.tap = None
        live.session = None
        cause = live.hangup_cause or ("remote_hangup" if answered else "")
        quality = live.quality.as_dict() if answered and live.quality is not None else None
        disposition = disposition_for(
            answered=answered,
            sip_code=sip_code,
            ring_timed_out=live.ring_timed_out,
            response_seen=live.response_seen,
        )
        self._emit(
            CallEvent(
                live.job.attempt_id,
                EventKind.ENDED,
                _now(),
                sip_code=200 if answered else sip_code,
                sip_reason="OK" if answered else sip_reason,
                disposition=disposition,
                duration_s=duration,
                frames_to_agent=frames_to,
                frames_from_agent=frames_from,
                hangup_cause=cause,
                quality=quality,
            )
        )
