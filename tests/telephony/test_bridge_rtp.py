"""Unit tests for telephony.bridge.rtp: pure packet logic, no database or sockets."""

from __future__ import annotations

import random
import struct
import warnings
from collections.abc import Callable

import pytest

from telephony.bridge.rtp import (
    DtmfDetector,
    ReceiveStats,
    ReorderBuffer,
    RtcpInfo,
    RtpPacket,
    RtpSender,
    TelephoneEvent,
    build_rtcp_report,
    build_rtp,
    ntp_middle32,
    parse_rtcp,
    parse_rtp,
    parse_telephone_event,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

# --------------------------------------------------------------------------------- RTP parse


def test_build_rtp_exact_bytes() -> None:
    data = build_rtp(
        payload_type=0,
        seq=0x1234,
        timestamp=0xDEADBEEF,
        ssrc=0x01020304,
        payload=b"\xff\xfe",
        marker=True,
    )
    assert data == bytes.fromhex("80801234deadbeef01020304fffe")
    assert build_rtp(payload_type=8, seq=0x10001, timestamp=1 << 32, ssrc=5, payload=b"") == (
        bytes.fromhex("800800010000000000000005")  # seq and timestamp taken modulo
    )


def test_build_rtp_rejects_bad_payload_type() -> None:
    with pytest.raises(ValueError):
        build_rtp(payload_type=128, seq=0, timestamp=0, ssrc=0, payload=b"")


def test_parse_plain_packet() -> None:
    pkt = parse_rtp(bytes.fromhex("80e50102000000a0cafebabe") + b"\x01" * 4)
    assert pkt == RtpPacket(
        payload_type=101,
        marker=True,
        seq=0x0102,
        timestamp=160,
        ssrc=0xCAFEBABE,
        payload=b"\x01" * 4,
    )


def test_parse_skips_csrc_extension_and_padding() -> None:
    data = (
        bytes([0x80 | 0x20 | 0x10 | 2, 0x08])  # V=2, P, X, CC=2; PT 8 (PCMA), no marker
        + struct.pack("!HII", 65535, 4_000_000_000, 0x11223344)
        + struct.pack("!II", 0xAAAAAAAA, 0xBBBBBBBB)  # CSRCs
        + struct.pack("!HH", 0xBEDE, 1)
        + b"\x10\x20\x30\x40"  # one-word header extension
        + b"abc"
        + b"\x00\x00\x03"  # three octets of padding
    )
    pkt = parse_rtp(data)
    assert pkt is not None
    assert (pkt.payload_type, pkt.marker, pkt.seq, pkt.timestamp, pkt.ssrc) == (
        8,
        False,
        65535,
        4_000_000_000,
        0x11223344,
    )
    assert pkt.payload == b"abc"


def test_parse_padding_can_leave_empty_payload() -> None:
    pkt = parse_rtp(bytes.fromhex("a0000001000000020000000300000004"))
    assert pkt is not None and pkt.payload == b""


def test_parse_roundtrips_build() -> None:
    data = build_rtp(payload_type=0, seq=7, timestamp=8, ssrc=9, payload=bytes(160))
    assert parse_rtp(data) == RtpPacket(0, False, 7, 8, 9, bytes(160))


HEADER = bytes.fromhex("80000001000000020000000a")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        HEADER[:11],
        bytes([0x40]) + HEADER[1:] + b"x",  # version 1
        bytes([0xC0]) + HEADER[1:] + b"x",  # version 3
        bytes([0x81]) + HEADER[1:],  # one CSRC announced, none there
        bytes([0x8F]) + HEADER[1:] + bytes(56),  # 15 CSRCs need 60 octets
        bytes([0x90]) + HEADER[1:] + b"\xbe\xde",  # extension header cut short
        bytes([0x90]) + HEADER[1:] + b"\xbe\xde\x00\x02" + bytes(4),  # extension body too long
        bytes([0xA0]) + HEADER[1:] + b"ab\x00",  # padding count 0
        bytes([0xA0]) + HEADER[1:] + b"ab\x04",  # padding longer than the payload
        bytes([0xB1]) + HEADER[1:] + bytes(4) + b"\xbe\xde\x00\x00" + b"\x05",  # pad into ext
    ],
)
def test_parse_malformed_is_none(data: bytes) -> None:
    assert parse_rtp(data) is None


