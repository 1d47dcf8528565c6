"""RtpRelay: a bridged call's RTP carried by the bridge's asyncio loop instead of pjsua's media.

For a call with an agent, pjsua only signals: the call's account uses pjsua's loopback media
transport (its stream never touches the network) and the call's SDP, rewritten as pjsua creates
it (``rewrite_sdp`` from ``onCallSdpCreated``), names the relay's socket. The far end's RTP then
arrives on the bridge's loop, where its G.711 payload goes straight into the agent's ``media``
messages; the agent's audio goes back out as RTP paced by the runner's 20 ms tick.

Why: with a pjsua2 AudioMediaPort tap a frame costs two SWIG director callbacks per 20 ms on
pjmedia's clock thread, pjsua's jitter buffer and a GIL hand-off to the loop; here it costs one
recvfrom, one sendto and the JSON, all on one thread. Measured with bench/bridge.py on 2 cores:
callee->agent p50 1.3 ms against 13-16 ms, for about the same CPU per call (median 57 bridged
calls per core against 53-62, both with the picows client on uvloop). What pjsua's stream did
for such calls is done here: receive statistics (RFC 3550 loss and jitter), RTCP reports (for
the round trip), RFC 4733 key presses, A-law or mu-law, and symmetric RTP (a far end behind NAT
is followed to the address it sends from), hardened: which source is the call's is decided by
``latch.PeerLatch`` (the SDP address, or a NAT'd source that proves itself), and RTCP is taken
only from that peer's IP with that peer's SSRC as its sender.

The far end's packets are forwarded as they come, as Twilio does for Media Streams: no
jitter-buffer delay on the way to the agent (its speech recognition does not play audio out).
Only a gap in the sequence waits, up to 40 ms, for the missing packet (rtp.ReorderBuffer); one
that never comes counts as lost. The way back is paced by our own clock.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from telephony.bridge import rtp
from telephony.bridge.audio import (
    PCM_FRAME_BYTES,
    alaw_to_pcm16,
    pcm16_to_alaw,
    pcm16_to_ulaw,
    silence_pcm,
    ulaw_to_pcm16,
)
from telephony.bridge.latch import LATCH_HOLD_S, LATCH_WINDOW_S, PeerLatch
from telephony.engine.quality import MediaQuality, media_quality

logger = logging.getLogger(__name__)

RTCP_EVERY_S = 5.0  # RFC 3550's minimum report interval
# Reordering: a packet missing from the sequence holds the ones after it this long (mobile
# networks reorder within tens of ms), or until this many wait; then it counts as lost.
REORDER_WAIT_S = 0.04
REORDER_MAX_HELD = 4
MAX_DATAGRAM = 2048
# A packet burst larger than this in one readiness callback is left for the next one, so one
# flooded call cannot hold the loop that carries the other calls.
MAX_READS_PER_WAKE = 32
PCMU, PCMA = 0, 8
_SILENCE_PCM = silence_pcm()


class AgentAudio(Protocol):
    """The relay's side of a BridgeSession."""

    def deliver_call_audio(self, pcm: bytes) -> None: ...

    def next_agent_audio(self) -> bytes: ...


@dataclass(frozen=True)
class RemoteMedia:
    """Where the far end wants our RTP, from the negotiated SDP (pjsua's stream info)."""

    rtp: tuple[str, int]
    rtcp: tuple[str, int]
    payload_type: int  # PCMU (0) or PCMA (8)


