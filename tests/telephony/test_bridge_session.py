"""BridgeRunner/BridgeSession against a real WebSocket agent on loopback.

The test thread (or a small pump thread) plays the engine's media thread: it calls
``on_call_audio`` / ``next_agent_audio`` from a plain thread, never from an event loop.
"""

from __future__ import annotations

import base64
import json
import math
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any

import pytest

from dialer.processes import free_port
from telephony.bridge.audio import PCM_FRAME_BYTES, pcm16_to_ulaw, silence_pcm, ulaw_to_pcm16
from telephony.bridge.runner import BridgeRunner, BridgeSession, StreamInfo
from telephony.reference_agent import (
    GREETING_MARK,
    bound_port,
    greeting_ulaw,
    start_reference_agent,
)
from tests.helpers.bridge import ACCOUNT, CALL, TIMEOUT, FakeAgent, LoopThread, agent_ulaw
from tests.helpers.paths import REPO
from tests.helpers.wait import wait_for

PARAMS = {"campaign_id": "7", "attempt_id": "1234", "amd": "human"}
SILENCE = silence_pcm()


def tone_frame(index: int) -> bytes:
    """A distinct 20 ms PCM frame per index, so order mistakes show up."""
    freq = 300 + 50 * index
    samples = [int(6000 * math.sin(2 * math.pi * freq * n / 8000)) + index for n in range(160)]
    return struct.pack("<160h", *samples)


def read_line(stream: IO[str], timeout: float = TIMEOUT) -> str:
    """readline() with a deadline, so a wedged subprocess fails the test instead of hanging it."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


class MediaPump:
    """Plays pjsua2's media clock: every few ms, one frame in and one frame out."""

    def __init__(self, session: BridgeSession, period: float = 0.005) -> None:
        self.session = session
        self.period = period
        self.played: list[bytes] = []  # agent frames only, silence fill excluded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MediaPump:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            self.session.on_call_audio(tone_frame(index % 40))
            before = self.session.frames_from_agent
            frame = self.session.next_agent_audio()
            if self.session.frames_from_agent != before:
                self.played.append(frame)
            index += 1
            time.sleep(self.period)  # the media clock: pacing, not a wait


def open_session(runner: BridgeRunner, url: str) -> BridgeSession:
    stream = StreamInfo(call_sid=CALL, account_sid=ACCOUNT, custom_parameters=dict(PARAMS))
    return runner.open(url=url, stream=stream)


def open_started(runner: BridgeRunner, agent: FakeAgent) -> BridgeSession:
    session = open_session(runner, agent.url)
    agent.wait_for("start")
    return session


def test_connected_then_start_arrive_first_with_custom_parameters(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_session(runner, agent.url)

    agent.wait_for("start")

    connected, start = agent.messages()[:2]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": session.stream_sid,
            "callSid": CALL,
            "tracks": ["inbound"],
            "customParameters": PARAMS,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": session.stream_sid,
    }
    assert session.stream_sid.startswith("MZ")
    assert len(session.stream_sid) == 34


def test_given_stream_sid_is_kept(runner: BridgeRunner, agent: FakeAgent) -> None:
    stream = StreamInfo(call_sid=CALL, account_sid=ACCOUNT, stream_sid="MZfixed")
    runner.open(url=agent.url, stream=stream)

    assert agent.wait_for("start")[0]["streamSid"] == "MZfixed"


def test_callee_audio_reaches_agent_in_order_numbered_and_decodable(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)
    frames = [tone_frame(i) for i in range(30)]

    for frame in frames:
        session.on_call_audio(frame)
        time.sleep(0.002)  # paced like the media clock (if faster): not waiting on anything
    media = agent.wait_for("media", len(frames))

    assert len(media) == len(frames)
    assert [m["sequenceNumber"] for m in media] == [str(i + 2) for i in range(len(frames))]
    assert [m["media"]["chunk"] for m in media] == [str(i + 1) for i in range(len(frames))]
    assert {m["media"]["track"] for m in media} == {"inbound"}
    assert {m["streamSid"] for m in media} == {session.stream_sid}
    timestamps = [int(m["media"]["timestamp"]) for m in media]
    assert timestamps == sorted(timestamps)
    for sent, message in zip(frames, media, strict=True):
        received = ulaw_to_pcm16(base64.b64decode(message["media"]["payload"]))
        assert received == ulaw_to_pcm16(pcm16_to_ulaw(sent))
    assert session.frames_to_agent == len(frames)


