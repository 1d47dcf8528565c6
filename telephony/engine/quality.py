"""A call's media quality from the RTCP statistics pjsua2 keeps: loss, jitter, round trip, and an
estimated MOS by the ITU-T G.107 E-model, in the simplified form DESIGN.md gives.

    R   = 93.2 - Id - Ie,eff
    Id  = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)     d: one-way mouth-to-ear delay, ms
    Ie,eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl)  Ppl: packet loss, % (late = lost)
    MOS = 1 + 0.035 R + R (R - 60)(100 - R) 7e-6       (1 below R = 0, 4.5 above R = 100)

G.711 has Ie = 0 and, with packet loss concealment (pjmedia conceals G.711 losses), Bpl = 25.1
(G.113 Appendix I); losses are taken as random (BurstR = 1). Pure functions: no pjsua2 here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

G711_IE = 0.0
G711_BPL_WITH_PLC = 25.1
PACKET_MS = 20.0  # one 20 ms frame waits to be filled before it is sent


@dataclass(frozen=True)
class MediaQuality:
    rx_loss_pct: float  # lost or discarded by the jitter buffer, of the packets expected
    jitter_ms: float  # mean interarrival jitter (RFC 3550) of received RTP
    rtt_ms: float | None  # mean RTCP round trip; None until the far end sent a report
    jb_delay_ms: float  # mean jitter buffer delay
    mos: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in asdict(self).items() if v is not None}


def r_factor(*, loss_pct: float, one_way_ms: float, burst_ratio: float = 1.0) -> float:
    delay = max(0.0, one_way_ms)
    i_d = 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)
    ppl = min(100.0, max(0.0, loss_pct))
    ie_eff = G711_IE + (95 - G711_IE) * ppl / (ppl / burst_ratio + G711_BPL_WITH_PLC)
    return 93.2 - i_d - ie_eff


def mos_from_r(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def media_quality(
    *,
    received: int,
    lost: int,
    discarded: int,
    jitter_ms: float,
    rtt_ms: float | None,
    jb_delay_ms: float,
) -> MediaQuality:
    """From counters of the receive direction. Without an RTCP round trip yet, the network delay
    is taken as half the jitter buffer's (a local-network guess, said by rtt_ms = None)."""
    expected = received + lost
    loss_pct = 100.0 * (lost + discarded) / expected if expected > 0 else 0.0
    network_ms = rtt_ms / 2 if rtt_ms is not None else 0.0
    one_way = network_ms + jb_delay_ms + PACKET_MS
    mos = mos_from_r(r_factor(loss_pct=loss_pct, one_way_ms=one_way))
    return MediaQuality(
        rx_loss_pct=loss_pct,
        jitter_ms=jitter_ms,
        rtt_ms=rtt_ms,
        jb_delay_ms=jb_delay_ms,
        mos=mos,
    )