def _address(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def remote_media_from(info: Any) -> RemoteMedia | None:
    """From a pjsua2 StreamInfo: None when the stream has no usable address or codec."""
    rtp_addr = _address(str(info.remoteRtpAddress))
    if rtp_addr is None or rtp_addr[1] == 0:
        return None
    rtcp_addr = _address(str(info.remoteRtcpAddress)) or (rtp_addr[0], rtp_addr[1] + 1)
    codec = str(info.codecName).upper()
    payload_type = PCMA if codec == "PCMA" else PCMU if codec == "PCMU" else -1
    if payload_type < 0:
        return None
    return RemoteMedia(rtp=rtp_addr, rtcp=rtcp_addr, payload_type=payload_type)


_M_AUDIO = re.compile(r"^m=audio \d+", re.MULTILINE)
_C_LINE = re.compile(r"^c=IN IP4 \S+", re.MULTILINE)
_A_RTCP = re.compile(r"^a=rtcp:\d+[^\r\n]*", re.MULTILINE)


def rewrite_sdp(sdp: str, *, host: str, port: int) -> str:
    """Point an SDP's audio (and its RTCP) at the relay's socket."""
    sdp = _M_AUDIO.sub(f"m=audio {port}", sdp, count=1)
    sdp = _C_LINE.sub(f"c=IN IP4 {host}", sdp)
    return _A_RTCP.sub(f"a=rtcp:{port + 1} IN IP4 {host}", sdp)


def bind_pair(host: str, ports: range) -> tuple[socket.socket, socket.socket]:
    """An RTP socket on an even port of ``ports`` and its RTCP socket on the next port, tried
    from the top of the range down (pjsua's own transports fill it from the bottom)."""
    for port in range(ports.stop - 2, ports.start - 1, -1):
        if port % 2:
            continue
        rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtp_sock.bind((host, port))
            rtcp_sock.bind((host, port + 1))
        except OSError:
            rtp_sock.close()
            rtcp_sock.close()
            continue
        rtp_sock.setblocking(False)
        rtcp_sock.setblocking(False)
        return rtp_sock, rtcp_sock
    raise OSError(f"no free RTP port pair in {ports.start}-{ports.stop - 1} on {host}")


class RtpRelay:
    """One call's RTP. Built on the engine thread (its sockets must exist for the SDP offer);
    from ``start`` on, used only on the bridge loop's thread, except ``quality`` (plain reads)."""

    def __init__(
        self,
        rtp_sock: socket.socket,
        rtcp_sock: socket.socket,
        *,
        on_digit: Callable[[str], None],
        cname: str,
        latch_hold_s: float = LATCH_HOLD_S,
        latch_window_s: float = LATCH_WINDOW_S,
    ) -> None:
        """latch_hold_s and latch_window_s: see telephony.bridge.latch (tests shorten them)."""
        self._rtp = rtp_sock
        self._rtcp = rtcp_sock
        self._on_digit = on_digit
        self._cname = cname
        self.port: int = rtp_sock.getsockname()[1]
        self._remote: RemoteMedia | None = None
        self._latch: PeerLatch | None = None  # whose RTP is the call's, and where ours goes
        self._latch_hold_s = latch_hold_s
        self._latch_window_s = latch_window_s
        self._nat_rtcp: tuple[str, int] | None = None  # where a NAT'd peer's RTCP comes from
        self._agent: AgentAudio | None = None
        self._stats = rtp.ReceiveStats()  # RFC 3550 jitter and the RTCP report block
        self._order = rtp.ReorderBuffer(wait_s=REORDER_WAIT_S, max_held=REORDER_MAX_HELD)
        self._dtmf = rtp.DtmfDetector()
        self._sender: rtp.RtpSender | None = None
        self._decode: Callable[[bytes], bytes] = ulaw_to_pcm16
        self._encode: Callable[[bytes], bytes] = pcm16_to_ulaw
        self._silence = b""
        self._partial = bytearray()  # received audio short of a whole 20 ms frame
        self._peer_sr_middle32 = 0
        self._peer_sr_at: float | None = None
        self._next_rtcp = 0.0
        self._rtt_sum = 0.0
        self._rtt_n = 0
        self._closed = False
        self.ignored_packets = 0  # not RTP, not from the peer, or a payload type not offered
        self.ignored_rtcp = 0  # not RTCP, or not from the peer

    # --- loop thread ----------------------------------------------------------------------------

    def start(self, loop: Any, agent: AgentAudio, remote: RemoteMedia) -> None:
        self._drain_stale()
        self._agent = agent
        self.set_remote(remote)
        loop.add_reader(self._rtp.fileno(), self._read, self._rtp, self._on_rtp)
        loop.add_reader(self._rtcp.fileno(), self._read, self._rtcp, self._on_rtcp)
        self._next_rtcp = time.monotonic() + RTCP_EVERY_S

    def set_remote(self, remote: RemoteMedia) -> None:
        if self._sender is None or self._sender.payload_type != remote.payload_type:
            self._sender = rtp.RtpSender(remote.payload_type)
        if remote.payload_type == PCMA:
            self._decode, self._encode = alaw_to_pcm16, pcm16_to_alaw
        else:
            self._decode, self._encode = ulaw_to_pcm16, pcm16_to_ulaw
        self._silence = self._encode(_SILENCE_PCM)
        if self._remote is None or self._remote.rtp != remote.rtp or self._latch is None:
            # A new address (a re-INVITE may repeat the old one: keep what was learnt then).
            # Media (re)starts now: the window for following a NAT'd far end opens again.
            self._latch = PeerLatch(
                remote.rtp,
                audio_payload_type=remote.payload_type,
                started_at=time.monotonic(),
                hold_s=self._latch_hold_s,
                window_s=self._latch_window_s,
                name=str(self.port),
            )
            self._nat_rtcp = None
        else:
            self._latch.audio_payload_type = remote.payload_type
        self._remote = remote

    def stop(self, loop: Any) -> None:
        """Stop reading and close both sockets (the call has ended)."""
        if self._closed:
            return
        self._closed = True
        self._agent = None
        for sock in (self._rtp, self._rtcp):
            try:
                loop.remove_reader(sock.fileno())
            except (ValueError, OSError):
                pass
            sock.close()

    def close_unstarted(self) -> None:
        """Engine thread: the call ended before it was ever bridged."""
        if not self._closed:
            self._closed = True
            self._rtp.close()
            self._rtcp.close()

    def tick(self, now: float) -> None:
        """Every 20 ms: the agent's next frame (silence when it has none) goes to the far end.
        A silent agent still sends packets: carriers' SBCs hang up calls whose RTP stops."""
        agent, remote, sender, latch = self._agent, self._remote, self._sender, self._latch
        if agent is None or remote is None or sender is None or latch is None:
            return
        for payload in self._order.expire(now):
            self._deliver(agent, self._decode(payload))
        pcm = agent.next_agent_audio()
        payload = self._silence if pcm == _SILENCE_PCM else self._encode(pcm)
        try:
            self._rtp.sendto(sender.packet(payload), latch.peer)
        except OSError:
            pass  # a full buffer or an unreachable port: the next frame tries again
        if now >= self._next_rtcp:
            self._next_rtcp = now + RTCP_EVERY_S
            self._send_rtcp()

    def _drain_stale(self) -> None:
        # Early media queued before the answer is not for the agent.
        while True:
            try:
                self._rtp.recv(MAX_DATAGRAM)
            except OSError:
                return

    @staticmethod
    def _read(sock: socket.socket, handle: Callable[[bytes, Any], None]) -> None:
        for _ in range(MAX_READS_PER_WAKE):
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                return
            handle(data, source)

    def _on_rtp(self, data: bytes, source: tuple[str, int]) -> None:
        packet = rtp.parse_rtp(data)
        remote, agent, latch = self._remote, self._agent, self._latch
        if packet is None or remote is None or agent is None or latch is None:
            self.ignored_packets += 1
            return
        now = time.monotonic()
        pt = packet.payload_type
        if not latch.accept(source, payload_type=pt, ssrc=packet.ssrc, seq=packet.seq, now=now):
            self.ignored_packets += 1  # a stranger's, or a source still proving itself
            return
        if pt == remote.payload_type:
            self._stats.update_ssrc(packet.ssrc)
            self._stats.update(packet.seq, packet.timestamp, now)
            for payload in self._order.push(packet.seq, packet.payload, now):
                self._deliver(agent, self._decode(payload))
        elif pt >= 96:
            # The only dynamic payload type we offer is telephone-event (RFC 4733).
            digit = self._dtmf.feed(packet.timestamp, packet.payload)
            if digit is not None:
                self._on_digit(digit)
        else:
            self.ignored_packets += 1

    def _deliver(self, agent: AgentAudio, pcm: bytes) -> None:
        # Agents get 20 ms frames, as from Twilio, whatever the far end's packet time (30 ms
        # packets are common on trunks).
        if len(pcm) == PCM_FRAME_BYTES and not self._partial:
            agent.deliver_call_audio(pcm)
            return
        partial = self._partial
        partial += pcm
        whole = len(partial) - len(partial) % PCM_FRAME_BYTES
        for start in range(0, whole, PCM_FRAME_BYTES):
            agent.deliver_call_audio(bytes(partial[start : start + PCM_FRAME_BYTES]))
        del partial[:whole]

    def _on_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        # Only the peer's reports count: a stranger's would set the round trip we report and the
        # LSR we echo. Its IP, not its port (NATs map RTCP to ports of their own), and its SSRC:
        # RTCP from the peer's host is about the peer's stream.
        sender, latch, remote = self._sender, self._latch, self._remote
        if sender is None or latch is None or remote is None:
            return
        if not latch.heard or source[0] != latch.peer[0]:
            self.ignored_rtcp += 1
            return
        info = rtp.parse_rtcp(data, our_ssrc=sender.ssrc, now_unix=time.time())
        if info is None or info.sender_ssrc != latch.peer_ssrc:
            self.ignored_rtcp += 1
            return
        if latch.peer != remote.rtp:
            self._nat_rtcp = source  # symmetric RTCP: ours go back the way its own come
        if info.sr_middle32 is not None:
            self._peer_sr_middle32 = info.sr_middle32
            self._peer_sr_at = time.time()
        if info.rtt_s is not None:
            self._rtt_sum += info.rtt_s
            self._rtt_n += 1

    def _send_rtcp(self) -> None:
        remote, sender, latch = self._remote, self._sender, self._latch
        if remote is None or sender is None or latch is None:
            return
        report = rtp.build_rtcp_report(
            ssrc=sender.ssrc,
            now_unix=time.time(),
            sender=sender if sender.packets_sent else None,
            stats=self._stats if self._stats.received else None,
            last_sr_middle32=self._peer_sr_middle32,
            last_sr_arrival_unix=self._peer_sr_at,
            cname=self._cname,
        )
        try:
            self._rtcp.sendto(report, self._rtcp_destination(remote, latch))
        except OSError:
            pass

    def _rtcp_destination(self, remote: RemoteMedia, latch: PeerLatch) -> tuple[str, int]:
        # The SDP's RTCP address while the SDP address is the peer; for a NAT'd peer, where its
        # own reports come from (its SDP's RTCP address is as unreachable as its RTP one).
        nat_rtcp = self._nat_rtcp
        if latch.peer != remote.rtp and nat_rtcp is not None and nat_rtcp[0] == latch.peer[0]:
            return nat_rtcp
        return remote.rtcp

    # --- any thread -------------------------------------------------------------------------

    def quality(self) -> MediaQuality | None:
        """The receive direction's quality so far; None before any audio arrived."""
        order = self._order
        if not order.delivered:
            return None
        return media_quality(
            # What the agent got: a packet that came too late for its turn was skipped as lost.
            received=order.delivered,
            lost=order.skipped,
            discarded=0,
            jitter_ms=self._stats.jitter_ms,
            rtt_ms=self._rtt_sum / self._rtt_n * 1000 if self._rtt_n else None,
            jb_delay_ms=0.0,  # forwarded as it arrives: no jitter buffer on this path
        )