@pytest.mark.parametrize("second", [0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF])
def test_parse_rejects_rtcp(second: int) -> None:
    rr = bytes([0x80, second]) + bytes.fromhex("0001deadbeef") + bytes(20)
    assert parse_rtp(rr) is None
    assert parse_rtp(bytes([0x81, second]) + rr[2:]) is None


def test_parsers_never_raise_on_garbage() -> None:
    rng = random.Random(4733)
    good_rtp = build_rtp(payload_type=0, seq=1, timestamp=2, ssrc=3, payload=bytes(160))
    sender = RtpSender(0, ssrc=1)
    sender.packet(bytes(160))
    stats = ReceiveStats()
    stats.update_ssrc(2)
    stats.update(1, 160, 0.0)
    good_rtcp = build_rtcp_report(
        ssrc=1,
        now_unix=1e9,
        sender=sender,
        stats=stats,
        last_sr_middle32=5,
        last_sr_arrival_unix=1e9 - 1,
        cname="x",
    )
    detector = DtmfDetector()
    for i in range(4000):
        if i % 2:
            base = bytearray(good_rtp if i % 4 == 1 else good_rtcp)
            for _ in range(rng.randint(1, 4)):
                base[rng.randrange(len(base))] = rng.randrange(256)
            data = bytes(base[: rng.randint(0, len(base))])
        else:
            data = rng.randbytes(rng.randint(0, 80))
        assert parse_rtp(data) is None or isinstance(parse_rtp(data), RtpPacket)
        info = parse_rtcp(data, our_ssrc=2, now_unix=1e9)
        assert info is None or isinstance(info, RtcpInfo)
        parse_telephone_event(data)
        detector.feed(rng.randrange(1 << 32), data)


# --------------------------------------------------------------------------------- RtpSender


def test_sender_seq_wraps_and_timestamp_advances() -> None:
    sender = RtpSender(0, ssrc=0xABCDEF01, initial_seq=65534, initial_timestamp=(1 << 32) - 160)
    packets = [parse_rtp(sender.packet(bytes(160), marker=i == 0)) for i in range(4)]
    assert [p.seq for p in packets if p] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets if p] == [(1 << 32) - 160, 0, 160, 320]
    assert [p.marker for p in packets if p] == [True, False, False, False]
    assert {p.ssrc for p in packets if p} == {0xABCDEF01}
    assert sender.packets_sent == 4
    assert sender.octets_sent == 640
    assert sender.last_timestamp == 320
    assert sender.next_timestamp == 480


def test_sender_skip_leaves_a_timestamp_gap() -> None:
    sender = RtpSender(8, ssrc=1, initial_seq=10, initial_timestamp=1000)
    assert sender.last_timestamp == 1000  # before the first packet: the initial timestamp
    sender.packet(bytes(160))
    sender.skip(800)
    pkt = parse_rtp(sender.packet(bytes(80)))
    assert pkt is not None
    assert (pkt.payload_type, pkt.seq, pkt.timestamp) == (8, 11, 1000 + 160 + 800)
    assert sender.next_timestamp == 1000 + 160 + 800 + 80
    with pytest.raises(ValueError):
        sender.skip(-1)


def test_sender_random_initial_state_is_in_range() -> None:
    senders = [RtpSender(0) for _ in range(20)]
    for s in senders:
        assert 0 <= s.ssrc < 1 << 32
        assert 0 <= s.next_seq < 1 << 16
        assert 0 <= s.next_timestamp < 1 << 32
    assert len({s.ssrc for s in senders}) > 1


