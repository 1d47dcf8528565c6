"""The demo callee: its number table and schedule as plain code, then the real process over SIP."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telephony.callee import (
    DEFAULT_TALK_MS,
    NO_ANSWER_GIVE_UP_MS,
    CalleeBehaviour,
    CalleeSchedule,
    DtmfSend,
    Edge,
    FrameLog,
    Step,
    callee_behaviour,
    parse_dtmf_spec,
    recording_stem,
    request_uri_user,
)
from tests.helpers.processes import REPO, CalleeProcess
from tests.helpers.sipp import UacResult, process_alive, run_uac
from tests.helpers.wait import wait_for

# --- the table --------------------------------------------------------------------------------

TABLE = {
    "0": ("answer", 200, 800),
    "1": ("answer", 200, 800),
    "2": ("answer", 200, 800),
    "3": ("answer", 200, 800),
    "4": ("early_media_answer", 200, 1500),
    "5": ("busy", 486, 0),
    "6": ("no_answer", 487, None),
    "7": ("decline", 603, 2000),
    "8": ("not_found", 404, 0),
    "9": ("unavailable", 480, 0),
}


@pytest.mark.parametrize("digit", sorted(TABLE))
def test_last_digit_picks_the_behaviour(digit: str) -> None:
    action, code, ring_ms = TABLE[digit]
    b = callee_behaviour(f"+9198765432{digit}")
    assert (b.action, b.sip_code, b.ring_ms) == (action, code, ring_ms)
    assert b.talk_ms == (DEFAULT_TALK_MS if code == 200 else 0)


def test_only_digits_count_and_the_last_one_decides() -> None:
    assert callee_behaviour("+91 (98765) 4321-5;x").action == "busy"
    assert callee_behaviour("agent7b").action == "decline"


def test_a_user_without_digits_is_answered() -> None:
    assert callee_behaviour("callee") == CalleeBehaviour("answer", 200, 800, DEFAULT_TALK_MS)


def test_talk_time_applies_to_answered_calls_only() -> None:
    assert callee_behaviour("100", talk_ms=1234).talk_ms == 1234
    assert callee_behaviour("104", talk_ms=1234).talk_ms == 1234
    assert callee_behaviour("105", talk_ms=1234).talk_ms == 0


@pytest.mark.parametrize(
    ("invite", "user"),
    [
        ("INVITE sip:+919876543210@127.0.0.1:5070 SIP/2.0\r\nVia: x\r\n\r\n", "+919876543210"),
        ("INVITE sip:9990;phone-context=x@127.0.0.1 SIP/2.0\r\n", "9990"),
        ("INVITE sips:5555@example.com;transport=tls SIP/2.0\n", "5555"),
        ("INVITE tel:+15551234567;npdi SIP/2.0\r\n", "+15551234567"),
        ("INVITE sip:127.0.0.1:5070 SIP/2.0\r\n", ""),
        ("garbage", ""),
    ],
)
def test_request_uri_user(invite: str, user: str) -> None:
    assert request_uri_user(invite) == user


# --- the schedule, on a fake clock --------------------------------------------------------------


def test_answered_call_rings_then_answers_then_hangs_up_after_talk_time() -> None:
    s = CalleeSchedule(talk_ms=5000)
    assert s.admit(1, "9990", now=100.0) == 180
    assert s.due(100.79) == []
    assert s.due(100.8) == [Step(1, "answer", 200)]
    assert s.due(105.79) == []
    assert s.due(105.8) == [Step(1, "hangup", 0)]
    assert s.due(1000.0) == []


def test_early_media_call_sends_183_then_answers() -> None:
    s = CalleeSchedule()
    assert s.admit(1, "9994", now=0.0) == 183
    assert s.due(1.5) == [Step(1, "answer", 200)]


@pytest.mark.parametrize(("user", "code"), [("9995", 486), ("9998", 404), ("9999", 480)])
def test_immediate_refusals_send_no_ringing_and_are_due_at_once(user: str, code: int) -> None:
    s = CalleeSchedule()
    assert s.admit(1, user, now=7.0) is None
    assert s.due(7.0) == [Step(1, "reject", code)]


def test_decline_rings_for_two_seconds_first() -> None:
    s = CalleeSchedule()
    assert s.admit(1, "9997", now=0.0) == 180
    assert s.due(1.99) == []
    assert s.due(2.0) == [Step(1, "reject", 603)]


def test_unanswered_call_rings_until_cancel_or_gives_up_much_later() -> None:
    s = CalleeSchedule()
    assert s.admit(1, "9996", now=0.0) == 180
    assert s.due(60.0) == []
    assert s.due(NO_ANSWER_GIVE_UP_MS / 1000) == [Step(1, "reject", 480)]


def test_a_call_that_ended_has_no_pending_step() -> None:
    s = CalleeSchedule(talk_ms=1000)
    s.admit(1, "9990", now=0.0)
    assert s.due(1.0) == [Step(1, "answer", 200)]
    s.ended(1)  # the caller hung up first
    assert s.due(10.0) == []
    assert s.live_calls == 0


def test_a_fifth_concurrent_call_gets_486_and_a_freed_slot_is_reused() -> None:
    s = CalleeSchedule()
    assert [s.admit(k, "9996", now=0.0) for k in range(4)] == [180] * 4
    assert s.admit(4, "9990", now=0.0) == 486
    assert s.due(10.0) == []  # the refused call has nothing scheduled
    s.ended(0)
    assert s.admit(5, "9990", now=0.0) == 180


def test_steps_come_out_in_time_order() -> None:
    s = CalleeSchedule()
    s.admit(1, "9997", now=0.0)  # 603 at 2.0
    s.admit(2, "9990", now=0.5)  # answer at 1.3
    s.admit(3, "9995", now=1.0)  # 486 at 1.0
    assert [step.key for step in s.due(5.0)] == [3, 2, 1]


# --- DTMF: the --dtmf plan and its schedule -----------------------------------------------------


def test_dtmf_spec_parses_offsets_digits_and_methods() -> None:
    assert parse_dtmf_spec("1500:5:rfc2833,2500:9:info") == (
        DtmfSend(1500, "5", "rfc2833"),
        DtmfSend(2500, "9", "info"),
    )


def test_dtmf_spec_defaults_aliases_case_and_order() -> None:
    # RFC 4733 by default; rfc4733 and sip_info are aliases; sorted by time, stable at a tie.
    assert parse_dtmf_spec(" 900:#:SIP_INFO , 0:a, 900:*:rfc4733,") == (
        DtmfSend(0, "A", "rfc2833"),
        DtmfSend(900, "#", "info"),
        DtmfSend(900, "*", "rfc2833"),
    )
    assert parse_dtmf_spec("") == ()


@pytest.mark.parametrize(
    "spec",
    ["5", "1500", "x:5", "-1:5", "1.5:5", "100:55", "100:E", "100:5:inband", "100:5:info:x"],
)
def test_dtmf_spec_rejects_bad_items(spec: str) -> None:
    with pytest.raises(ValueError, match="DTMF item"):
        parse_dtmf_spec(spec)


DTMF_PLAN = parse_dtmf_spec("1500:5:rfc2833,2500:9:info")


def test_dtmf_is_sent_at_its_offsets_after_the_answer() -> None:
    s = CalleeSchedule(talk_ms=10_000, dtmf=DTMF_PLAN)
    assert s.admit(1, "9990", now=100.0) == 180
    assert s.due(100.5) == []  # ringing: no digits before the answer
    assert s.due(100.9) == [Step(1, "answer", 200)]  # loop came late: offsets count from here
    assert s.due(102.39) == []
    assert s.due(102.4) == [Step(1, "dtmf", 0, DtmfSend(1500, "5", "rfc2833"))]
    assert s.due(103.39) == []
    assert s.due(103.4) == [Step(1, "dtmf", 0, DtmfSend(2500, "9", "info"))]
    assert s.due(110.89) == []
    assert s.due(110.9) == [Step(1, "hangup", 0)]


def test_dtmf_steps_due_together_come_out_in_time_order() -> None:
    plan = parse_dtmf_spec("300:1,100:2:info,100:3")
    s = CalleeSchedule(dtmf=plan)
    s.admit(7, "9990", now=0.0)
    assert s.due(0.8) == [Step(7, "answer", 200)]
    assert [(st.kind, st.dtmf.digit if st.dtmf else "") for st in s.due(5.0)] == [
        ("dtmf", "2"),
        ("dtmf", "3"),
        ("dtmf", "1"),
    ]
    assert s.due(60.0) == [Step(7, "hangup", 0)]


def test_each_answered_call_gets_its_own_digits() -> None:
    s = CalleeSchedule(dtmf=parse_dtmf_spec("1000:4"))
    s.admit(1, "9990", now=0.0)
    s.admit(2, "9994", now=0.5)  # early media: answered at 2.0
    assert s.due(2.0) == [Step(1, "answer", 200), Step(2, "answer", 200)]
    assert [st.key for st in s.due(3.0)] == [1, 2]


def test_no_dtmf_for_calls_that_are_not_answered_or_have_ended() -> None:
    s = CalleeSchedule(dtmf=DTMF_PLAN)
    assert s.admit(1, "9995", now=0.0) is None
    assert s.due(0.0) == [Step(1, "reject", 486)]
    s.ended(1)
    s.admit(2, "9990", now=0.0)
    assert s.due(0.8) == [Step(2, "answer", 200)]
    s.ended(2)  # the caller hung up before the first digit
    assert s.due(100.0) == []


def test_digits_after_the_talk_time_are_dropped_with_the_hangup() -> None:
    s = CalleeSchedule(talk_ms=2000, dtmf=parse_dtmf_spec("1000:1,3000:2"))
    s.admit(1, "9990", now=0.0)
    assert s.due(0.8) == [Step(1, "answer", 200)]
    assert [st.kind for st in s.due(2.0)] == ["dtmf"]
    assert s.due(2.8) == [Step(1, "hangup", 0)]
    assert s.due(10.0) == []  # digit 2 would have gone at 3.8, after our own BYE


# --- the frame log: when frames came and where the audio turned on and off ----------------------


def _pcm(samples: list[int]) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def test_frame_log_notes_the_first_frame_and_each_edge() -> None:
    quiet, loud = _pcm([0] * 160), _pcm([0] * 40 + [5000] * 120)
    frames = FrameLog()
    for i, pcm in enumerate([quiet, quiet, loud, loud, quiet, b"", loud]):
        frames.feed(pcm, mono=10.0 + i * 0.02, wall=1000.0 + i * 0.02)
    assert frames.frames == 7
    assert (frames.first_mono, frames.first_wall) == (10.0, 1000.0)
    assert frames.last_mono == pytest.approx(10.12)
    assert [(e.kind, e.frame, e.sample) for e in frames.edges] == [
        ("on", 2, 40),
        ("off", 4, 0),
        ("on", 6, 40),
    ]
    first = frames.edges[0]
    assert isinstance(first, Edge)
    assert (first.mono, first.wall) == (pytest.approx(10.04), pytest.approx(1000.04))
    record = frames.as_dict()
    assert record["first_frame"] == {"mono": 10.0, "wall": 1000.0}
    assert record["edges"][1] == {
        "kind": "off",
        "frame": 4,
        "sample": 0,
        "mono": pytest.approx(10.08),
        "wall": pytest.approx(1000.08),
    }


def test_a_loud_first_frame_is_an_onset() -> None:
    frames = FrameLog()
    frames.feed(_pcm([-3000] * 160), mono=1.0, wall=2.0)
    assert [(e.kind, e.frame, e.sample) for e in frames.edges] == [("on", 0, 0)]


@pytest.mark.parametrize(
    ("call_id", "stem"),
    [
        ("1-31824@127.0.0.1", "1-31824_127.0.0.1"),
        ("a/../../b c", "a_.._.._b_c"),
        ("", "call-3"),
        ("@@@", "call-3"),
    ],
)
def test_recording_stem_is_a_safe_file_name(call_id: str, stem: str) -> None:
    assert recording_stem(call_id, 3) == stem


# --- the real process over SIP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def callee(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalleeProcess]:
    proc = CalleeProcess(tmp_path_factory.mktemp("callee"))
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.output()


def _call(
    callee: CalleeProcess,
    scenario: str,
    number: str,
    tmp_path: Path,
    keys: dict[str, str] | None = None,
) -> UacResult:
    return run_uac(scenario, callee.target, service=number, workdir=tmp_path, keys=keys)


@pytest.mark.slow
def test_number_ending_0_rings_then_answers_with_a_tone(
    callee: CalleeProcess, tmp_path: Path
) -> None:
    result = _call(callee, "uac_answer.xml", "919876543210", tmp_path)
    assert result.returncode == 0, result.output + callee.output()
    assert result.rtp_packets > 30  # 1.5 s held: about 75 tone frames


@pytest.mark.slow
def test_number_ending_4_sends_early_media_then_answers(
    callee: CalleeProcess, tmp_path: Path
) -> None:
    result = _call(callee, "uac_early_media.xml", "919876543214", tmp_path)
    assert result.returncode == 0, result.output + callee.output()
    assert result.rtp_packets > 80  # 1.5 s of early media and 1.5 s answered


REFUSALS = [("5", "486"), ("7", "603"), ("8", "404"), ("9", "480")]


@pytest.mark.slow
@pytest.mark.parametrize(("digit", "code"), REFUSALS)
def test_refusing_numbers_get_their_final_response(
    callee: CalleeProcess, tmp_path: Path, digit: str, code: str
) -> None:
    result = _call(callee, "uac_reject.xml", f"91987654321{digit}", tmp_path, keys={"code": code})
    assert result.returncode == 0, result.output + callee.output()


@pytest.mark.slow
def test_number_ending_6_rings_until_cancel_then_487(callee: CalleeProcess, tmp_path: Path) -> None:
    result = _call(callee, "uac_cancel.xml", "919876543216", tmp_path)
    assert result.returncode == 0, result.output + callee.output()


@pytest.mark.slow
def test_callee_hangs_up_after_the_talk_time(tmp_path: Path) -> None:
    proc = CalleeProcess(tmp_path, "--talk-seconds", "1")
    try:
        started = time.monotonic()
        result = _call(proc, "uac_answer_wait_bye.xml", "5550", tmp_path)
        assert result.returncode == 0, result.output + proc.output()
        assert time.monotonic() - started < 6  # 0.8 s ringing + 1 s talk, not the default 30 s
    finally:
        assert proc.stop() == 0, proc.output()


@pytest.mark.slow
def test_sigterm_hangs_up_live_calls_and_exits_0(tmp_path: Path) -> None:
    proc = CalleeProcess(tmp_path)
    results: list[UacResult] = []
    uac = threading.Thread(
        target=lambda: results.append(_call(proc, "uac_answer_wait_bye.xml", "5550", tmp_path))
    )
    uac.start()
    try:
        wait_for(lambda: "first response" in proc.output(), timeout=20, what="the INVITE")
        # Past its 0.8 s of ringing: answered, 28 s of talk time left (no sign of it to wait on).
        time.sleep(1.2)
        assert proc.stop() == 0, proc.output()
        assert "callee stopped" in proc.output()
    finally:
        uac.join(timeout=30)
    assert not process_alive(proc.proc.pid)
    assert results and results[0].returncode == 0, results[0].output if results else "no result"


@pytest.mark.slow
def test_a_fifth_concurrent_call_is_refused_busy(callee: CalleeProcess, tmp_path: Path) -> None:
    ringing: list[UacResult] = []
    before = callee.output().count("first response")
    uacs = [
        threading.Thread(
            target=lambda n=n: ringing.append(
                _call(callee, "uac_cancel.xml", f"55{n}6", tmp_path / f"uac{n}")
            )
        )
        for n in range(4)
    ]
    for uac in uacs:
        uac.start()
    try:
        # All four ringing; each cancels 1 s after its 180.
        wait_for(
            lambda: callee.output().count("first response") >= before + 4,
            timeout=10,
            what="four ringing calls",
        )
        fifth = _call(callee, "uac_reject.xml", "5550", tmp_path, keys={"code": "486"})
    finally:
        for uac in uacs:
            uac.join(timeout=30)
    assert fifth.returncode == 0, fifth.output + callee.output()
    assert [r.returncode for r in ringing] == [0, 0, 0, 0], callee.output()


# --- recording and DTMF, over SIP ---------------------------------------------------------------

# A UAC that plays A-law audio at the callee (so there is something to record) and expects the
# callee's SIP INFO for digit 9 before it hangs up. The 200's To (with the callee's tag) is kept
# for the ACK and BYE: after the INFO, [last_To:] would be the INFO's, which names us.
# play_pcap_audio needs a raw socket (root or CAP_NET_RAW), as tests/sipp/uas_answer.xml does.
UAC_RECORD_DTMF = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC plays A-law, expects the callee's DTMF 9 by SIP INFO">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-inv
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [rtp_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
      a=sendrecv

    ]]>
  </send>

  <recv response="100" optional="true"/>
  <recv response="180"/>
  <recv response="200" rtd="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to_hdr"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [$to_hdr]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <nop>
    <action>
      <exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/>
    </action>
  </nop>

  <recv request="INFO">
    <action>
      <ereg regexp="Signal= *9" search_in="body" check_it="true" assign_to="signal"/>
    </action>
  </recv>

  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Subject: [$signal]
      Content-Length: 0

    ]]>
  </send>

  <!-- The pcap's speech starts about 1 s in: hold long enough for the recording to catch it. -->
  <pause milliseconds="2500"/>

  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [$to_hdr]
      Call-ID: [call_id]
      CSeq: 2 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200" crlf="true"/>
</scenario>
"""


