"""Packet-level RTP/RTCP logic for relaying a call's G.711 media (RFC 3550, 4733, 5761).

Pure functions and small classes: no sockets, no asyncio, no Django. Everything here runs once
per 20 ms packet per direction, so the hot paths use precompiled ``struct.Struct`` objects and
``unpack_from`` (no intermediate slices).

Network input is untrusted: ``parse_rtp``, ``parse_rtcp``, ``parse_telephone_event`` and
``DtmfDetector.feed`` never raise on malformed bytes; the parsers return ``None`` instead.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass
from typing import NamedTuple

RTP_VERSION = 2
EVENT_DIGITS = "0123456789*#ABCD"  # RFC 4733 events 0-15

_RTP_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, seq, timestamp, SSRC
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_TELEPHONE_EVENT = struct.Struct("!BBH")  # event, E/R/volume, duration
_RTCP_COMMON = struct.Struct("!BBH")  # V/P/count, packet type, length in 32-bit words minus one
_RTCP_HEAD = struct.Struct("!BBHI")  # common header + sender SSRC
_SENDER_INFO = struct.Struct("!IIIII")  # NTP msw, NTP lsw, RTP timestamp, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")  # SSRC, fraction+cumulative, ext seq, jitter, LSR, DLSR
_NTP_MSW_LSW = struct.Struct("!II")

_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32
_MAX_DROPOUT = 3000  # RFC 3550 A.1: a bigger jump is a restart of the sender, not loss
_DUP_WINDOW = 128  # how far back (in sequence numbers) duplicates are told apart from late packets
_DUP_WINDOW_MASK = (1 << _DUP_WINDOW) - 1

_RTCP_SR = 200
_RTCP_RR = 201
_RTCP_SDES = 202
_SDES_CNAME = 1
_NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01


# --------------------------------------------------------------------------------------- RTP


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    marker: bool
    seq: int  # 16-bit
    timestamp: int  # 32-bit
    ssrc: int
    payload: bytes  # after the 12-byte header, CSRC list and header extension; padding removed


def parse_rtp(data: bytes) -> RtpPacket | None:
    """Parse one RTP packet; ``None`` for anything that is not a well-formed RTP packet.

    Besides version and length checks this rejects RTCP multiplexed on the same port
    (RFC 5761 section 4): a second byte in 0xC0-0xDF is an RTCP packet type 192-223, which
    covers SR/RR/SDES/BYE/APP (200-204) and also feedback/XR (205-207). RTP payload types
    64-95 with the marker bit would collide, which is why RFC 5761 forbids them when muxing.
    """
    n = len(data)
    if n < 12:
        return None
    b0, b1, seq, timestamp, ssrc = _RTP_HEADER.unpack_from(data, 0)
    if b0 == 0x80:  # the usual case: no padding, extension or CSRCs
        if 0xC0 <= b1 <= 0xDF:
            return None
        return RtpPacket(b1 & 0x7F, b1 > 0x7F, seq, timestamp, ssrc, data[12:])
    if b0 >> 6 != RTP_VERSION or 0xC0 <= b1 <= 0xDF:
        return None
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile id, 16-bit length in 32-bit words
        if offset + 4 > n:
            return None
        offset += 4 + 4 * _U16.unpack_from(data, offset + 2)[0]
    end = n
    if b0 & 0x20:  # padding: the last octet counts the padding octets, itself included
        pad = data[-1]
        if pad == 0:
            return None
        end -= pad
    if offset > end:
        return None
    return RtpPacket(b1 & 0x7F, b1 > 0x7F, seq, timestamp, ssrc, data[offset:end])


def build_rtp(
    *, payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False
) -> bytes:
    """A plain RTP packet (no CSRC, extension or padding); seq/timestamp/ssrc are taken modulo
    their field width so callers can count freely."""
    if not 0 <= payload_type <= 0x7F:
        raise ValueError(f"RTP payload type out of range: {payload_type}")
    return (
        _RTP_HEADER.pack(
            0x80,
            payload_type | 0x80 if marker else payload_type,
            seq & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc & 0xFFFFFFFF,
        )
        + payload
    )


class RtpSender:
    """One outgoing stream: random SSRC, random initial seq and timestamp (RFC 3550 section 5.1).

    The timestamp advances by ``len(payload)`` per packet, i.e. one octet per sample, which is
    right for G.711 at 8 kHz. ``initial_seq``/``initial_timestamp`` exist for tests and for
    continuing a stream; normally leave them random (it hardens SRTP against known plaintext).
    """

    __slots__ = (
        "_seq",
        "_timestamp",
        "last_timestamp",
        "octets_sent",
        "packets_sent",
        "payload_type",
        "ssrc",
    )

    def __init__(
        self,
        payload_type: int,
        *,
        ssrc: int | None = None,
        initial_seq: int | None = None,
        initial_timestamp: int | None = None,
    ) -> None:
        if not 0 <= payload_type <= 0x7F:
            raise ValueError(f"RTP payload type out of range: {payload_type}")
        self.payload_type = payload_type
        self.ssrc = (secrets.randbits(32) if ssrc is None else ssrc) & 0xFFFFFFFF
        self._seq = (secrets.randbits(16) if initial_seq is None else initial_seq) & 0xFFFF
        self._timestamp = (
            secrets.randbits(32) if initial_timestamp is None else initial_timestamp
        ) & 0xFFFFFFFF
        self.packets_sent = 0
        self.octets_sent = 0  # payload octets only, as the RTCP SR sender octet count wants
        # Timestamp of the most recently built packet (the initial timestamp before the first);
        # build_rtcp_report puts it in the SR.
        self.last_timestamp = self._timestamp

    @property
    def next_seq(self) -> int:
        return self._seq

    @property
    def next_timestamp(self) -> int:
        return self._timestamp

    def packet(self, payload: bytes, *, marker: bool = False) -> bytes:
        seq = self._seq
        ts = self._timestamp
        pt = self.payload_type
        data = _RTP_HEADER.pack(0x80, pt | 0x80 if marker else pt, seq, ts, self.ssrc) + payload
        n = len(payload)
        self._seq = (seq + 1) & 0xFFFF
        self._timestamp = (ts + n) & 0xFFFFFFFF
        self.last_timestamp = ts
        self.packets_sent += 1
        self.octets_sent += n
        return data

    def skip(self, samples: int) -> None:
        """Advance the timestamp without sending (silence suppression, hold): the receiver then
        sees the gap in the timestamps but no missing sequence numbers, as RFC 3550 intends."""
        if samples < 0:
            raise ValueError("cannot skip a negative number of samples")
        self._timestamp = (self._timestamp + samples) & 0xFFFFFFFF


class ReportBlock(NamedTuple):
    """The stats-derived fields of an RTCP report block, in wire order (RFC 3550 section 6.4.1);
    LSR and DLSR are not known to ReceiveStats and are added by build_rtcp_report."""

    ssrc: int  # the source reported on (0 when ReceiveStats.ssrc was never set)
    fraction_lost: int  # 8-bit fixed point, loss since the previous report_block()
    cumulative_lost: int  # clamped to 0..0x7FFFFF (the field is signed 24-bit)
    extended_highest_seq: int  # 32-bit
    jitter: int  # interarrival jitter in timestamp units, 32-bit


class ReceiveStats:
    """RFC 3550 appendix A.1 (sequence/extended highest seq, probation not needed: accept first
    packet) and A.8 (interarrival jitter), clock rate 8000.

    Deviations from the RFC, chosen because this feeds a relay that must not forward stale audio:

    * ``received`` counts only packets ``update`` accepted (returned True), so a packet that
      arrives too late to forward stays counted in ``lost``; ``lost = max(0, expected - received)``.
    * A jump of more than 3000 sequence numbers either way restarts the sequence at once (no
      two-packet confirmation): the restart packet is accepted, the gap is not counted as loss,
      and the jump does not feed the jitter estimate.
    * Duplicates are recognised within the last 128 sequence numbers; an older repeat is counted
      as late (both are discarded, the difference only matters for the jitter update).

    SSRC: call ``update_ssrc(packet.ssrc)`` before ``update`` for every packet (it is a single
    comparison when nothing changed). The first call records the SSRC; a different SSRC later
    means a new source (an SBC switched media), whose sequence and timestamps are unrelated, so
    the sequence is resynchronised as for a restart. Counters keep accumulating across sources.
    """

    __slots__ = (
        "_base_seq",
        "_cycles",
        "_expected_before",
        "_expected_prior",
        "_jitter",
        "_max_seq",
        "_received_prior",
        "_transit",
        "_window",
        "clock_rate",
        "discarded",
        "duplicates",
        "late",
        "received",
        "restarts",
        "ssrc",
    )

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.received = 0
        self.discarded = 0  # duplicates + late
        self.duplicates = 0
        self.late = 0
        self.restarts = 0  # sequence restarts and SSRC changes
        self._max_seq = -1  # -1: no packet in the current sequence segment yet
        self._base_seq = 0
        self._cycles = 0  # count of 16-bit wraps, times 2**16
        self._expected_before = 0  # packets expected in segments before the last restart
        self._window = 0  # bit i set: sequence number (max_seq - i) was seen
        self._transit: float | None = None
        self._jitter = 0.0  # in timestamp units, the float form of RFC 3550 A.8
        self._expected_prior = 0
        self._received_prior = 0

    def update_ssrc(self, ssrc: int) -> None:
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self._resync()
            self.ssrc = ssrc

    def _resync(self) -> None:
        if self._max_seq >= 0:
            self._expected_before += self._cycles + self._max_seq - self._base_seq + 1
            self.restarts += 1
        self._max_seq = -1
        self._transit = None  # a timestamp discontinuity is not network jitter

    def update(self, seq: int, timestamp: int, arrival_s: float) -> bool:
        """Account for one packet; True when it is new and in order and should be forwarded.

        ``arrival_s`` is any monotonic clock in seconds (only differences matter).
        """
        seq &= 0xFFFF
        max_seq = self._max_seq
        if max_seq >= 0:
            udelta = (seq - max_seq) & 0xFFFF
            if 0 < udelta <= _MAX_DROPOUT:  # in order, possibly after a gap
                if seq < max_seq:
                    self._cycles += _SEQ_MOD
                self._max_seq = seq
                self._window = ((self._window << udelta) | 1) & _DUP_WINDOW_MASK
                self.received += 1
                self._jitter_update(timestamp, arrival_s)
                return True
            if udelta == 0 or udelta >= _SEQ_MOD - _MAX_DROPOUT:  # duplicate or late
                back = (max_seq - seq) & 0xFFFF
                if back < _DUP_WINDOW:
                    bit = 1 << back
                    if self._window & bit:
                        self.duplicates += 1
                        self.discarded += 1
                        return False
                    self._window |= bit
                self.late += 1
                self.discarded += 1
                self._jitter_update(timestamp, arrival_s)
                return False
            self._resync()  # a jump of more than MAX_DROPOUT: the sender restarted
        self._base_seq = seq
        self._max_seq = seq
        self._cycles = 0
        self._window = 1
        self.received += 1
        self._jitter_update(timestamp, arrival_s)
        return True

    def _jitter_update(self, timestamp: int, arrival_s: float) -> None:
        # RFC 3550 A.8: J += (|D(i-1,i)| - J) / 16, D from the relative transit times.
        transit = arrival_s * self.clock_rate - timestamp
        prev = self._transit
        self._transit = transit
        if prev is None:
            return
        d = transit - prev
        # The RTP timestamp wraps at 2**32, making transit jump by 2**32: undo that.
        if d > 2147483648.0:
            d -= 4294967296.0
        elif d < -2147483648.0:
            d += 4294967296.0
        if d < 0:
            d = -d
        self._jitter += (d - self._jitter) / 16.0

    @property
    def extended_highest_seq(self) -> int:
        """Cycles * 2**16 + highest sequence number of the current segment; 0 before any packet."""
        if self._max_seq < 0:
            return 0
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        """Extended highest - base + 1, summed over restarts; 0 before any packet."""
        if self._max_seq < 0:
            return self._expected_before
        return self._expected_before + self._cycles + self._max_seq - self._base_seq + 1

    @property
    def lost(self) -> int:
        """max(0, expected - received): late packets count as lost (they were not forwarded)."""
        return max(0, self.expected - self.received)

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000.0 / self.clock_rate

    @property
    def loss_fraction_since_last(self) -> int:
        """RFC 3550 A.3 8-bit fraction lost since the previous report_block() (or the start)."""
        expected_interval = self.expected - self._expected_prior
        lost_interval = expected_interval - (self.received - self._received_prior)
        if expected_interval <= 0 or lost_interval <= 0:
            return 0
        return min(255, (lost_interval << 8) // expected_interval)

    def report_block(self) -> ReportBlock:
        """The report block fields about ``ssrc``; starts a new fraction-lost interval."""
        fraction = self.loss_fraction_since_last
        self._expected_prior = self.expected
        self._received_prior = self.received
        return ReportBlock(
            (self.ssrc or 0) & 0xFFFFFFFF,
            fraction,
            min(self.lost, 0x7FFFFF),
            self.extended_highest_seq & 0xFFFFFFFF,
            min(int(self._jitter), 0xFFFFFFFF),
        )


class ReorderBuffer:
    """Puts a stream's packets back in sequence order, waiting a little for a missing one.

    In-order packets pass straight through (no delay). A gap holds the packets after it until the
    missing one arrives (mobile networks reorder within tens of ms), until ``wait_s`` has passed
    since the oldest held packet arrived, or until ``max_held`` packets wait; then the gap is
    given up as lost and the held packets go out in order. Duplicates and packets older than the
    ones already passed on are dropped.
    """

    def __init__(self, *, wait_s: float, max_held: int) -> None:
        self._wait_s = wait_s
        self._max_held = max_held
        self._next: int | None = None  # the sequence number to pass on next
        self._held: dict[int, tuple[float, bytes]] = {}
        self.delivered = 0  # packets passed on
        self.skipped = 0  # sequence numbers given up as lost
        self.dropped = 0  # duplicates and packets that came after their turn

    def push(self, seq: int, payload: bytes, now: float) -> list[bytes]:
        """The payloads ready to pass on, in order (often just this one)."""
        nxt = self._next
        if nxt is None:
            nxt = self._next = seq
        ahead = (seq - nxt) % _SEQ_MOD
        out: list[bytes] = []
        if _MAX_DROPOUT < ahead < _SEQ_MOD - _MAX_DROPOUT:
            # The sender restarted its sequence: pass on what waits, then follow the new one.
            waiting = sorted(self._held, key=lambda s: (s - nxt) % _SEQ_MOD)
            out = [self._held[s][1] for s in waiting]
            self.delivered += len(out)
            self._held.clear()
            self._next = seq
            ahead = 0
        elif ahead >= _SEQ_MOD // 2:
            self.dropped += 1  # its turn has passed: delivered, or given up as lost
            return out
        if ahead == 0:
            out.append(payload)
            self.delivered += 1
            self._next = (seq + 1) % _SEQ_MOD
            if self._held:
                out.extend(self._release())
            return out
        if seq in self._held:
            self.dropped += 1
            return out
        self._held[seq] = (now, payload)
        if len(self._held) > self._max_held:
            out.extend(self._skip_gap())
        return out

    def expire(self, now: float) -> list[bytes]:
        """Give up on a gap whose later packets have waited ``wait_s``: call it periodically."""
        if self._held and now - min(at for at, _ in self._held.values()) >= self._wait_s:
            return self._skip_gap()
        return []

    def _skip_gap(self) -> list[bytes]:
        nxt = self._next if self._next is not None else 0
        first = min(self._held, key=lambda s: (s - nxt) % _SEQ_MOD)
        self.skipped += (first - nxt) % _SEQ_MOD
        self._next = first
        return self._release()

    def _release(self) -> list[bytes]:
        out: list[bytes] = []
        nxt = self._next
        while nxt in self._held:
            out.append(self._held.pop(nxt)[1])
            nxt = (nxt + 1) % _SEQ_MOD
        self._next = nxt
        self.delivered += len(out)
        return out


# ------------------------------------------------------------------------------- RFC 4733 DTMF


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int  # 0-63, in -dBm0
    duration: int  # in timestamp units since the event's start timestamp


def parse_telephone_event(payload: bytes) -> TelephoneEvent | None:
    """RFC 4733 section 2.3 payload (first 4 octets); None if shorter."""
    if len(payload) < 4:
        return None
    event, flags, duration = _TELEPHONE_EVENT.unpack_from(payload, 0)
    return TelephoneEvent(event, flags > 0x7F, flags & 0x3F, duration)


class DtmfDetector:
    """One key press per RFC 4733 event, however many start/update/end (incl. the 3 redundant end)
    packets carry it.

    All packets of an event share the event's start timestamp, so a digit is reported the first
    time a timestamp differs from the last reported event's. That also survives a lost start
    packet (the first update or end packet reports it). One refinement from RFC 4733 section
    2.5.1.3: an event longer than the 16-bit duration field (~8.2 s at 8 kHz) continues in a new
    segment with a new timestamp; when the previous packet of the same, unfinished event had
    saturated its duration at 0xFFFF, the new timestamp is that continuation, not a new press.
    """

    __slots__ = ("_last_duration", "_last_end", "_last_event", "_last_ts")

    def __init__(self) -> None:
        self._last_ts: int | None = None
        self._last_event = -1
        self._last_end = True
        self._last_duration = 0

    def feed(self, timestamp: int, payload: bytes) -> str | None:
        if len(payload) < 4:
            return None
        event, flags, duration = _TELEPHONE_EVENT.unpack_from(payload, 0)
        if event > 15:  # not DTMF (flash, tones of RFC 4734...): ignore entirely
            return None
        end = flags > 0x7F
        continuation = timestamp == self._last_ts or (
            event == self._last_event and not self._last_end and self._last_duration == 0xFFFF
        )
        self._last_ts = timestamp
        self._last_event = event
        self._last_end = end
        self._last_duration = duration
        return None if continuation else EVENT_DIGITS[event]


# --------------------------------------------------------------------------------------- RTCP


def _ntp64(unix_s: float) -> tuple[int, int]:
    ntp = unix_s + _NTP_UNIX_OFFSET
    sec = int(ntp)
    frac = int((ntp - sec) * 4294967296.0)
    return sec & 0xFFFFFFFF, frac & 0xFFFFFFFF


def ntp_middle32(unix_s: float) -> int:
    """Middle 32 bits of the 64-bit NTP timestamp (16.16 fixed point seconds), as in LSR."""
    sec, frac = _ntp64(unix_s)
    return ((sec & 0xFFFF) << 16) | (frac >> 16)


def build_rtcp_report(
    *,
    ssrc: int,
    now_unix: float,
    sender: RtpSender | None,
    stats: ReceiveStats | None,
    last_sr_middle32: int,
    last_sr_arrival_unix: float | None,
    cname: str,
) -> bytes:
    """A compound RTCP packet: SR (with ``sender``) or RR, then SDES with the CNAME.

    One report block about ``stats.ssrc`` is included when stats has accepted any packet; it
    calls ``stats.report_block()``, which starts a new fraction-lost interval. LSR is
    ``last_sr_middle32`` (0 if the peer never sent an SR), DLSR the delay since
    ``last_sr_arrival_unix`` in 1/65536 s (0 when None). The SR's RTP timestamp is
    ``sender.last_timestamp``, up to one packet older than ``now_unix``: good enough for
    statistics, not for lip-sync.
    """
    blocks = b""
    count = 0
    if stats is not None and stats.received > 0:
        rb = stats.report_block()
        if last_sr_arrival_unix is None or not last_sr_middle32:
            lsr = dlsr = 0
        else:
            lsr = last_sr_middle32 & 0xFFFFFFFF
            dlsr = min(max(int((now_unix - last_sr_arrival_unix) * 65536.0), 0), 0xFFFFFFFF)
        blocks = _REPORT_BLOCK.pack(
            rb.ssrc,
            (rb.fraction_lost << 24) | rb.cumulative_lost,
            rb.extended_highest_seq,
            rb.jitter,
            lsr,
            dlsr,
        )
        count = 1
    ssrc &= 0xFFFFFFFF
    if sender is not None:
        msw, lsw = _ntp64(now_unix)
        body = _SENDER_INFO.pack(
            msw,
            lsw,
            sender.last_timestamp & 0xFFFFFFFF,
            sender.packets_sent & 0xFFFFFFFF,
            sender.octets_sent & 0xFFFFFFFF,
        )
        pt = _RTCP_SR
    else:
        body = b""
        pt = _RTCP_RR
    words = (8 + len(body) + len(blocks)) // 4
    report = _RTCP_HEAD.pack(0x80 | count, pt, words - 1, ssrc) + body + blocks

    text = cname.encode("utf-8")[:255]
    chunk = _U32.pack(ssrc) + bytes((_SDES_CNAME, len(text))) + text
    chunk += bytes(4 - len(chunk) % 4)  # the item list ends with >= 1 null octet, 32-bit aligned
    sdes = _RTCP_COMMON.pack(0x81, _RTCP_SDES, (4 + len(chunk)) // 4 - 1) + chunk
    return report + sdes


@dataclass(frozen=True, slots=True)
class RtcpInfo:
    sender_ssrc: int
    sr_middle32: int | None  # when the packet holds an SR: its NTP middle 32 bits (our next LSR)
    rtt_s: float | None  # when a report block is about our_ssrc with LSR != 0: now - LSR - DLSR


def parse_rtcp(data: bytes, *, our_ssrc: int, now_unix: float) -> RtcpInfo | None:
    """Walk a compound RTCP packet; None when it is malformed or not RTCP.

    Every sub-packet must be version 2 with a type in 192-223 and a length that fits; the
    sub-packets must exactly fill ``data``. SR and RR are read, anything else is skipped by its
    length (reduced-size RTCP without SR/RR, RFC 5506, is accepted). ``sender_ssrc`` is the
    first SR/RR's SSRC, else the first sub-packet's SSRC field. A negative round trip (clock
    trouble, bogus LSR) gives ``rtt_s`` None.
    """
    n = len(data)
    if n < 8:
        return None
    off = 0
    sender_ssrc: int | None = None
    fallback_ssrc: int | None = None
    sr_middle32: int | None = None
    rtt_s: float | None = None
    while off < n:
        if n - off < 4:
            return None
        b0, pt, length = _RTCP_COMMON.unpack_from(data, off)
        if b0 >> 6 != RTP_VERSION or not 192 <= pt <= 223:
            return None
        end = off + (length + 1) * 4
        if end > n:
            return None
        body_end = end
        if b0 & 0x20:  # padding octets at the end, counted by the last one
            pad = data[end - 1]
            if pad == 0 or pad > end - off - 4:
                return None
            body_end -= pad
        count = b0 & 0x1F
        if pt == _RTCP_SR or pt == _RTCP_RR:
            fixed = 28 if pt == _RTCP_SR else 8
            if body_end - off < fixed + 24 * count:
                return None
            ssrc = _U32.unpack_from(data, off + 4)[0]
            if sender_ssrc is None:
                sender_ssrc = ssrc
            if pt == _RTCP_SR:
                msw, lsw = _NTP_MSW_LSW.unpack_from(data, off + 8)
                sr_middle32 = ((msw & 0xFFFF) << 16) | (lsw >> 16)
            block = off + fixed
            for _ in range(count):
                block_ssrc, _loss, _seq, _jit, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, block)
                block += 24
                if block_ssrc == our_ssrc and lsr:
                    # 16.16 fixed point arithmetic modulo 2**32, as RFC 3550 6.4.1 describes
                    units = (ntp_middle32(now_unix) - lsr - dlsr) & 0xFFFFFFFF
                    rtt_s = None if units & 0x80000000 else units / 65536.0
        elif fallback_ssrc is None and body_end - off >= 8:
            fallback_ssrc = _U32.unpack_from(data, off + 4)[0]
        off = end
    if sender_ssrc is None:
        sender_ssrc = fallback_ssrc
        if sender_ssrc is None:
            return None
    return RtcpInfo(sender_ssrc, sr_middle32, rtt_s)