# ------------------------------------------------------------------------------ ReceiveStats


def feed(stats: ReceiveStats, seqs: list[int]) -> list[bool]:
    """Packets sent every 20 ms and arriving with a constant delay."""
    return [stats.update(s & 0xFFFF, s * 160 & 0xFFFFFFFF, s * 0.02) for s in seqs]


def test_stats_before_any_packet() -> None:
    stats = ReceiveStats()
    assert (stats.expected, stats.lost, stats.received, stats.extended_highest_seq) == (0, 0, 0, 0)
    assert stats.jitter_ms == 0.0
    assert stats.loss_fraction_since_last == 0


def test_stats_in_order_stream() -> None:
    stats = ReceiveStats()
    assert all(feed(stats, list(range(100, 150))))
    assert (stats.received, stats.expected, stats.lost, stats.discarded) == (50, 50, 0, 0)
    assert stats.extended_highest_seq == 149


def test_stats_gap_counts_loss() -> None:
    stats = ReceiveStats()
    assert feed(stats, [1, 2, 3, 7, 8]) == [True] * 5
    assert (stats.expected, stats.received, stats.lost) == (8, 5, 3)
    assert stats.loss_fraction_since_last == (3 << 8) // 8


def test_stats_duplicate_and_late_are_discarded() -> None:
    stats = ReceiveStats()
    assert feed(stats, [10, 11, 13, 13, 12, 11, 12, 14]) == [
        True,
        True,
        True,
        False,  # duplicate of the highest
        False,  # late (12 was lost when 13 arrived)
        False,  # duplicate of an older one
        False,  # duplicate of the late packet
        True,
    ]
    assert stats.duplicates == 3
    assert stats.late == 1
    assert stats.discarded == 4
    assert (stats.expected, stats.received) == (5, 4)
    assert stats.lost == 1  # the late packet was not forwarded: it stays lost


def test_stats_wraps_16_bit_sequence() -> None:
    stats = ReceiveStats()
    seqs = list(range(65530, 65535)) + list(range(5))  # 65535 is missing
    assert all(feed(stats, seqs))
    assert stats.extended_highest_seq == 65536 + 4
    assert (stats.expected, stats.received, stats.lost) == (11, 10, 1)
    assert stats.update(65535, 0, 1.0) is False  # late across the wrap, not a restart
    assert stats.update(65535, 0, 1.0) is False  # and now a duplicate
    assert (stats.late, stats.duplicates, stats.restarts, stats.lost) == (1, 1, 0, 1)


def test_stats_restart_jump_is_not_loss() -> None:
    stats = ReceiveStats()
    assert all(feed(stats, [100, 101, 102]))
    assert stats.update(20_000, 5, 1.0) is True  # forward jump > 3000
    assert stats.update(20_001, 165, 1.02) is True
    assert (stats.expected, stats.received, stats.lost, stats.restarts) == (5, 5, 0, 1)
    assert stats.extended_highest_seq == 20_001
    assert stats.update(50, 0, 1.04) is True  # backward jump > 3000 is a restart too
    assert (stats.expected, stats.lost, stats.restarts) == (6, 0, 2)
    assert stats.update(20_002, 0, 1.06) is True  # 20_002 - 50 > 3000: restart again
    assert stats.restarts == 3
    assert stats.update(23_002, 0, 1.08) is True  # exactly 3000 ahead: ordinary loss
    assert stats.lost == 2999


def test_stats_ssrc_change_resyncs() -> None:
    stats = ReceiveStats()
    stats.update_ssrc(0x1111)
    assert all(feed(stats, [1, 2, 3]))
    stats.update_ssrc(0x1111)
    assert stats.restarts == 0
    stats.update_ssrc(0x2222)
    assert stats.ssrc == 0x2222
    assert stats.update(2, 99_999, 5.0) is True  # would be a duplicate for the old source
    assert (stats.expected, stats.received, stats.lost, stats.restarts) == (4, 4, 0, 1)


