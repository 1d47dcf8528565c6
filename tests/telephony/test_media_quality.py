"""E-model MOS from RTCP counters (pure), and the tap's fast ByteVector read (no endpoint)."""

from __future__ import annotations

import pjsua2 as pj
import pytest

from telephony.engine.quality import media_quality, mos_from_r, r_factor
from telephony.engine.tap import _fill_vector_slow, _vector_bytes_slow, fill_vector, vector_bytes


def test_a_clean_local_call_scores_near_g711s_ceiling() -> None:
    q = media_quality(received=500, lost=0, discarded=0, jitter_ms=0.4, rtt_ms=0.3, jb_delay_ms=40)
    assert q.rx_loss_pct == 0.0
    # d = 0.15 + 40 + 20 ms -> Id = 1.44, Ie,eff = 0: R = 91.76, MOS 4.38
    assert r_factor(loss_pct=0, one_way_ms=60.15) == pytest.approx(91.756, abs=0.01)
    assert q.mos == pytest.approx(4.38, abs=0.01)


def test_loss_and_discards_count_together_and_lower_the_score() -> None:
    q = media_quality(received=950, lost=25, discarded=25, jitter_ms=30, rtt_ms=80, jb_delay_ms=60)
    assert q.rx_loss_pct == pytest.approx(100 * 50 / 975)
    # 5.13% loss with PLC: Ie,eff = 95 * 5.13 / (5.13 + 25.1) = 16.1; d = 40 + 60 + 20 = 120 ms
    assert q.mos == pytest.approx(mos_from_r(93.2 - 0.024 * 120 - 95 * 5.128 / 30.228), abs=0.01)
    assert 3.7 < q.mos < 3.9


def test_long_delay_costs_more_past_177_ms_and_mos_is_bounded() -> None:
    below = r_factor(loss_pct=0, one_way_ms=170)
    above = r_factor(loss_pct=0, one_way_ms=300)
    assert below - above > 0.024 * 130  # the extra 0.11/ms beyond 177.3 ms
    assert mos_from_r(-5) == 1.0 and mos_from_r(120) == 4.5
    assert media_quality(received=0, lost=0, discarded=0, jitter_ms=0, rtt_ms=None,
                         jb_delay_ms=0).rtt_ms is None  # fmt: skip


def test_no_rtcp_round_trip_yet_is_said_not_invented() -> None:
    q = media_quality(received=10, lost=0, discarded=0, jitter_ms=1, rtt_ms=None, jb_delay_ms=20)
    assert q.rtt_ms is None and "rtt_ms" not in q.as_dict()


@pytest.mark.parametrize("size", [0, 1, 160, 320, 4096])
def test_the_tap_reads_a_byte_vector_exactly(size: int) -> None:
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    assert vector_bytes(pj.ByteVector(data)) == data
    frame = pj.MediaFrame()
    frame.buf = pj.ByteVector(data)
    assert vector_bytes(frame.buf) == data  # the member, read in place


@pytest.mark.parametrize("size", [0, 1, 320, 4096])
def test_the_tap_writes_a_frame_buffer_exactly(size: int) -> None:
    data = bytes((i * 11 + 5) % 256 for i in range(size))
    frame = pj.MediaFrame()
    frame.buf = pj.ByteVector(b"old contents, longer than some")
    fill_vector(frame.buf, data)
    assert bytes(frame.buf) == data
    _fill_vector_slow(frame.buf, data[::-1])  # the fallback where the pointer layout differs
    assert _vector_bytes_slow(frame.buf) == data[::-1]
