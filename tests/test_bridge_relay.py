"""The RTP relay on real loopback sockets and a real event loop (the far end is a UDP socket of
ours); the SDP rewrite and stream-info parsing as pure functions. The whole path, from a SIPp or
pjsua2 far end through the engine to a WebSocket agent, is in tests/test_bridge_call.py."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from types import SimpleNamespace

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


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, fn: object, *args: object) -> None:
        done = threading.Event()

        def call() -> None:
            fn(*args)  # type: ignore[operator]
            done.set()

        self.loop.call_soon_threadsafe(call)
        assert done.wait(2)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2)
        self.loop.close()


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


def _relay(digits: list[str]) -> RtpRelay:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    base = probe.getsockname()[1] // 2 * 2
    probe.close()
    rtp_sock, rtcp_sock = bind_pair("127.0.0.1", range(base, base + 40))
    return RtpRelay(rtp_sock, rtcp_sock, on_digit=digits.append, cname="test")


def _wait(pred: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("law", [PCMU, PCMA])
def test_relay_carries_audio_both_ways_counts_loss_and_detects_dtmf(
    far_end: tuple[socket.socket, socket.socket], law: int
) -> None:
    far_rtp, far_rtcp = far_end
    digits: list[str] = []
    relay = _relay(digits)
    agent = Agent()
    loop = Loop()
    encode = audioop.lin2alaw if law == PCMA else audioop.lin2ulaw
    try:
        remote = RemoteMedia(far_rtp.getsockname(), far_rtcp.getsockname(), law)
        # Early media queued before the answer is dropped, not handed to the agent.
        far_rtp.sendto(rtp.build_rtp(payload_type=law, seq=1, timestamp=0, ssrc=7,
                                     payload=bytes(160)), ("127.0.0.1", relay.port))  # fmt: skip
        time.sleep(0.05)
        loop.run(relay.start, loop.loop, agent, remote)

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
        assert _wait(lambda: len(agent.heard) == 5 and digits == ["9"])
        assert all(abs(struct.unpack("<160h", pcm)[0] - 4000) < 200 for pcm in agent.heard)
        quality = relay.quality()
        assert quality is not None and quality.rx_loss_pct == 0  # 12 was put back in its place

        # 15 never comes: 16 and 17 wait for it, then go on when the wait is over.
        send(16)
        send(17)
        time.sleep(0.1)
        assert len(agent.heard) == 5
        loop.run(relay.tick, time.monotonic())
        assert len(agent.heard) == 7
        quality = relay.quality()
        assert quality is not None and quality.rx_loss_pct == 12.5  # 1 lost of 8
        far_rtp.recv(2048)  # that tick's packet to the far end

        # Agent -> far end: one packet per tick, in order, in the trunk's law.
        agent.to_play = [tone, tone]
        for _ in range(3):
            loop.run(relay.tick, time.monotonic())
        packets = [rtp.parse_rtp(far_rtp.recv(2048)) for _ in range(3)]
        assert all(p is not None and p.payload_type == law for p in packets)
        seqs = [p.seq for p in packets if p is not None]
        assert seqs == [(seqs[0] + i) % 65536 for i in range(3)]
        assert [p.payload for p in packets if p is not None][:2] == [encode(tone, 2)] * 2
        silence = encode(bytes(320), 2)
        assert packets[2] is not None and packets[2].payload == silence

        # RTCP every 5 s: a sender report about what we sent, with a block about what we got.
        loop.run(relay.tick, time.monotonic() + 6)
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
        assert _wait(lambda: (q := relay.quality()) is not None and q.rtt_ms is not None)
        quality = relay.quality()
        assert quality is not None and quality.rtt_ms is not None and 25 < quality.rtt_ms < 500
    finally:
        loop.run(relay.stop, loop.loop)
        loop.close()


def test_relay_takes_audio_only_from_the_far_end_and_follows_it_behind_nat(
    far_end: tuple[socket.socket, socket.socket],
) -> None:
    far_rtp, far_rtcp = far_end
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(1)
    relay = _relay([])
    agent = Agent()
    loop = Loop()
    relay_addr = ("127.0.0.1", relay.port)

    def packet(seq: int) -> bytes:
        return rtp.build_rtp(payload_type=PCMU, seq=seq, timestamp=seq * 160, ssrc=9,
                             payload=bytes(160))  # fmt: skip

    try:
        # The SDP names far_rtp; `other` stands for a far end behind NAT sending from elsewhere.
        loop.run(relay.start, loop.loop, agent,
                 RemoteMedia(far_rtp.getsockname(), far_rtcp.getsockname(), PCMU))  # fmt: skip
        for seq in range(1, 5):
            other.sendto(packet(seq), relay_addr)
        time.sleep(0.1)
        assert agent.heard == []  # four packets from an address the SDP did not name
        other.sendto(packet(5), relay_addr)
        assert _wait(lambda: len(agent.heard) == 1)  # the fifth in a row: followed
        loop.run(relay.tick, time.monotonic())
        assert rtp.parse_rtp(other.recv(2048)) is not None  # and our RTP goes there now
        # Once the peer is known, another source cannot slip audio in.
        for seq in range(100, 110):
            far_rtp.sendto(packet(seq), relay_addr)
        time.sleep(0.1)
        assert len(agent.heard) == 1
        assert relay.ignored_packets >= 14
    finally:
        loop.run(relay.stop, loop.loop)
        loop.close()
        other.close()
