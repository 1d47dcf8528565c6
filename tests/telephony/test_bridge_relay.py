"""The RTP relay on real loopback sockets and a real event loop (the far end is a UDP socket of
ours); the SDP rewrite and stream-info parsing as pure functions. The whole path, from a SIPp or
pjsua2 far end through the engine to a WebSocket agent, is in
tests/telephony/test_bridge_call.py."""

from __future__ import annotations

import random
import socket
import struct
import time
import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from telephony.bridge import rtp
from telephony.bridge.relay import (
    PCMA,
    PCMU,
    RemoteMedia,
    RtpRelay,
    bind_pair,
    remote_media_from,
    rewrite_sdp,
)
from tests.helpers.bridge import LoopThread
from tests.helpers.wait import wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=pjmedia\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8 120\r\nc=IN IP4 192.0.2.2\r\na=rtcp:4001 IN IP4 192.0.2.2\r\n"
    "a=sendrecv\r\na=rtpmap:120 telephone-event/8000\r\n"
)


def test_rewrite_sdp_points_audio_and_rtcp_at_the_relay() -> None:
    out = rewrite_sdp(OFFER, host="127.0.0.1", port=20038)
    assert "m=audio 20038 RTP/AVP 0 8 120\r\n" in out
    assert "192.0.2.2" not in out.replace("o=- 1 1 IN IP4 192.0.2.2", "")
    assert out.count("c=IN IP4 127.0.0.1\r\n") == 2
    assert "a=rtcp:20039 IN IP4 127.0.0.1\r\n" in out
    assert out.endswith("a=rtpmap:120 telephone-event/8000\r\n")  # the rest untouched


def test_remote_media_from_stream_info() -> None:
    info = SimpleNamespace(
        remoteRtpAddress="10.1.2.3:30000", remoteRtcpAddress="10.1.2.3:30001", codecName="PCMA"
    )
    assert remote_media_from(info) == RemoteMedia(("10.1.2.3", 30000), ("10.1.2.3", 30001), PCMA)
    info.remoteRtcpAddress = ""
    assert remote_media_from(info) == RemoteMedia(("10.1.2.3", 30000), ("10.1.2.3", 30001), PCMA)
    info.codecName = "opus"
    assert remote_media_from(info) is None
    info.codecName, info.remoteRtpAddress = "PCMU", "0.0.0.0:0"
    assert remote_media_from(info) is None


def test_bind_pair_takes_even_ports_from_the_top_and_skips_busy_ones() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1] // 2 * 2
    probe.close()
    ports = range(base, base + 6)
    first = bind_pair("127.0.0.1", ports)
    second = bind_pair("127.0.0.1", ports)
    try:
        assert first[0].getsockname()[1] == base + 4 and first[1].getsockname()[1] == base + 5
        assert second[0].getsockname()[1] == base + 2
    finally:
        for sock in (*first, *second):
            sock.close()


class Agent:
    """The relay's session side: records the callee's audio, plays a queue of frames."""

    def __init__(self) -> None:
        self.heard: list[bytes] = []
        self.to_play: list[bytes] = []

    def deliver_call_audio(self, pcm: bytes) -> None:
        self.heard.append(pcm)

    def next_agent_audio(self) -> bytes:
        return self.to_play.pop(0) if self.to_play else bytes(320)


@pytest.fixture
def far_end() -> Iterator[tuple[socket.socket, socket.socket]]:
    rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp_sock.bind(("127.0.0.1", 0))
    rtcp_sock.bind(("127.0.0.1", 0))
    rtp_sock.settimeout(1)
    rtcp_sock.settimeout(1)
    yield rtp_sock, rtcp_sock
    rtp_sock.close()
    rtcp_sock.close()


def _relay(digits: list[str], **relay_kwargs: Any) -> RtpRelay:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1] // 2 * 2
    probe.close()
    rtp_sock, rtcp_sock = bind_pair("127.0.0.1", range(base, base + 40))
    return RtpRelay(rtp_sock, rtcp_sock, on_digit=digits.append, cname="test", **relay_kwargs)