def test_callee_audio_before_the_socket_opens_is_delivered_after_start(
    runner: BridgeRunner, loop_thread: LoopThread
) -> None:
    slow_agent = FakeAgent(loop_thread, handshake_delay=0.3)
    try:
        session = open_session(runner, slow_agent.url)
        for i in range(5):
            session.on_call_audio(tone_frame(i))

        media = slow_agent.wait_for("media", 5)

        assert [m["event"] for m in slow_agent.messages()[:2]] == ["connected", "start"]
        assert [m["media"]["chunk"] for m in media] == ["1", "2", "3", "4", "5"]
    finally:
        slow_agent.stop()


def test_silence_is_played_while_the_agent_has_sent_nothing(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)

    assert session.next_agent_audio() == SILENCE
    assert session.frames_from_agent == 0


def test_agent_media_of_odd_sizes_is_played_frame_by_frame_in_order(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)
    ulaw = agent_ulaw(800)
    offset = 0
    for size in (1, 159, 161, 320, 7, 152):
        agent.send_media(session.stream_sid, ulaw[offset : offset + size])
        offset += size

    wait_for(lambda: session.buffered_agent_frames == 5)
    played = [session.next_agent_audio() for _ in range(5)]

    assert all(len(frame) == PCM_FRAME_BYTES for frame in played)
    assert b"".join(played) == ulaw_to_pcm16(ulaw)
    assert session.next_agent_audio() == SILENCE
    assert session.frames_from_agent == 5


def test_mark_is_echoed_only_after_the_audio_before_it_was_pulled(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)
    agent.send_media(session.stream_sid, agent_ulaw(3 * 160))
    agent.send_mark(session.stream_sid, "m1")
    wait_for(lambda: session.pending_marks == 1)

    session.next_agent_audio()
    session.next_agent_audio()
    time.sleep(0.1)  # a mark echoed too early would arrive within this: nothing to wait on
    assert agent.messages("mark") == []

    session.next_agent_audio()
    marks = agent.wait_for("mark")

    assert len(marks) == 1
    assert marks[0]["streamSid"] == session.stream_sid
    assert marks[0]["mark"] == {"name": "m1"}
    assert int(marks[0]["sequenceNumber"]) >= 2
    assert session.marks_echoed == 1
    assert session.pending_marks == 0


def test_mark_after_a_partial_frame_waits_for_that_frame(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)
    ulaw = agent_ulaw(100)
    agent.send_media(session.stream_sid, ulaw)
    agent.send_mark(session.stream_sid, "short")
    wait_for(lambda: session.pending_marks == 1)

    frame = session.next_agent_audio()

    assert frame == ulaw_to_pcm16(ulaw) + bytes(PCM_FRAME_BYTES - 200)
    assert agent.wait_for("mark")[0]["mark"] == {"name": "short"}


def test_mark_with_no_audio_before_it_is_echoed_at_once(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)

    agent.send_mark(session.stream_sid, "idle")

    assert agent.wait_for("mark")[0]["mark"] == {"name": "idle"}
    assert session.marks_echoed == 1


def test_clear_drops_buffered_audio_and_echoes_pending_marks(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)
    agent.send_media(session.stream_sid, agent_ulaw(10 * 160))
    agent.send_mark(session.stream_sid, "a")
    agent.send_media(session.stream_sid, agent_ulaw(5 * 160))
    agent.send_mark(session.stream_sid, "b")
    wait_for(lambda: session.pending_marks == 2)
    assert session.buffered_agent_frames == 15
    assert session.next_agent_audio() != SILENCE

    agent.send_json({"event": "clear", "streamSid": session.stream_sid})
    marks = agent.wait_for("mark", 2)

    assert [m["mark"]["name"] for m in marks] == ["a", "b"]
    assert session.buffered_agent_frames == 0
    assert session.next_agent_audio() == SILENCE
    # Audio after the clear plays normally.
    agent.send_media(session.stream_sid, agent_ulaw(160))
    wait_for(lambda: session.buffered_agent_frames == 1)
    assert session.next_agent_audio() == ulaw_to_pcm16(agent_ulaw(160))


def test_malformed_and_binary_frames_from_the_agent_are_ignored(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)

    agent.send(b"\x00\x01\x02")
    agent.send("not json")
    agent.send('{"event": "bogus"}')
    agent.send('{"event": "media", "media": {"payload": "@@"}}')
    agent.send('{"event": "mark", "mark": {}}')
    agent.send_media(session.stream_sid, agent_ulaw(160))
    wait_for(lambda: session.buffered_agent_frames == 1)

    assert session.next_agent_audio() == ulaw_to_pcm16(agent_ulaw(160))
    session.on_call_audio(tone_frame(0))
    assert agent.wait_for("media")[0]["media"]["chunk"] == "1"
    assert not session.hangup_requested()