def rfc_a8_jitter(timestamps: list[int], arrivals_s: list[float], rate: int = 8000) -> float:
    """RFC 3550 section 6.4.1 / A.8, written out independently: J += (|D| - J) / 16."""
    j = 0.0
    for i in range(1, len(timestamps)):
        d = (arrivals_s[i] - arrivals_s[i - 1]) * rate - (timestamps[i] - timestamps[i - 1])
        j += (abs(d) - j) / 16
    return j * 1000 / rate


def test_jitter_constant_spacing_is_zero() -> None:
    stats = ReceiveStats()
    t0 = 1_700_000_000.0
    for i in range(500):
        stats.update(i, 3_000_000 + i * 160, t0 + i * 0.02)
    assert stats.jitter_ms == pytest.approx(0.0, abs=1e-3)


def test_jitter_alternating_10ms_matches_rfc_formula() -> None:
    stats = ReceiveStats()
    timestamps = [((1 << 32) - 16_000 + i * 160) & 0xFFFFFFFF for i in range(300)]  # wraps
    arrivals = [1000.0 + i * 0.02 + (0.01 if i % 2 else -0.01) for i in range(300)]
    for i, (ts, at) in enumerate(zip(timestamps, arrivals, strict=True)):
        stats.update(i, ts, at)
    unwrapped = [(1 << 32) - 16_000 + i * 160 for i in range(300)]
    expected = rfc_a8_jitter(unwrapped, arrivals)
    assert stats.jitter_ms == pytest.approx(expected, rel=1e-6)
    # Every transit difference is 20 ms, so the estimate converges to 20 ms.
    assert stats.jitter_ms == pytest.approx(20.0, abs=0.01)
    assert stats.report_block().jitter == 159  # int(~160 timestamp units)


def test_jitter_skips_duplicates_but_counts_late() -> None:
    stats = ReceiveStats()
    stats.update(1, 160, 0.02)
    stats.update(1, 160, 5.0)  # duplicate: no jitter update
    assert stats.jitter_ms == 0.0
    stats.update(3, 480, 0.06)
    stats.update(2, 320, 0.09)  # late by 50 ms relative to its transit
    assert stats.jitter_ms == pytest.approx(rfc_a8_jitter([160, 480, 320], [0.02, 0.06, 0.09]))


