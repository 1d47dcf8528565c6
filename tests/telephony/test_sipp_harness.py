"""The SIPp harness and its scenarios, proven against real SIPp UACs (no dialer involved)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers.paths import SIPP_SCENARIOS
from tests.helpers.sipp import (
    HOST,
    SippUAS,
    free_udp_port,
    initial_invite_uris,
    parse_message_trace,
    process_alive,
    run_uac,
    udp_port_bound,
)

# A real SIPp 3.6.1 trace: an INVITE, its retransmission, a re-INVITE in the dialog, a CANCEL.
TRACE = """\
----------------------------------------------- 2026-11-24 05:31:06.181771
UDP message received [299] bytes :

INVITE sip:9990@127.0.0.1:5999 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bK-7492-1-0
From: sipp <sip:sipp@127.0.0.1:5998>;tag=7492SIPpTag001
To: <sip:9990@127.0.0.1:5999>
Call-ID: 1-7492@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-24 05:31:06.185158
UDP message sent (248 bytes):

SIP/2.0 100 Trying
Via: SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bK-7492-1-0
From: sipp <sip:sipp@127.0.0.1:5998>;tag=7492SIPpTag001
To: <sip:9990@127.0.0.1:5999>
Call-ID: 1-7492@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-24 05:31:06.681771
UDP message received [299] bytes :

INVITE sip:9990@127.0.0.1:5999 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bK-7492-1-0
From: sipp <sip:sipp@127.0.0.1:5998>;tag=7492SIPpTag001
To: <sip:9990@127.0.0.1:5999>
Call-ID: 1-7492@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-24 05:31:07.000000
Unexpected UDP message received:

INVITE sip:9990@127.0.0.1:5999 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bK-7492-1-0
From: sipp <sip:sipp@127.0.0.1:5998>;tag=7492SIPpTag001
To: <sip:9990@127.0.0.1:5999>
Call-ID: 1-7492@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-24 05:31:08.000000
UDP message received [301] bytes :

INVITE sip:127.0.0.1:5999 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bK-7492-1-9
From: sipp <sip:sipp@127.0.0.1:5998>;tag=7492SIPpTag001
To: <sip:9990@127.0.0.1:5999>;tag=7487SIPpTag011
Call-ID: 1-7492@127.0.0.1
CSeq: 2 INVITE
Content-Length: 0


----------------------------------------------- 2026-11-24 05:31:09.000000
UDP message received [280] bytes :

INVITE sip:9991@127.0.0.1:5999 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5998;branch=z9hG4bK-7500-1-0
From: sipp <sip:sipp@127.0.0.1:5998>;tag=7500SIPpTag001
To: <sip:9991@127.0.0.1:5999>
Call-ID: 1-7500@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0