def test_dtmf_from_the_callee_is_forwarded(runner: BridgeRunner, agent: FakeAgent) -> None:
    session = open_started(runner, agent)

    session.on_dtmf("5")

    dtmf = agent.wait_for("dtmf")[0]
    assert dtmf["streamSid"] == session.stream_sid
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"}


def test_agent_closing_the_socket_requests_hangup(runner: BridgeRunner, agent: FakeAgent) -> None:
    session = open_started(runner, agent)
    assert not session.hangup_requested()

    agent.close()
    wait_for(session.hangup_requested)

    assert session.hangup_reason == "agent_closed"
    # The media thread keeps ticking until the engine hangs up: that must stay harmless.
    session.on_call_audio(tone_frame(0))
    assert session.next_agent_audio() == SILENCE


def test_agent_stop_message_requests_hangup(runner: BridgeRunner, agent: FakeAgent) -> None:
    session = open_started(runner, agent)

    agent.send_json({"event": "stop", "streamSid": session.stream_sid})
    wait_for(session.hangup_requested)

    assert session.hangup_reason == "agent_stop"


def test_unreachable_agent_requests_hangup(runner: BridgeRunner) -> None:
    session = open_session(runner, f"ws://127.0.0.1:{free_port()}")

    session.on_call_audio(tone_frame(0))
    assert session.next_agent_audio() == SILENCE
    wait_for(session.hangup_requested)

    assert session.hangup_reason == "agent_unreachable"


def test_invalid_agent_url_requests_hangup(runner: BridgeRunner) -> None:
    session = open_session(runner, "http://127.0.0.1:1/not-a-websocket")

    wait_for(session.hangup_requested)

    assert session.hangup_reason == "agent_unreachable"


