from __future__ import annotations

import pytest

from telephony.engine.outcomes import disposition_for


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (486, "busy"),
        (600, "busy"),
        (480, "no_answer"),
        (408, "no_answer"),
        (603, "rejected"),
        (404, "invalid_number"),
        (484, "invalid_number"),
        (503, "failed"),
        (500, "failed"),
        (403, "failed"),
        (604, "failed"),
    ],
)
def test_sip_final_codes_map_to_dispositions(code: int, expected: str) -> None:
    assert (
        disposition_for(answered=False, sip_code=code, ring_timed_out=False, response_seen=True)
        == expected
    )


def test_answered_wins_over_any_code() -> None:
    assert (
        disposition_for(answered=True, sip_code=487, ring_timed_out=True, response_seen=True)
        == "answered"
    )


def test_ring_timeout_is_no_answer_when_the_far_end_responded() -> None:
    assert (
        disposition_for(answered=False, sip_code=487, ring_timed_out=True, response_seen=True)
        == "no_answer"
    )


def test_silence_from_the_far_end_is_a_transport_failure() -> None:
    assert (
        disposition_for(answered=False, sip_code=487, ring_timed_out=True, response_seen=False)
        == "failed"
    )
    assert (
        disposition_for(answered=False, sip_code=408, ring_timed_out=False, response_seen=False)
        == "failed"
    )
    assert (
        disposition_for(answered=False, sip_code=None, ring_timed_out=False, response_seen=False)
        == "failed"
    )