def test_report_block_fields_and_interval() -> None:
    stats = ReceiveStats()
    stats.update_ssrc(0xFEEDF00D)
    feed(stats, [0, 1, 2, 3, 6, 7, 8, 9])  # 10 expected, 8 received
    block = stats.report_block()
    assert block == (0xFEEDF00D, (2 << 8) // 10, 2, 9, 0)
    assert (block.ssrc, block.fraction_lost, block.cumulative_lost) == (0xFEEDF00D, 51, 2)
    feed(stats, [10, 11])
    assert stats.report_block().fraction_lost == 0  # no loss in the new interval
    assert stats.lost == 2


# ---------------------------------------------------------------------------------- RFC 4733


def te(event: int, *, end: bool = False, volume: int = 10, duration: int = 0) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def test_parse_telephone_event_known_bytes() -> None:
    assert parse_telephone_event(b"\x0b\x8a\x03\x20") == TelephoneEvent(
        event=11, end=True, volume=10, duration=800
    )
    assert parse_telephone_event(b"\x05\x3f\x00\xa0\xff") == TelephoneEvent(5, False, 63, 160)
    assert parse_telephone_event(b"\x05\x0a\x00") is None


def test_dtmf_one_press_many_packets() -> None:
    detector = DtmfDetector()
    ts = 123_456
    packets = [te(5, duration=160)]
    packets += [te(5, duration=160 * k) for k in range(2, 7)]
    packets += [te(5, end=True, duration=1120)] * 3
    assert [detector.feed(ts, p) for p in packets] == ["5"] + [None] * 8


def test_dtmf_same_digit_twice_and_other_events() -> None:
    detector = DtmfDetector()
    got = [
        detector.feed(1000, te(1)),
        detector.feed(1000, te(1, end=True, duration=800)),
        detector.feed(3000, te(1, end=True, duration=800)),  # start/updates lost: still a press
        detector.feed(3000, te(1, end=True, duration=800)),
        detector.feed(5000, te(16)),  # flash: ignored
        detector.feed(6000, te(10)),
        detector.feed(7000, te(15)),
        detector.feed(8000, b"\x01"),
    ]
    assert got == ["1", None, "1", None, None, "*", "D", None]


def test_dtmf_long_event_segments_are_one_press() -> None:
    detector = DtmfDetector()
    assert detector.feed(0, te(11, duration=0xFFFF)) == "#"
    assert detector.feed(0xFFFF, te(11, duration=800)) is None  # next segment, RFC 4733 2.5.1.3
    assert detector.feed(0xFFFF, te(11, end=True, duration=1600)) is None
    assert detector.feed(200_000, te(11)) == "#"


# -------------------------------------------------------------------------------------- RTCP

A_SSRC = 0x11111111
B_SSRC = 0x22222222


def test_ntp_middle32() -> None:
    # 1970-01-01 is NTP second 2208988800 = 0x83AA7E80; .5 s is fraction 0x8000_0000.
    assert ntp_middle32(0.5) == 0x7E808000
    assert ntp_middle32(1.0) - ntp_middle32(0.0) == 65536


def test_sr_with_block_round_trip_rtt() -> None:
    one_way = 0.040
    t0 = 1_700_000_000.25
    # B sends us an SR; we remember its middle 32 bits and when it arrived.
    b_sender = RtpSender(0, ssrc=B_SSRC, initial_seq=0, initial_timestamp=0)
    b_sender.packet(bytes(160))
    sr_b = build_rtcp_report(
        ssrc=B_SSRC,
        now_unix=t0,
        sender=b_sender,
        stats=None,
        last_sr_middle32=0,
        last_sr_arrival_unix=None,
        cname="b@example",
    )
    ours = parse_rtcp(sr_b, our_ssrc=A_SSRC, now_unix=t0 + one_way)
    assert ours == RtcpInfo(sender_ssrc=B_SSRC, sr_middle32=ntp_middle32(t0), rtt_s=None)
    assert ours is not None and ours.sr_middle32 is not None

    # We receive B's media (one packet lost) and answer with our SR 1.5 s later.
    stats = ReceiveStats()
    stats.update_ssrc(B_SSRC)
    for seq in (40, 41, 43, 44):
        stats.update(seq, seq * 160, seq * 0.02)
    a_sender = RtpSender(0, ssrc=A_SSRC, initial_seq=9, initial_timestamp=77)
    for _ in range(3):
        a_sender.packet(bytes(160))
    t1 = t0 + 1.5
    sr_a = build_rtcp_report(
        ssrc=A_SSRC,
        now_unix=t1,
        sender=a_sender,
        stats=stats,
        last_sr_middle32=ours.sr_middle32,
        last_sr_arrival_unix=t0 + one_way,
        cname="dialer@example",
    )

    # Wire layout: SR with one block, then SDES.
    b0, pt, length, ssrc = struct.unpack_from("!BBHI", sr_a)
    assert (b0, pt, length, ssrc) == (0x81, 200, 12, A_SSRC)
    msw, lsw, rtp_ts, packets, octets = struct.unpack_from("!IIIII", sr_a, 8)
    assert ((msw & 0xFFFF) << 16 | lsw >> 16) == ntp_middle32(t1)
    assert (rtp_ts, packets, octets) == (77 + 320, 3, 480)
    block = struct.unpack_from("!IIIIII", sr_a, 28)
    assert block[0] == B_SSRC
    assert block[1] == ((1 << 8) // 5) << 24 | 1  # fraction 1/5 lost, 1 cumulative
    assert block[2] == 44
    assert block[4] == ours.sr_middle32
    assert block[5] == pytest.approx((1.5 - one_way) * 65536, abs=1)
    assert sr_a[52:54] == b"\x81\xca"  # SDES follows

    # B parses our report when it arrives one way later: RTT = 2 * one_way.
    theirs = parse_rtcp(sr_a, our_ssrc=B_SSRC, now_unix=t1 + one_way)
    assert theirs is not None
    assert theirs.sender_ssrc == A_SSRC
    assert theirs.sr_middle32 == ntp_middle32(t1)
    assert theirs.rtt_s == pytest.approx(2 * one_way, abs=0.001)
    # A block about someone else gives no RTT.
    assert parse_rtcp(sr_a, our_ssrc=0x3333, now_unix=t1 + one_way).rtt_s is None  # type: ignore[union-attr]


def test_rr_and_sdes_layout() -> None:
    stats = ReceiveStats()
    stats.update_ssrc(B_SSRC)
    stats.update(1, 160, 0.0)
    now = 1_700_000_100.0
    lsr = ntp_middle32(now - 2.0)
    rr = build_rtcp_report(
        ssrc=A_SSRC,
        now_unix=now,
        sender=None,
        stats=stats,
        last_sr_middle32=lsr,
        last_sr_arrival_unix=now - 1.9,
        cname="ab",
    )
    assert rr[:8] == bytes.fromhex("81c9000711111111")
    assert rr[32:] == bytes.fromhex("81ca0003 11111111 0102 6162 00000000".replace(" ", ""))
    info = parse_rtcp(rr, our_ssrc=B_SSRC, now_unix=now + 0.05)
    assert info is not None
    assert (info.sender_ssrc, info.sr_middle32) == (A_SSRC, None)
    assert info.rtt_s == pytest.approx(0.15, abs=0.001)


def test_empty_rr_without_stats() -> None:
    rr = build_rtcp_report(
        ssrc=A_SSRC,
        now_unix=1e9,
        sender=None,
        stats=ReceiveStats(),  # nothing received yet: no block
        last_sr_middle32=0,
        last_sr_arrival_unix=None,
        cname="x" * 300,  # CNAME is capped at 255 octets
    )
    assert rr[:8] == bytes.fromhex("80c9000111111111")
    assert rr[16:18] == b"\x01\xff"  # CNAME item, 255 octets
    assert len(rr) % 4 == 0
    assert parse_rtcp(rr, our_ssrc=B_SSRC, now_unix=1e9) == RtcpInfo(A_SSRC, None, None)


def test_parse_rtcp_skips_other_packets_and_handles_negative_rtt() -> None:
    now = 1_700_000_000.0
    block = struct.pack("!IIIIII", B_SSRC, 0, 100, 5, ntp_middle32(now + 10), 0)  # LSR in future
    rr = struct.pack("!BBHI", 0x81, 201, 7, A_SSRC) + block
    bye = struct.pack("!BBHI", 0x81, 203, 1, A_SSRC)
    app = struct.pack("!BBHI", 0xA0, 204, 3, A_SSRC) + b"NAME" + b"\x00\x00\x00\x04"  # padded
    info = parse_rtcp(rr + bye + app, our_ssrc=B_SSRC, now_unix=now)
    assert info == RtcpInfo(A_SSRC, None, None)
    # Reduced-size RTCP (no SR/RR): the first packet's SSRC is the sender.
    assert parse_rtcp(bye, our_ssrc=B_SSRC, now_unix=now) == RtcpInfo(A_SSRC, None, None)


def _valid_compound() -> bytes:
    sender = RtpSender(0, ssrc=A_SSRC)
    sender.packet(bytes(160))
    return build_rtcp_report(
        ssrc=A_SSRC,
        now_unix=1e9,
        sender=sender,
        stats=None,
        last_sr_middle32=0,
        last_sr_arrival_unix=None,
        cname="c",
    )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: b"",
        lambda d: d[:7],
        lambda d: d[:-1],  # truncated SDES
        lambda d: d + b"\x80\xcb",  # trailing half header
        lambda d: d[:28] + b"\x80\xca\x00\x09" + d[32:],  # SDES length past the end
        lambda d: d[:28] + b"\x40" + d[29:],  # second packet version 1
        lambda d: b"\x81" + d[1:],  # SR claims a report block it does not have
        lambda d: b"\x80\xc8\x00\x01" + d[4:8],  # SR too short for sender info
        lambda d: b"\x80\x60" + d[2:],  # packet type 96: RTP, not RTCP
        lambda d: b"\xa0" + d[1:28],  # padding bit with a bogus pad count
        lambda d: build_rtp(payload_type=0, seq=1, timestamp=2, ssrc=3, payload=bytes(160)),
    ],
)
def test_parse_rtcp_malformed_is_none(mangle: Callable[[bytes], bytes]) -> None:
    data = _valid_compound()
    assert parse_rtcp(data, our_ssrc=B_SSRC, now_unix=1e9) is not None
    assert parse_rtcp(mangle(data), our_ssrc=B_SSRC, now_unix=1e9) is None


