"""Which source a bridged call's RTP is taken from (symmetric RTP, hardened against injection).

The rule, per far-end address the SDP names (a re-INVITE naming a new address starts over):

1. **The SDP address is authoritative.** Its packets are the call's from the first one on, with
   whatever SSRC (the address comes from the trunk's signalling, and SBCs switch SSRC when they
   re-anchor media). Once it has sent, every other source is dropped, including a NAT'd source
   followed before it: the SDP address takes over the moment it sends.
2. **A far end behind NAT proves itself.** Until the SDP address sends, another source is
   followed only if all of this holds:

   * it sent ``after_packets`` (5) packets in a row with one SSRC, consecutive sequence numbers
     and the negotiated audio payload type (a key press, a gap or another SSRC starts the count
     again). A stranger spraying RTP-shaped packets with random SSRCs or sequence numbers never
     qualifies;
   * all of that happened within ``window_s`` (3 s) of media starting (packets from sources
     other than the peer are not even counted after it). A far end that answers sends at once
     (trunks stream from the answer, silence included, and a NAT'd phone must send first for
     symmetric RTP to find it at all); 3 s also covers a phone that suppresses its opening
     silence until the callee says hello. Past that, nothing new is followed, so the port
     cannot be taken over mid-call by whoever finds it;
   * ``hold_s`` (0.3 s) has passed since media started, so a far end that sends from its SDP
     address is heard first even when someone else's packets arrived before its own (they are
     dropped until then, which costs a NAT'd far end its first 0.3 s of audio);
   * no other source has proven itself: two candidates cannot be told apart, so neither is
     followed (a refusal, logged once; the call keeps the SDP address). If a second source
     proves itself within the window after one was followed, that one is dropped too.

   Once followed, only that peer's address *and* SSRC are accepted, audio and RFC 4733 events
   alike. A new SSRC from the same address (the far end restarted its stream) is accepted after
   proving itself the same way, at any time: the address already has.

Not covered: while the SDP address is silent, a stranger that proves itself alone (the real far
end's packets never arriving) is followed until the SDP address sends or a second source proves
itself within the window; nothing in plain RTP tells the two apart (SRTP would). A stranger
spoofing the SDP address itself is not stopped either. A NAT'd far end whose NAT moves its port
after the window is not followed there (a re-INVITE naming the new address is).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Address = tuple[str, int]

LATCH_AFTER_PACKETS = 5
LATCH_HOLD_S = 0.3
LATCH_WINDOW_S = 3.0
# Sources counted at once; a flood from many ports evicts the one that sent least recently, so
# the real far end (a packet every 20 ms) keeps its place.
MAX_CANDIDATES = 8


@dataclass(slots=True)
class _Run:
    ssrc: int
    next_seq: int
    packets: int  # in a row: one SSRC, consecutive sequence numbers, the audio payload type


class PeerLatch:
    """Decides, packet by packet, whether RTP from a source belongs to the call. Pure: times are
    passed in (any monotonic clock, seconds), nothing here touches a socket."""

    def __init__(
        self,
        sdp_address: Address,
        *,
        audio_payload_type: int,
        started_at: float,
        after_packets: int = LATCH_AFTER_PACKETS,
        hold_s: float = LATCH_HOLD_S,
        window_s: float = LATCH_WINDOW_S,
        name: str = "",
    ) -> None:
        self._sdp = sdp_address
        self.audio_payload_type = audio_payload_type  # a re-INVITE may change it, not the peer
        self._started = started_at
        self._after = after_packets
        self._hold_s = hold_s
        self._window_s = window_s
        self._name = name  # for the log: which relay
        self._sdp_heard = False
        self._nat_peer: Address | None = None
        self._candidates: dict[Address, _Run] = {}  # oldest first
        self._proven: dict[Address, int] = {}  # source -> the SSRC it proved itself with
        self._refused = False  # two sources proved themselves: follow no one but the SDP address
        self.peer_ssrc: int | None = None  # the peer's audio SSRC, once known

    @property
    def peer(self) -> Address:
        """Where the call's RTP goes: the followed NAT'd source, else the SDP address."""
        return self._nat_peer or self._sdp

    @property
    def heard(self) -> bool:
        """Whether the peer has sent anything accepted (so its SSRC and address are known)."""
        return self._sdp_heard or self._nat_peer is not None

    def accept(
        self, source: Address, *, payload_type: int, ssrc: int, seq: int, now: float
    ) -> bool:
        """Whether this packet is the call's (True) or must be dropped (False)."""
        if source == self._sdp:
            if not self._sdp_heard:
                self._sdp_heard = True
                if self._nat_peer is not None:
                    logger.info(
                        "RTP %s: the far end now sends from its SDP address %s:%s; leaving %s:%s",
                        self._name,
                        *source,
                        *self._nat_peer,
                    )
                self._nat_peer = None
                self._candidates.clear()
            if payload_type == self.audio_payload_type:
                self.peer_ssrc = ssrc
            return True
        if self._sdp_heard:
            return False
        nat = self._nat_peer
        if source == nat and ssrc == self.peer_ssrc:
            return True
        if payload_type != self.audio_payload_type:
            return False
        if source != nat and now - self._started >= self._window_s:
            return False
        if not self._count(source, ssrc, seq):
            return False
        if source == nat:
            logger.info(
                "RTP %s: the far end at %s:%s switched SSRC %s -> %s",
                self._name,
                *source,
                self.peer_ssrc,
                ssrc,
            )
            self.peer_ssrc = ssrc
            return True
        return self._follow(source, ssrc, now)

    def _count(self, source: Address, ssrc: int, seq: int) -> bool:
        """Add the packet to its source's run; True once the run is long enough."""
        run = self._candidates.pop(source, None)
        if run is None or run.ssrc != ssrc or seq != run.next_seq:
            run = _Run(ssrc=ssrc, next_seq=seq, packets=0)
        run.packets += 1
        run.next_seq = (seq + 1) & 0xFFFF
        self._candidates[source] = run  # re-inserted: now the most recent
        if len(self._candidates) > MAX_CANDIDATES:
            del self._candidates[next(iter(self._candidates))]
        return run.packets >= self._after

    def _follow(self, source: Address, ssrc: int, now: float) -> bool:
        if self._refused:
            return False
        self._proven[source] = ssrc
        if len(self._proven) > 1:
            self._refused = True
            logger.warning(
                "RTP %s: %d sources proved themselves as the far end (%s); following "
                "none, only the SDP address %s:%s",
                self._name,
                len(self._proven),
                ", ".join(f"{h}:{p}" for h, p in self._proven),
                *self._sdp,
            )
            self._nat_peer, self.peer_ssrc = None, None
            return False
        if now - self._started < self._hold_s:
            return False  # the SDP address may still speak first
        self._nat_peer, self.peer_ssrc = source, ssrc
        logger.info(
            "RTP %s: the far end sends from %s:%s (SSRC %s), not %s:%s; following it",
            self._name,
            *source,
            ssrc,
            *self._sdp,
        )
        return True