def _final_sidecars(record_dir: Path, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The sidecars in record_dir, in call order, once the callee has finished all `count`."""
    found: list[dict[str, Any]] = []

    def final() -> bool:
        found[:] = [json.loads(p.read_text()) for p in record_dir.glob("*.json")]
        return len(found) == count and all(info["ended"] is not None for info in found)

    try:
        wait_for(final, timeout=timeout, interval=0.05, what=f"{count} final sidecars")
    except AssertionError as exc:
        raise AssertionError(f"{exc} in {record_dir}: {found}") from None
    return sorted(found, key=lambda info: info["answered"]["mono"])


@pytest.mark.slow
def test_callee_records_received_audio_and_sends_dtmf(tmp_path: Path) -> None:
    record_dir = tmp_path / "rec"
    scenario = tmp_path / "uac_record_dtmf.xml"
    scenario.write_text(UAC_RECORD_DTMF)
    proc = CalleeProcess(
        tmp_path, "--record-dir", str(record_dir), "--dtmf", "300:5:rfc2833,600:9:info"
    )
    try:
        # Two calls, one after the other: the second reuses the first one's timing probes.
        for number in ("5550", "5551"):
            # An absolute scenario path is taken as it is by the harness.
            result = _call(proc, str(scenario), number, tmp_path)
            assert result.returncode == 0, result.output + proc.output()
            # No count of the tone's RTP here: pjsua follows the RTP source (the pcap's sending
            # port, not the one in our offer) after the first packets; the sidecar times it.
        infos = _final_sidecars(record_dir, 2)
    finally:
        assert proc.stop() == 0, proc.output()
    assert [info["number"] for info in infos] == ["5550", "5551"]
    for info in infos:
        _check_recording(record_dir, info)


def _check_recording(record_dir: Path, info: dict[str, Any]) -> None:
    wav_path = record_dir / info["wav"]
    assert wav_path.with_suffix(".json").is_file()
    assert info["call_id"].startswith("1-")  # SIPp's [call_id]: call 1 of its run, pid@ip
    assert info["rtp"]["local"].startswith("127.0.0.1:")  # where a capture finds this call's RTP

    # A complete WAV: RIFF header with 16-bit PCM mono at 8 kHz, data size written at close.
    raw = wav_path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:16] == b"WAVEfmt "
    fmt_tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", raw[20:36])
    assert (fmt_tag, channels, rate, bits) == (1, 1, 8000, 16)
    assert raw[36:40] == b"data"
    (data_bytes,) = struct.unpack("<I", raw[40:44])
    assert data_bytes > 0 and data_bytes == len(raw) - 44
    with wave.open(str(wav_path)) as wav:
        frames = wav.getnframes()
        pcm = wav.readframes(frames)
    assert frames / 8000 > 2.5  # answered until the UAC's BYE, 3 s or so later

    # The sidecar's clock covers the WAV frame for frame (the probe may see one last tick more).
    received = info["received"]
    assert 0 <= received["frames"] - frames // 160 <= 1
    first = received["first_frame"]["mono"]
    assert info["recording_started"]["mono"] <= first < info["recording_started"]["mono"] + 0.1
    tick_ms = (received["last_frame_mono"] - first) / (received["frames"] - 1) * 1000
    assert tick_ms == pytest.approx(20, abs=1)
    # The UAC's audio is in the WAV, where the sidecar says it starts.
    onsets = [e for e in received["edges"] if e["kind"] == "on"]
    assert onsets, received
    at = onsets[0]["frame"] * 160 + onsets[0]["sample"]
    assert max(abs(v) for v in struct.unpack(f"<{160}h", pcm[at * 2 : at * 2 + 320])) >= 1000
    assert max(abs(v) for v in struct.unpack(f"<{at}h", pcm[: at * 2])) < 1000

    # The digits went out on time, each by its method; the UAC checked the INFO said 9.
    sent = [(d["digit"], d["method"], d["ok"]) for d in info["dtmf"]]
    assert sent == [("5", "rfc2833", True), ("9", "info", True)]
    answered = info["answered"]["mono"]
    offsets = [d["mono"] - answered for d in info["dtmf"]]
    assert offsets[0] == pytest.approx(0.3, abs=0.1)
    assert offsets[1] == pytest.approx(0.6, abs=0.1)

    # The tone went out in bursts of 1 s every 1.25 s, each onset timed by its clock tick.
    tone = info["tone"]
    assert tone["hz"] == 440 and len(tone["onsets"]) >= 2
    assert tone["onsets"][0]["frame"] == 0  # a fresh log: the first tone frame is frame 0
    gaps = [b["mono"] - a["mono"] for a, b in zip(tone["onsets"], tone["onsets"][1:], strict=False)]
    assert all(g == pytest.approx(1.25, abs=0.03) for g in gaps), gaps


@pytest.mark.slow
def test_callee_refuses_a_bad_dtmf_spec() -> None:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="dialer.settings")
    done = subprocess.run(
        [sys.executable, "manage.py", "run_callee", "--dtmf", "1500:5:inband"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--dtmf" in done.stderr and "rfc2833 or info" in done.stderr