def test_close_sends_stop_after_pending_media_and_closes_the_socket(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    session = open_started(runner, agent)
    session.on_call_audio(tone_frame(0))
    session.on_call_audio(tone_frame(1))

    session.close()
    assert agent.closed.wait(TIMEOUT)

    events = [m["event"] for m in agent.messages()]
    assert events == ["connected", "start", "media", "media", "stop"]
    stop = agent.messages("stop")[0]
    assert stop == {
        "event": "stop",
        "sequenceNumber": "4",
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
        "streamSid": session.stream_sid,
    }
    assert session.hangup_reason is None
    wait_for(lambda: runner.active_sessions == 0)


@pytest.mark.slow
def test_close_before_the_agent_answers_abandons_the_connection(
    runner: BridgeRunner, loop_thread: LoopThread
) -> None:
    slow_agent = FakeAgent(loop_thread, handshake_delay=0.5)
    try:
        session = open_session(runner, slow_agent.url)
        session.close()

        wait_for(lambda: runner.active_sessions == 0)

        assert session.hangup_reason is None
        time.sleep(0.6)  # past the agent's 0.5 s handshake: nothing must arrive, nothing to wait on
        assert slow_agent.messages() == []
    finally:
        slow_agent.stop()


def test_runner_shutdown_stops_every_stream(agent: FakeAgent) -> None:
    bridge = BridgeRunner()
    session = open_session(bridge, agent.url)
    agent.wait_for("start")

    bridge.shutdown(timeout=3.0)

    assert agent.messages("stop")[0]["streamSid"] == session.stream_sid
    assert agent.closed.wait(TIMEOUT)
    with pytest.raises(RuntimeError):
        open_session(bridge, agent.url)
    session.on_call_audio(tone_frame(0))  # a late media tick after shutdown is harmless


@pytest.mark.slow
def test_reference_agent_greets_marks_and_hangs_up_after_talk_seconds(
    runner: BridgeRunner, loop_thread: LoopThread
) -> None:
    records: list[dict[str, Any]] = []
    server = loop_thread.run(
        start_reference_agent("127.0.0.1", 0, talk_seconds=1.0, on_stream_end=records.append)
    )
    try:
        session = open_session(runner, f"ws://127.0.0.1:{bound_port(server)}")
        began = time.monotonic()
        # Four times faster than real time, so the 1 s greeting is played well before hang-up.
        with MediaPump(session, period=0.005) as pump:
            wait_for(session.hangup_requested)
        elapsed = time.monotonic() - began
        wait_for(lambda: len(records) == 1)
    finally:
        server.close()
        loop_thread.run(server.wait_closed())

    assert session.hangup_reason == "agent_closed"
    assert 0.9 <= elapsed < 3.0
    assert b"".join(pump.played) == ulaw_to_pcm16(greeting_ulaw())
    assert session.frames_from_agent == 50
    assert session.marks_echoed == 1
    record = records[0]
    assert record["event"] == "agent_stream_end"
    assert record["streamSid"] == session.stream_sid
    assert record["callSid"] == CALL
    assert record["customParameters"] == PARAMS
    assert record["marks_received"] == 1
    assert record["frames_heard"] > 0
    assert 1.0 <= record["seconds"] < 3.0
    assert GREETING_MARK == "greeting-end"


@pytest.mark.slow
def test_run_agent_command_serves_streams_and_exits_cleanly_on_sigterm(
    runner: BridgeRunner,
) -> None:
    manage = REPO / "manage.py"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dialer.settings"}
    command = [sys.executable, str(manage), "run_agent", "--port", "0", "--talk-seconds", "0.5"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = read_line(proc.stdout)
        assert ready.startswith("agent listening on ws://127.0.0.1:")
        session = open_session(runner, ready.split()[-1])
        with MediaPump(session):
            wait_for(session.hangup_requested)
        record = json.loads(read_line(proc.stdout))

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)

    assert session.hangup_reason == "agent_closed"
    assert record["event"] == "agent_stream_end"
    assert record["streamSid"] == session.stream_sid
    assert record["customParameters"] == PARAMS


def test_an_exotel_stream_speaks_snake_case_and_raw_pcm_both_ways(
    runner: BridgeRunner, agent: FakeAgent
) -> None:
    stream = StreamInfo(call_sid=CALL, account_sid=ACCOUNT, custom_parameters={"a": "1"},
                        wire="exotel")  # fmt: skip
    session = runner.open(url=agent.url, stream=stream)
    start = agent.wait_for("start")[0]
    assert start["stream_sid"] == session.stream_sid
    assert start["start"]["call_sid"] == CALL and start["start"]["custom_parameters"] == {"a": "1"}
    assert start["start"]["media_format"]["encoding"] == "audio/x-raw"

    frame = tone_frame(3)
    session.on_call_audio(frame)
    (media,) = agent.wait_for("media")
    assert base64.b64decode(media["media"]["payload"]) == frame  # PCM as it was, no mu-law

    # The agent answers in PCM too: played unchanged, 20 ms at a time, then its mark comes back.
    pcm = tone_frame(5) + tone_frame(6)
    agent.send_json({"event": "media", "stream_sid": session.stream_sid,
                     "media": {"payload": base64.b64encode(pcm).decode()}})  # fmt: skip
    agent.send_json({"event": "mark", "stream_sid": session.stream_sid, "mark": {"name": "m1"}})
    wait_for(lambda: session.buffered_agent_frames == 2)
    assert [session.next_agent_audio(), session.next_agent_audio()] == [
        tone_frame(5),
        tone_frame(6),
    ]
    assert agent.wait_for("mark")[0]["mark"] == {"name": "m1"}


def test_the_rest_endpoint_is_named_in_start_or_left_out_when_its_port_is_taken(
    agent: FakeAgent,
) -> None:
    secret = b"s" * 32
    served = BridgeRunner(rest_host="127.0.0.1", rest_port=0, rest_secret=secret)
    try:
        assert served.rest_base_url.startswith("http://127.0.0.1:")
        taken = int(served.rest_base_url.rsplit(":", 1)[1])
        blocked = BridgeRunner(rest_host="127.0.0.1", rest_port=taken, rest_secret=secret)
        try:
            assert blocked.rest_base_url == ""  # logged, not fatal: streams still run
            blocked.open(url=agent.url, stream=StreamInfo(call_sid=CALL, account_sid=ACCOUNT))
            start = agent.wait_for("start")[0]["start"]
            assert "apiBaseUrl" not in start["customParameters"]
        finally:
            blocked.shutdown(timeout=3.0)
        served.open(url=agent.url, stream=StreamInfo(call_sid=CALL, account_sid=ACCOUNT))
        start = agent.wait_for("start", 2)[1]["start"]
        assert start["customParameters"]["apiBaseUrl"] == served.rest_base_url
        assert start["accountSid"] != ACCOUNT and len(start["customParameters"]["authToken"]) == 32
    finally:
        served.shutdown(timeout=3.0)