@pytest.mark.parametrize("law", [PCMU, PCMA])
def test_relay_carries_audio_both_ways_counts_loss_and_detects_dtmf(
    far_end: tuple[socket.socket, socket.socket], law: int
) -> None:
    far_rtp, far_rtcp = far_end
    digits: list[str] = []
    relay = _relay(digits)
    agent = Agent()
    loop = LoopThread()
    encode = audioop.lin2alaw if law == PCMA else audioop.lin2ulaw
    try:
        remote = RemoteMedia(far_rtp.getsockname(), far_rtcp.getsockname(), law)
        # Early media queued before the answer is dropped, not handed to the agent.
        far_rtp.sendto(rtp.build_rtp(payload_type=law, seq=1, timestamp=0, ssrc=7,
                                     payload=bytes(160)), ("127.0.0.1", relay.port))  # fmt: skip
        time.sleep(0.05)  # queued before the start: nothing to wait on, the relay is not reading
        loop.call(relay.start, loop.loop, agent, remote)

        tone = struct.pack("<160h", *([4000, -4000] * 80))
        relay_addr = ("127.0.0.1", relay.port)

        def send(seq: int) -> None:
            packet = rtp.build_rtp(
                payload_type=law, seq=seq, timestamp=seq * 160, ssrc=7, payload=encode(tone, 2)
            )
            far_rtp.sendto(packet, relay_addr)

        for seq in [10, 11, 13, 14, 14, 12]:  # 12 overtaken by 13 and 14; 14 duplicated
            send(seq)
        # A key press: start, two updates, three end packets, all with the event's timestamp.
        for end, duration in [(0, 160), (0, 320), (0, 480), (1, 640), (1, 640), (1, 640)]:
            event = struct.pack("!BBH", 9, (end << 7) | 10, duration)
            far_rtp.sendto(rtp.build_rtp(payload_type=101, seq=20, timestamp=5000, ssrc=7,
                                         payload=event), relay_addr)  # fmt: skip
        far_rtp.sendto(b"\x00junk", relay_addr)  # ignored, never fatal
        wait_for(lambda: len(agent.heard) == 5 and digits == ["9"])
        assert all(abs(struct.unpack("<160h", pcm)[0] - 4000) < 200 for pcm in agent.heard)
        quality = relay.quality()
        assert quality is not None and quality.rx_loss_pct == 0  # 12 was put back in its place

        # 15 never comes: 16 and 17 wait for it, then go on when the wait is over.
        send(16)
        send(17)
        time.sleep(0.1)  # the wait for 15 runs out: that is the behaviour under test
        assert len(agent.heard) == 5
        loop.call(relay.tick, time.monotonic())
        assert len(agent.heard) == 7
        quality = relay.quality()
        assert quality is not None and quality.rx_loss_pct == 12.5  # 1 lost of 8
        far_rtp.recv(2048)  # that tick's packet to the far end

        # Agent -> far end: one packet per tick, in order, in the trunk's law.
        agent.to_play = [tone, tone]
        for _ in range(3):
            loop.call(relay.tick, time.monotonic())
        packets = [rtp.parse_rtp(far_rtp.recv(2048)) for _ in range(3)]
        assert all(p is not None and p.payload_type == law for p in packets)
        seqs = [p.seq for p in packets if p is not None]
        assert seqs == [(seqs[0] + i) % 65536 for i in range(3)]
        assert [p.payload for p in packets if p is not None][:2] == [encode(tone, 2)] * 2
        silence = encode(bytes(320), 2)
        assert packets[2] is not None and packets[2].payload == silence

        # RTCP every 5 s: a sender report about what we sent, with a block about what we got.
        loop.call(relay.tick, time.monotonic() + 6)
        far_rtp.recv(2048)
        report = far_rtcp.recv(2048)
        assert report[1] == 200  # SR
        assert rtp.parse_rtcp(report, our_ssrc=7, now_unix=time.time()) is not None
        assert struct.unpack_from("!I", report, 28)[0] == 7  # the report block is about ssrc 7

        # The far end's receiver report on our SR gives the call's round trip.
        ours = packets[0]
        assert ours is not None
        heard = rtp.ReceiveStats()
        heard.update_ssrc(ours.ssrc)
        heard.update(ours.seq, ours.timestamp, time.monotonic())
        reply = rtp.build_rtcp_report(
            ssrc=7, now_unix=time.time(), sender=None, stats=heard,
            last_sr_middle32=struct.unpack_from("!I", report, 10)[0],
            last_sr_arrival_unix=time.time(), cname="far",
        )  # fmt: skip
        time.sleep(0.03)  # the reply's way back
        far_rtcp.sendto(reply, ("127.0.0.1", relay.port + 1))
        wait_for(lambda: (q := relay.quality()) is not None and q.rtt_ms is not None)
        quality = relay.quality()
        assert quality is not None and quality.rtt_ms is not None and 25 < quality.rtt_ms < 500
    finally:
        loop.call(relay.stop, loop.loop)
        loop.stop()