# ------------------------------------------------------------------------------ ReorderBuffer


def _reorder() -> ReorderBuffer:
    return ReorderBuffer(wait_s=0.04, max_held=3)


def test_reorder_passes_in_order_packets_straight_through() -> None:
    buf = _reorder()
    assert [buf.push(seq, bytes([seq]), 0.0) for seq in (5, 6, 7)] == [
        [b"\x05"],
        [b"\x06"],
        [b"\x07"],
    ]
    assert (buf.delivered, buf.skipped, buf.dropped) == (3, 0, 0)


def test_reorder_puts_an_overtaken_packet_back_and_drops_duplicates() -> None:
    buf = _reorder()
    assert buf.push(1, b"1", 0.0) == [b"1"]
    assert buf.push(3, b"3", 0.0) == []  # 2 is missing: 3 waits
    assert buf.push(3, b"3", 0.0) == []  # duplicate of a waiting packet
    assert buf.push(2, b"2", 0.01) == [b"2", b"3"]
    assert buf.push(2, b"2", 0.02) == []  # its turn has passed
    assert (buf.delivered, buf.skipped, buf.dropped) == (3, 0, 2)


def test_reorder_gives_up_on_a_lost_packet_after_the_wait_or_when_full() -> None:
    buf = _reorder()
    buf.push(10, b"a", 0.0)
    assert buf.push(12, b"c", 1.0) == []
    assert buf.expire(1.03) == []  # not waited long enough
    assert buf.expire(1.04) == [b"c"]  # 11 given up
    assert buf.push(11, b"b", 1.05) == []  # too late now
    for seq in (14, 15, 16):
        assert buf.push(seq, b"x", 2.0) == []
    assert buf.push(17, b"y", 2.0) == [b"x", b"x", b"x", b"y"]  # a fourth waiter: 13 given up
    assert (buf.delivered, buf.skipped, buf.dropped) == (6, 2, 1)


def test_reorder_across_the_16_bit_wrap_and_after_a_restart() -> None:
    buf = _reorder()
    assert buf.push(65535, b"a", 0.0) == [b"a"]
    assert buf.push(1, b"c", 0.0) == []
    assert buf.push(0, b"b", 0.0) == [b"b", b"c"]
    buf.push(3, b"w", 0.0)  # waits for 2
    assert buf.push(40000, b"n", 0.0) == [b"w", b"n"]  # a restart: the waiter goes out first
    assert buf.push(40001, b"m", 0.0) == [b"m"]
