"""PeerLatch: whose RTP a bridged call takes, as a pure function of packets and times (the same
rule over real sockets is in tests/telephony/test_bridge_relay.py)."""

from __future__ import annotations

import logging

import pytest

from telephony.bridge.latch import MAX_CANDIDATES, PeerLatch

SDP = ("10.0.0.5", 4000)
NAT = ("203.0.113.7", 61000)
STRANGER = ("198.51.100.9", 5004)
PCMU = 0
T0 = 0.0  # the latch's clock: any monotonic seconds (0 keeps the float sums exact enough)


def latch(**kwargs: float) -> PeerLatch:
    return PeerLatch(SDP, audio_payload_type=PCMU, started_at=T0, **kwargs)  # type: ignore[arg-type]


def feed(
    peer: PeerLatch,
    source: tuple[str, int],
    seqs: range | list[int],
    *,
    ssrc: int,
    at: float,
    pt: int = PCMU,
    every: float = 0.02,
) -> list[bool]:
    return [
        peer.accept(source, payload_type=pt, ssrc=ssrc, seq=seq & 0xFFFF, now=at + i * every)
        for i, seq in enumerate(seqs)
    ]


def test_the_sdp_address_is_the_peer_from_its_first_packet_with_any_ssrc() -> None:
    peer = latch()
    assert not peer.heard and peer.peer == SDP
    assert feed(peer, SDP, [9], ssrc=1, at=T0) == [True]
    assert peer.heard and peer.peer_ssrc == 1
    assert feed(peer, SDP, [30000], ssrc=2, at=T0 + 10) == [True]  # an SBC re-anchoring media
    assert peer.peer_ssrc == 2
    assert feed(peer, SDP, [1], ssrc=3, at=T0 + 10, pt=101) == [True]  # a key press
    assert peer.peer_ssrc == 2  # only audio says which stream RTCP is about


def test_a_nat_far_end_is_followed_after_five_in_a_row_and_the_hold() -> None:
    peer = latch()
    # 20 ms packets from the start: proven at the fifth, followed once 0.3 s have passed.
    accepted = feed(peer, NAT, range(100, 120), ssrc=42, at=T0)
    assert accepted.index(True) == 15 and all(accepted[15:])  # 15 * 20 ms = 0.3 s
    assert peer.peer == NAT and peer.peer_ssrc == 42 and peer.heard
    # Late and reordered packets of the peer are the peer's (reordering is not the latch's job).
    assert feed(peer, NAT, [110, 121, 120], ssrc=42, at=T0 + 1) == [True, True, True]


@pytest.mark.parametrize(
    "seqs",
    [
        [1, 2, 3, 4, 6, 7, 8, 9],  # a gap
        [1, 2, 3, 4, 4, 5, 6, 7],  # a repeat
        [5, 4, 3, 2, 1, 0, 65535, 65534],  # backwards
    ],
)
def test_a_broken_sequence_starts_the_count_again(seqs: list[int]) -> None:
    peer = latch()
    assert not any(feed(peer, NAT, seqs, ssrc=42, at=T0 + 1))
    assert peer.peer == SDP


def test_the_sequence_may_wrap_and_ssrc_and_payload_type_must_hold() -> None:
    peer = latch()
    assert feed(peer, NAT, range(65533, 65538), ssrc=42, at=T0 + 1)[-1] is True  # wraps to 1
    other = latch()
    assert not any(
        other.accept(NAT, payload_type=PCMU, ssrc=ssrc, seq=seq, now=T0 + 1)
        for seq, ssrc in zip(range(10), [1, 1, 1, 1, 2, 2, 2, 2, 1, 1], strict=True)
    )
    third = latch()
    assert not any(feed(third, NAT, range(20), ssrc=42, at=T0 + 1, pt=8))  # PCMA: not offered
    assert not any(feed(third, NAT, range(20), ssrc=42, at=T0 + 1, pt=101))  # events prove nothing


def test_nothing_new_is_followed_after_the_window() -> None:
    peer = latch(window_s=3.0)
    assert not any(feed(peer, NAT, range(50), ssrc=42, at=T0 + 3.0))
    assert peer.peer == SDP
    assert feed(peer, SDP, [1], ssrc=7, at=T0 + 60) == [True]  # the SDP address, any time