# --- whose RTP is taken: the SDP address, or a NAT'd far end that proves itself -----------------
#
# Loopback has 127.0.0.0/8: the far end of the SDP is on 127.0.0.1, strangers and NAT'd far ends
# on other addresses, so "same IP" and "other IP" are both real.


def _read_so_far(relay: RtpRelay, sock: socket.socket) -> None:
    """Return once the relay has read every datagram sent to it so far, provided it ignores none
    of them but perhaps the last: then the first one it ignores (that one, or a junk datagram sent
    now from sock) is read after all the others (one socket, one queue)."""
    before = relay.ignored_packets
    sock.sendto(b"\x00junk", ("127.0.0.1", relay.port))
    wait_for(lambda: relay.ignored_packets > before, what="the relay to read what was sent")


def _udp(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(1)
    return sock


def _audio(seq: int, *, ssrc: int, fill: int = 0xFF, law: int = PCMU) -> bytes:
    return rtp.build_rtp(payload_type=law, seq=seq, timestamp=seq * 160, ssrc=ssrc,
                         payload=bytes([fill]) * 160)  # fmt: skip


def _key_press(digit: int, *, seq: int, ssrc: int) -> list[bytes]:
    """An RFC 4733 key press as a far end sends it: start, update, three end packets."""
    return [
        rtp.build_rtp(payload_type=101, seq=seq + i, timestamp=seq * 160, ssrc=ssrc,
                      payload=struct.pack("!BBH", digit, (end << 7) | 10, 160 * (i + 1)))
        for i, end in enumerate([0, 0, 1, 1, 1])
    ]  # fmt: skip


def _nothing_arrives(sock: socket.socket, wait: float = 0.1) -> bool:
    sock.settimeout(wait)
    try:
        sock.recv(2048)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(1)
    return False


class Call:
    """A started relay whose SDP names far_end, on a loop thread, with an agent."""

    def __init__(self, far_end: tuple[socket.socket, socket.socket], **relay_kwargs: object):
        self.digits: list[str] = []
        self.relay = _relay(self.digits, **relay_kwargs)
        self.agent = Agent()
        self.loop = LoopThread()
        self.addr = ("127.0.0.1", self.relay.port)
        self.rtcp_addr = ("127.0.0.1", self.relay.port + 1)
        remote = RemoteMedia(far_end[0].getsockname(), far_end[1].getsockname(), PCMU)
        self.loop.call(self.relay.start, self.loop.loop, self.agent, remote)

    def tick(self, at: float | None = None) -> None:
        self.loop.call(self.relay.tick, time.monotonic() if at is None else at)

    def heard_fills(self) -> set[int]:
        # What the agent heard, by payload octet: each sender below fills its audio with its own.
        return {audioop.lin2ulaw(pcm, 2)[0] for pcm in self.agent.heard}

    def close(self) -> None:
        self.loop.call(self.relay.stop, self.loop.loop)
        self.loop.stop()


@pytest.mark.slow
def test_stranger_sending_before_and_while_the_far_end_sends_never_reaches_the_agent(
    far_end: tuple[socket.socket, socket.socket],
) -> None:
    far_rtp, _ = far_end
    stranger = _udp("127.0.0.2")
    call = Call(far_end)
    try:
        # Before the far end's first packet: a well-formed stream (one SSRC, consecutive
        # sequence numbers, the call's payload type) and a key press on the opt-out digit.
        for seq in range(1, 11):
            stranger.sendto(_audio(seq, ssrc=666, fill=0x11), call.addr)
        for packet in _key_press(9, seq=11, ssrc=666):
            stranger.sendto(packet, call.addr)
        time.sleep(0.02)  # the stranger's stream runs a little while before the far end's
        for seq in range(500, 503):
            far_rtp.sendto(_audio(seq, ssrc=7, fill=0x22), call.addr)
        wait_for(lambda: len(call.agent.heard) == 3)
        # While the far end sends: the same again.
        for seq in range(16, 40):
            stranger.sendto(_audio(seq, ssrc=666, fill=0x11), call.addr)
        for packet in _key_press(9, seq=40, ssrc=666):
            stranger.sendto(packet, call.addr)
        time.sleep(0.4)  # past the moment a stranger could first be followed
        for seq in range(45, 60):
            stranger.sendto(_audio(seq, ssrc=666, fill=0x11), call.addr)
        far_rtp.sendto(_audio(503, ssrc=7, fill=0x22), call.addr)
        # 503 was sent after the stranger's last: heard, it was read after all of them.
        wait_for(lambda: len(call.agent.heard) == 4)
        assert call.heard_fills() == {0x22} and len(call.agent.heard) == 4
        assert call.digits == []  # no forged opt-out
        call.tick()
        assert rtp.parse_rtp(far_rtp.recv(2048)) is not None  # our audio goes to the far end
        assert _nothing_arrives(stranger)
        assert call.relay.ignored_packets >= 10 + 5 + 24 + 5 + 15
    finally:
        call.close()
        stranger.close()


@pytest.mark.slow
def test_stranger_spraying_random_ssrcs_and_sequence_numbers_is_never_followed(
    far_end: tuple[socket.socket, socket.socket],
) -> None:
    far_rtp, _ = far_end
    stranger = _udp("127.0.0.2")
    call = Call(far_end)  # the SDP's address never sends
    rng = random.Random(11)
    try:
        for _ in range(40):  # over 0.4 s, longer than any hold-off
            for _ in range(3):
                packet = _audio(rng.randrange(65536), ssrc=rng.randrange(1 << 32), fill=0x11)
                stranger.sendto(packet, call.addr)
            time.sleep(0.01)  # pacing: the spray lasts longer than any hold-off
        wait_for(lambda: call.relay.ignored_packets + len(call.agent.heard) >= 120)
        assert call.agent.heard == []
        call.tick()
        assert rtp.parse_rtp(far_rtp.recv(2048)) is not None  # still to the SDP's address
        assert _nothing_arrives(stranger)
    finally:
        call.close()
        stranger.close()


@pytest.mark.slow
def test_two_sources_proving_themselves_at_once_are_both_refused(
    far_end: tuple[socket.socket, socket.socket],
) -> None:
    # Which one is the far end behind NAT and which the attacker cannot be told apart: follow
    # neither (the call has no audio from the agent's side) rather than risk the wrong one.
    far_rtp, _ = far_end
    one, two = _udp("127.0.0.2"), _udp("127.0.0.3")
    call = Call(far_end)
    try:
        for seq in range(1, 31):
            one.sendto(_audio(seq, ssrc=1, fill=0x11), call.addr)
            two.sendto(_audio(seq + 1000, ssrc=2, fill=0x33), call.addr)
            time.sleep(0.02)  # pacing: two streams at 20 ms, as real ones
        wait_for(lambda: call.relay.ignored_packets + len(call.agent.heard) >= 60)
        assert call.agent.heard == []
        call.tick()
        assert rtp.parse_rtp(far_rtp.recv(2048)) is not None
        assert _nothing_arrives(one) and _nothing_arrives(two)
    finally:
        call.close()
        one.close()
        two.close()


def _receiver_report(our_sr: bytes, *, ssrc: int) -> bytes:
    """A receiver report about the stream our SR describes, answering that SR (LSR and DLSR)."""
    ours = rtp.ReceiveStats()
    ours.update_ssrc(struct.unpack_from("!I", our_sr, 4)[0])
    ours.update(1, 0, time.monotonic())
    return rtp.build_rtcp_report(
        ssrc=ssrc, now_unix=time.time(), sender=None, stats=ours,
        last_sr_middle32=struct.unpack_from("!I", our_sr, 10)[0],
        last_sr_arrival_unix=time.time(), cname="x",
    )  # fmt: skip


def test_rtcp_is_taken_only_from_the_peer_ip_with_the_peers_ssrc(
    far_end: tuple[socket.socket, socket.socket],
) -> None:
    far_rtp, far_rtcp = far_end
    stranger = _udp("127.0.0.2")
    same_ip = _udp("127.0.0.1")
    call = Call(far_end)
    try:
        for seq in range(1, 4):
            far_rtp.sendto(_audio(seq, ssrc=7), call.addr)
        wait_for(lambda: len(call.agent.heard) == 3)
        call.tick(time.monotonic() + 6)  # RTP, and our first SR
        far_rtp.recv(2048)
        our_sr = far_rtcp.recv(2048)
        assert our_sr[1] == 200
        time.sleep(0.03)  # a round trip longer than the clock's resolution

        # A stranger's report on our SR, claiming to be the far end (its SSRC, 7), and one
        # from the far end's own IP but another SSRC: neither counts toward the round trip.
        stranger.sendto(_receiver_report(our_sr, ssrc=7), call.rtcp_addr)
        same_ip.sendto(_receiver_report(our_sr, ssrc=8), call.rtcp_addr)
        # A stranger's SR would set the LSR we echo back.
        forged_sr = rtp.build_rtcp_report(
            ssrc=7, now_unix=time.time(), sender=rtp.RtpSender(PCMU), stats=None,
            last_sr_middle32=0, last_sr_arrival_unix=None, cname="x",
        )  # fmt: skip
        stranger.sendto(forged_sr, call.rtcp_addr)
        wait_for(lambda: call.relay.ignored_rtcp >= 3, what="the three reports to be refused")
        quality = call.relay.quality()
        assert quality is not None and quality.rtt_ms is None
        call.tick(time.monotonic() + 12)
        far_rtp.recv(2048)
        assert struct.unpack_from("!I", far_rtcp.recv(2048), 44)[0] == 0  # LSR: no SR seen

        # The far end's own report (its IP, its SSRC; any port: NATs move RTCP too) counts.
        same_ip.sendto(_receiver_report(our_sr, ssrc=7), call.rtcp_addr)
        wait_for(lambda: (q := call.relay.quality()) is not None and q.rtt_ms is not None)
    finally:
        call.close()
        stranger.close()
        same_ip.close()


@pytest.mark.slow
def test_far_end_behind_nat_is_followed_after_proving_itself_and_gets_audio_back(
    far_end: tuple[socket.socket, socket.socket],
) -> None:
    # The SDP names far_end (a private address behind NAT, say), which never sends; the far end
    # really sends from 127.0.0.3.
    far_rtp, far_rtcp = far_end
    natted, natted_rtcp = _udp("127.0.0.3"), _udp("127.0.0.3")
    call = Call(far_end)
    try:
        for seq in range(100, 130):  # 0.6 s of 20 ms packets
            natted.sendto(_audio(seq, ssrc=42, fill=0x44), call.addr)
            time.sleep(0.02)  # pacing: proving itself takes time as well as packets
        wait_for(lambda: len(call.agent.heard) >= 10)
        assert call.heard_fills() == {0x44}
        call.tick()
        assert rtp.parse_rtp(natted.recv(2048)) is not None  # our audio goes where it sends from
        # Its RTCP counts (its IP, its SSRC), and ours follows it back (symmetric RTCP): the
        # SDP's RTCP address is as unreachable as its RTP one.
        call.tick(time.monotonic() + 6)
        natted.recv(2048)
        our_sr = far_rtcp.recv(2048)
        natted_rtcp.sendto(_receiver_report(our_sr, ssrc=42), call.rtcp_addr)
        wait_for(lambda: (q := call.relay.quality()) is not None and q.rtt_ms is not None)
        call.tick(time.monotonic() + 12)
        natted.recv(2048)
        assert natted_rtcp.recv(2048)[1] == 200
        # Its key presses count (same SSRC as its audio)...
        for packet in _key_press(9, seq=130, ssrc=42):
            natted.sendto(packet, call.addr)
        wait_for(lambda: call.digits == ["9"])
        # ...but not another SSRC's from the same address, audio or key press...
        heard = len(call.agent.heard)
        for seq in range(131, 135):
            natted.sendto(_audio(seq, ssrc=43, fill=0x55), call.addr)
        for packet in _key_press(5, seq=135, ssrc=43):
            natted.sendto(packet, call.addr)
        # No count tells these apart from the rest (ignored or still proving itself): a margin.
        time.sleep(0.1)
        call.tick()  # anything held for reordering goes out now
        natted.recv(2048)
        assert len(call.agent.heard) == heard and call.digits == ["9"]
        # ...unless it proves itself like a new far end (the far end restarted its stream).
        for seq in range(7000, 7006):
            natted.sendto(_audio(seq, ssrc=44, fill=0x66), call.addr)
        time.sleep(0.1)  # as above: read, some proving, some taken; no count to wait on
        call.tick()
        natted.recv(2048)
        assert 0x66 in call.heard_fills() and 0x55 not in call.heard_fills()

        # The SDP's address is still authoritative: the moment it sends, it is the peer.
        for seq in range(1, 4):
            far_rtp.sendto(_audio(seq, ssrc=7, fill=0x22), call.addr)
        wait_for(lambda: 0x22 in call.heard_fills())
        natted.sendto(_audio(150, ssrc=42, fill=0x44), call.addr)
        _read_so_far(call.relay, natted)
        assert call.agent.heard[-1] == audioop.ulaw2lin(bytes([0x22]) * 160, 2)
        call.tick()
        assert rtp.parse_rtp(far_rtp.recv(2048)) is not None
        assert _nothing_arrives(natted)
    finally:
        call.close()
        natted.close()
        natted_rtcp.close()