"""

REJECTIONS = [
    ("486", "Busy Here"),
    ("600", "Busy Everywhere"),
    ("603", "Decline"),
    ("404", "Not Found"),
    ("484", "Address Incomplete"),
    ("480", "Temporarily Unavailable"),
    ("408", "Request Timeout"),
    ("503", "Service Unavailable"),
]


def _target(uas: SippUAS) -> str:
    return f"{HOST}:{uas.port}"


def test_free_udp_port_can_be_bound(tmp_path: Path) -> None:
    port = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, port))
        assert udp_port_bound(port)
    assert not udp_port_bound(port)


def test_trace_counts_each_call_attempt_once_not_retransmissions_or_reinvites() -> None:
    messages = parse_message_trace(TRACE)
    assert [m.direction for m in messages] == [
        "received",
        "sent",
        "received",
        "received",
        "received",
    ]
    assert initial_invite_uris(messages) == [
        "sip:9990@127.0.0.1:5999",
        "sip:9991@127.0.0.1:5999",
    ]


@pytest.mark.slow
def test_answer_scenario_rings_answers_plays_audio_and_takes_the_bye(tmp_path: Path) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        assert uas.uri == f"sip:127.0.0.1:{uas.port}"
        result = run_uac("uac_answer.xml", _target(uas), service="9990", workdir=tmp_path)
        assert result.returncode == 0, result.output
        # 1.5 s of 20 ms A-law frames from g711a.pcap: about 75 packets.
        assert result.rtp_packets > 30
        assert uas.invites() == [f"sip:9990@127.0.0.1:{uas.port}"]
        assert uas.cancels() == 0


@pytest.mark.slow
def test_answer_scenario_tolerates_a_ten_second_call(tmp_path: Path) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path, max_calls=1) as uas:
        result = run_uac(
            "uac_answer.xml", _target(uas), service="9990", workdir=tmp_path, hold_ms=10_000
        )
        assert result.returncode == 0, result.output
        # The pcap lasts about 7 s (236 packets); then the line is quiet until the BYE.
        assert result.rtp_packets > 200


@pytest.mark.slow
def test_early_media_scenario_sends_183_with_audio_then_answers(tmp_path: Path) -> None:
    with SippUAS("uas_early_media.xml", workdir=tmp_path) as uas:
        result = run_uac("uac_early_media.xml", _target(uas), service="9994", workdir=tmp_path)
        assert result.returncode == 0, result.output
        assert result.rtp_packets > 50  # 1.5 s of early media plus 1.5 s answered
        sent = [m.start_line for m in uas.messages() if m.direction == "sent"]
        assert sent[:3] == ["SIP/2.0 100 Trying", "SIP/2.0 183 Session Progress", "SIP/2.0 200 OK"]


@pytest.mark.slow
@pytest.mark.parametrize(("code", "reason"), REJECTIONS)
def test_reject_scenario_answers_with_the_code_and_reason_from_keys(
    tmp_path: Path, code: str, reason: str
) -> None:
    keys = {"code": code, "reason": reason}
    with SippUAS("uas_reject.xml", workdir=tmp_path, keys=keys) as uas:
        result = run_uac(
            "uac_reject.xml", _target(uas), service="9995", workdir=tmp_path, keys={"code": code}
        )
        assert result.returncode == 0, result.output
        finals = [
            m.start_line
            for m in uas.messages()
            if m.direction == "sent" and not m.start_line.startswith("SIP/2.0 1")
        ]
        assert finals == [f"SIP/2.0 {code} {reason}"]
        assert uas.invites() == [f"sip:9995@127.0.0.1:{uas.port}"]


@pytest.mark.slow
def test_reject_uac_fails_when_a_different_code_arrives(tmp_path: Path) -> None:
    keys = {"code": "486", "reason": "Busy Here"}
    with SippUAS("uas_reject.xml", workdir=tmp_path, keys=keys) as uas:
        result = run_uac(
            "uac_reject.xml", _target(uas), service="9995", workdir=tmp_path, keys={"code": "603"}
        )
    assert result.returncode == 1, result.output


@pytest.mark.slow
def test_no_answer_scenario_rings_until_cancel_then_sends_487(tmp_path: Path) -> None:
    with SippUAS("uas_no_answer.xml", workdir=tmp_path) as uas:
        result = run_uac("uac_cancel.xml", _target(uas), service="9996", workdir=tmp_path)
        assert result.returncode == 0, result.output
        assert uas.cancels() == 1
        assert uas.invites() == [f"sip:9996@127.0.0.1:{uas.port}"]


@pytest.mark.slow
def test_invites_lists_every_call_attempt_in_order(tmp_path: Path) -> None:
    keys = {"code": "486", "reason": "Busy Here"}
    with SippUAS("uas_reject.xml", workdir=tmp_path, keys=keys) as uas:
        for number in ("5551", "5552", "5551"):
            result = run_uac(
                "uac_reject.xml", _target(uas), service=number, workdir=tmp_path, keys=keys
            )
            assert result.returncode == 0, result.output
        assert uas.invites() == [
            f"sip:5551@127.0.0.1:{uas.port}",
            f"sip:5552@127.0.0.1:{uas.port}",
            f"sip:5551@127.0.0.1:{uas.port}",
        ]


@pytest.mark.slow
def test_sipp_is_gone_when_the_context_exits(tmp_path: Path) -> None:
    port = free_udp_port()
    with SippUAS("uas_no_answer.xml", port=port, workdir=tmp_path) as uas:
        pid = uas.pid
        assert pid is not None and process_alive(pid)
        assert udp_port_bound(port)
    assert not process_alive(pid)
    assert not udp_port_bound(port)


@pytest.mark.slow
def test_sipp_is_stopped_even_when_the_block_raises(tmp_path: Path) -> None:
    uas = SippUAS("uas_answer.xml", workdir=tmp_path)
    with pytest.raises(RuntimeError, match="boom"), uas:
        pid = uas.pid
        raise RuntimeError("boom")
    assert pid is not None and not process_alive(pid)


@pytest.mark.slow
def test_a_scenario_sipp_refuses_fails_at_start_with_sipps_reason(tmp_path: Path) -> None:
    # The mistake uas_reject.xml works around: a keyword where SIPp wants a literal status code.
    bad = tmp_path / "bad.xml"
    bad.write_text(
        (SIPP_SCENARIOS / "uas_no_answer.xml")
        .read_text()
        .replace("SIP/2.0 487 Request Terminated", "SIP/2.0 [code] Request Terminated")
    )
    with pytest.raises(RuntimeError, match="Response codes must be in the range"):
        SippUAS(str(bad), workdir=tmp_path, keys={"code": "487"}).start()