def test_the_sdp_address_takes_over_from_a_followed_nat_source_for_good() -> None:
    peer = latch()
    feed(peer, NAT, range(20), ssrc=42, at=T0)
    assert peer.peer == NAT
    assert feed(peer, SDP, [500], ssrc=7, at=T0 + 1) == [True]
    assert peer.peer == SDP and peer.peer_ssrc == 7
    assert not any(feed(peer, NAT, range(20, 40), ssrc=42, at=T0 + 1))


def test_a_stranger_before_the_hold_loses_to_the_sdp_address() -> None:
    peer = latch()
    assert not any(feed(peer, STRANGER, range(10), ssrc=666, at=T0, every=0.001))
    assert feed(peer, STRANGER, [10], ssrc=666, at=T0 + 0.29) == [False]
    assert feed(peer, SDP, [1], ssrc=7, at=T0 + 0.29) == [True]
    assert not any(feed(peer, STRANGER, range(11, 40), ssrc=666, at=T0 + 0.3))
    assert not any(feed(peer, STRANGER, [41], ssrc=666, at=T0 + 0.3, pt=101))  # no key press


def test_two_sources_proving_themselves_are_both_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.bridge.latch")
    peer = latch()
    for i in range(30):
        at = T0 + i * 0.02
        assert not peer.accept(NAT, payload_type=PCMU, ssrc=42, seq=i, now=at)
        assert not peer.accept(STRANGER, payload_type=PCMU, ssrc=666, seq=i + 900, now=at)
    assert peer.peer == SDP and not peer.heard
    assert len(caplog.records) == 1  # refused once, not once per packet
    assert feed(peer, SDP, [1], ssrc=7, at=T0 + 1) == [True]


def test_a_second_source_proving_itself_in_the_window_drops_the_followed_one() -> None:
    peer = latch()
    feed(peer, STRANGER, range(20), ssrc=666, at=T0)  # the stranger got there first...
    assert peer.peer == STRANGER
    # ...and the real far end shows up within the window: it cannot be told which is which.
    assert not any(feed(peer, NAT, range(500, 510), ssrc=42, at=T0 + 1))
    assert peer.peer == SDP and not peer.heard
    assert not any(feed(peer, STRANGER, range(20, 30), ssrc=666, at=T0 + 1.2))


def test_after_the_window_a_stranger_cannot_unseat_the_followed_peer() -> None:
    peer = latch()
    feed(peer, NAT, range(20), ssrc=42, at=T0)
    assert not any(feed(peer, STRANGER, range(100), ssrc=666, at=T0 + 5))
    assert peer.peer == NAT and feed(peer, NAT, [20], ssrc=42, at=T0 + 5) == [True]


def test_the_followed_peer_changes_ssrc_only_by_proving_the_new_one_at_any_time() -> None:
    peer = latch()
    feed(peer, NAT, range(20), ssrc=42, at=T0)
    assert feed(peer, NAT, range(4), ssrc=43, at=T0 + 60) == [False] * 4
    assert feed(peer, NAT, [20], ssrc=42, at=T0 + 60) == [True]  # still 42's
    assert feed(peer, NAT, [4, 5], ssrc=43, at=T0 + 61) == [True, True]  # the fifth in a row
    assert peer.peer_ssrc == 43
    assert feed(peer, NAT, [21], ssrc=42, at=T0 + 61) == [False]


def test_a_flood_from_many_ports_does_not_push_the_far_end_out_of_the_count() -> None:
    peer = latch()
    accepted = []
    for i in range(20):
        at = T0 + i * 0.02
        for port in range(3):  # fewer new sources between two of its packets than are kept
            peer.accept(("198.51.100.9", 7000 + i * 3 + port), payload_type=PCMU,
                        ssrc=i * 3 + port, seq=0, now=at)  # fmt: skip
        accepted.append(peer.accept(NAT, payload_type=PCMU, ssrc=42, seq=i, now=at))
    assert accepted[-1] and peer.peer == NAT
    assert MAX_CANDIDATES > 3
