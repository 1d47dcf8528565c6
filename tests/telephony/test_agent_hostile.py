"""A hostile or broken agent cannot end a call by accident, stall it, or blow up its memory.

Against real sockets on loopback: the bridge's picows client on one side, and on the other
either a websockets server (FakeAgent) or, for frames no library would send, a raw TCP server
that speaks just enough of RFC 6455 to complete the handshake and then sends crafted bytes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from telephony import reference_agent
from telephony.bridge import session as bridge_session
from telephony.bridge.audio import PCM_FRAME_BYTES, ulaw_to_pcm16
from telephony.bridge.messages import CodecError, Media
from telephony.bridge.runner import BridgeRunner, BridgeSession, StreamInfo
from telephony.bridge.session import MAX_BUFFERED_AGENT_FRAMES, MAX_PENDING_MARKS
from telephony.bridge.wire_codec import wire_codec
from tests.helpers.bridge import ACCOUNT, CALL, TIMEOUT, FakeAgent, LoopThread, agent_ulaw
from tests.helpers.wait import wait_for

HUGE = "1" * 5000  # past Python's 4,300-digit int() limit


def open_started(runner: BridgeRunner, agent: FakeAgent, wire: str = "twilio") -> BridgeSession:
    stream = StreamInfo(call_sid=CALL, account_sid=ACCOUNT, wire=wire)
    session = runner.open(url=agent.url, stream=stream)
    agent.wait_for("start")
    return session


# --- codecs: every malformed message is a CodecError, never another exception -----------------

WIRES = {name: wire_codec(name) for name in ("twilio", "exotel")}
SEQ = {"twilio": "sequenceNumber", "exotel": "sequence_number"}


def media_json(wire: str, payload: str, **top: Any) -> str:
    return json.dumps({"event": "media", **top, "media": {"payload": payload}})


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(
    "make",
    [
        # A 5,000-digit decimal string: int() raises a plain ValueError past 4,300 digits.
        lambda w: media_json(w, "", **{SEQ[w]: HUGE}),
        # The same as a JSON number: json.loads itself raises ValueError.
        lambda w: '{"event": "media", "media": {"payload": "", "chunk": ' + HUGE + "}}",
        # Twenty digits: more than any sequence number, chunk or timestamp can need.
        lambda w: media_json(w, "", **{SEQ[w]: "1" * 20}),
        # A mark name the bridge would echo back: 100 kB of it is not a mark name.
        lambda w: json.dumps({"event": "mark", "mark": {"name": "m" * 100_000}}),
    ],
    ids=["huge-string-number", "huge-json-number", "twenty-digits", "long-mark-name"],
)
def test_hostile_fields_are_codec_errors(wire: str, make: Callable[[str], str]) -> None:
    with pytest.raises(CodecError):
        WIRES[wire].deserialize(make(wire))


@pytest.mark.parametrize("wire", WIRES)
def test_media_payload_is_decoded_only_up_to_the_limit_and_the_rest_counted(wire: str) -> None:
    payload = bytes(range(256)) * 40  # 10,240 bytes
    text = media_json(wire, base64.b64encode(payload).decode())

    msg = WIRES[wire].deserialize(text, max_payload_bytes=1000)

    assert isinstance(msg, Media)
    assert msg.payload == payload[:1000]
    assert msg.dropped_bytes == len(payload) - 1000
    # Without a limit, or with room for all of it, nothing is dropped.
    whole = Media(stream_sid="", payload=payload, dropped_bytes=0)
    assert WIRES[wire].deserialize(text) == whole
    assert WIRES[wire].deserialize(text, max_payload_bytes=len(payload)) == whole


@pytest.mark.parametrize("wire", WIRES)
def test_bad_base64_before_the_limit_is_still_refused(wire: str) -> None:
    text = media_json(wire, "@@@@" + "AAAA" * 1000)
    with pytest.raises(CodecError, match="not valid base64"):
        WIRES[wire].deserialize(text, max_payload_bytes=600)


def test_exotel_payload_of_half_a_sample_is_refused_even_when_cut_at_the_limit() -> None:
    text = media_json("exotel", base64.b64encode(bytes(1001)).decode())
    with pytest.raises(CodecError, match="16-bit"):
        WIRES["exotel"].deserialize(text, max_payload_bytes=600)


# --- the session: malformed messages are ignored and the call goes on ---------------------------


def hostile_messages(wire: str) -> list[str | bytes]:
    seq = SEQ[wire]
    return [
        media_json(wire, "", **{seq: HUGE}),
        '{"event": "media", "media": {"payload": "", "timestamp": ' + HUGE + "}}",
        media_json(wire, 12),  # type: ignore[arg-type]
        media_json(wire, "@@not base64@@"),
        json.dumps({"event": "mark", "mark": {"name": "m" * 100_000}}),
        json.dumps({"event": "mark", "mark": {"name": ["a"]}}),
        '{"event": "hello"}',
        '["media"]',
        "12",
        "null",
        "not json",
        "[" * 100_000,
        b"\x00\x01\x02",
    ]


@pytest.mark.parametrize("wire", WIRES)
def test_malformed_agent_messages_are_ignored_and_the_call_goes_on(
    runner: BridgeRunner, agent: FakeAgent, wire: str
) -> None:
    session = open_started(runner, agent, wire)

    for message in hostile_messages(wire):
        agent.send(message)
    good = agent_ulaw(160) if wire == "twilio" else ulaw_to_pcm16(agent_ulaw(160))
    agent.send(media_json(wire, base64.b64encode(good).decode()))
    wait_for(lambda: session.buffered_agent_frames == 1)

    assert not session.hangup_requested()
    assert not agent.closed.is_set()
    assert session.next_agent_audio() == ulaw_to_pcm16(agent_ulaw(160))
    assert session.ignored_messages == len(hostile_messages(wire))


def test_a_flood_of_junk_is_logged_a_few_times_not_once_per_message(
    runner: BridgeRunner, agent: FakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    session = open_started(runner, agent)
    caplog.set_level(logging.DEBUG, logger="telephony.bridge.session")

    for i in range(500):
        agent.send(media_json("twilio", "", sequenceNumber=HUGE if i % 2 else "x"))
    wait_for(lambda: session.ignored_messages == 500)

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 2
    assert "sequenceNumber" in warnings[0].getMessage()
    assert not session.hangup_requested()


def test_after_the_first_warning_one_summary_at_most_per_interval(
    runner: BridgeRunner,
    agent: FakeAgent,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_session, "WARN_EVERY_S", 0.3)
    session = open_started(runner, agent)
    caplog.set_level(logging.WARNING, logger="telephony.bridge.session")

    for _ in range(20):
        agent.send("not json")
    wait_for(lambda: session.ignored_messages == 20)
    time.sleep(0.35)  # the 0.3 s warning interval elapses: that is the behaviour under test
    agent.send('{"event": "hello"}')
    wait_for(lambda: session.ignored_messages == 21)

    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 2
    assert "not valid JSON" in messages[0]
    assert "unknown event 'hello'" in messages[1]
    assert messages[1].endswith("(and 19 more since the last warning)")


# --- the playout cap holds within one message -----------------------------------------------


@pytest.mark.parametrize("wire", WIRES)
def test_one_15_mb_media_message_queues_no_more_than_the_cap(
    runner: BridgeRunner, agent: FakeAgent, wire: str
) -> None:
    session = open_started(runner, agent, wire)
    raw = bytes([0x20]) * (15 * 2**20 // 4 * 3)  # 15 MiB of base64
    pcm_per_byte = 2 if wire == "twilio" else 1
    total_frames = len(raw) * pcm_per_byte // PCM_FRAME_BYTES

    agent.send(media_json(wire, base64.b64encode(raw).decode()))
    wait_for(lambda: session.buffered_agent_frames >= MAX_BUFFERED_AGENT_FRAMES, timeout=10)

    assert session.buffered_agent_frames == MAX_BUFFERED_AGENT_FRAMES
    assert session.agent_frames_dropped == total_frames - MAX_BUFFERED_AGENT_FRAMES
    assert not session.hangup_requested()
    # Once some of it has played there is room again, and only that room is taken.
    for _ in range(10):
        session.next_agent_audio()
    agent.send(media_json(wire, base64.b64encode(raw[:16000]).decode()))
    wait_for(lambda: session.buffered_agent_frames == MAX_BUFFERED_AGENT_FRAMES)
    dropped_more = 16000 * pcm_per_byte // PCM_FRAME_BYTES - 10
    wait_for(
        lambda: (
            session.agent_frames_dropped == total_frames - MAX_BUFFERED_AGENT_FRAMES + dropped_more
        )
    )


@pytest.mark.slow
def test_marks_waiting_behind_audio_are_capped_too(runner: BridgeRunner, agent: FakeAgent) -> None:
    session = open_started(runner, agent)
    agent.send_media(session.stream_sid, agent_ulaw(160))  # one frame, never played here
    wait_for(lambda: session.buffered_agent_frames == 1)

    for i in range(MAX_PENDING_MARKS + 50):
        agent.send_mark(session.stream_sid, f"m{i}")
    agent.send_media(session.stream_sid, agent_ulaw(160))  # handled after every mark
    wait_for(lambda: session.buffered_agent_frames == 2, timeout=20)

    assert session.pending_marks == MAX_PENDING_MARKS
    assert session.ignored_messages == 50
    assert not session.hangup_requested()
    # The marks it kept are echoed in order once the audio before them has played.
    session.next_agent_audio()
    echoed = agent.wait_for("mark", MAX_PENDING_MARKS)
    assert [m["mark"]["name"] for m in echoed] == [f"m{i}" for i in range(MAX_PENDING_MARKS)]


# --- idle agents and dead agents ------------------------------------------------------------


@pytest.mark.slow
def test_an_agent_that_sends_nothing_is_disconnected_after_the_idle_timeout(
    agent: FakeAgent,
) -> None:
    # The websockets server answers pings by itself, as any live agent library does: pongs
    # prove the process is up, not that it is serving the call.
    with BridgeRunner(open_timeout=2.0, idle_timeout=0.6, ping_interval=0.2) as runner:
        session = open_started(runner, agent)
        began = time.monotonic()
        wait_for(session.hangup_requested)
        waited = time.monotonic() - began

        assert session.hangup_reason == "agent_idle"
        assert session.hangup_cause == "agent_idle"
        assert 0.5 <= waited < 2.0
        assert agent.wait_for("stop")  # told, as at any end of call, then closed
        assert agent.closed.wait(TIMEOUT)


@pytest.mark.slow
def test_an_agent_that_keeps_sending_stays_connected(agent: FakeAgent) -> None:
    with BridgeRunner(open_timeout=2.0, idle_timeout=0.6, ping_interval=0.2) as runner:
        session = open_started(runner, agent)
        for i in range(8):  # 1.6 s, well past the idle timeout
            agent.send_mark(session.stream_sid, f"m{i}")
            time.sleep(0.2)  # pacing: each mark comes inside the idle timeout

        assert not session.hangup_requested()
        assert len(agent.wait_for("mark", 8)) == 8


# --- a raw agent, for what no WebSocket library would send ------------------------------------

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if len(payload) < 126:
        return bytes([first, len(payload)]) + payload
    if len(payload) < 2**16:
        return bytes([first, 126]) + struct.pack("!H", len(payload)) + payload
    return bytes([first, 127]) + struct.pack("!Q", len(payload)) + payload


class RawAgent:
    """Completes the handshake, then sends ``script`` and reads (never answering pings)."""

    def __init__(self, loop_thread: LoopThread, script: Callable[[asyncio.StreamWriter], Any]):
        self._lt = loop_thread
        self._script = script
        self.close_codes: list[int] = []
        self.closed = threading.Event()
        self.server = self._lt.run(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await self._script(writer)
            await writer.drain()
            while True:
                opcode, payload = await self._read_frame(reader)
                if opcode == 8:
                    self.close_codes.append(struct.unpack("!H", payload[:2])[0])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed.set()
            writer.close()

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        mask = await reader.readexactly(4)
        data = await reader.readexactly(length)
        return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def stop(self) -> None:
        self.server.close()


def run_raw(
    loop_thread: LoopThread,
    script: Callable[[asyncio.StreamWriter], Any],
    **runner_kwargs: Any,
) -> tuple[BridgeSession, RawAgent]:
    raw = RawAgent(loop_thread, script)
    try:
        with BridgeRunner(open_timeout=2.0, **runner_kwargs) as runner:
            session = runner.open(url=raw.url, stream=StreamInfo(call_sid=CALL, account_sid=""))
            wait_for(session.hangup_requested)
            assert raw.closed.wait(TIMEOUT)
    finally:
        raw.stop()
    return session, raw


async def _nothing(writer: asyncio.StreamWriter) -> None:
    pass


@pytest.mark.slow
def test_an_agent_that_does_not_answer_pings_is_dead(loop_thread: LoopThread) -> None:
    began = time.monotonic()
    session, raw = run_raw(loop_thread, _nothing, idle_timeout=60.0, ping_interval=0.3)

    assert session.hangup_reason == "agent_ping_timeout"
    assert session.hangup_cause == "agent_ping_timeout"
    assert time.monotonic() - began < 3.0
    assert raw.close_codes[:1] == [1001]


async def _marks_without_reading(writer: asyncio.StreamWriter) -> None:
    # Each mark is echoed at once (nothing is queued to play before it); the agent reads none of
    # the echoes for a while, as an agent whose reading side is stuck.
    mark = json.dumps({"event": "mark", "mark": {"name": "m" * 1000}}).encode()
    for _ in range(20):
        writer.write(frame(0x1, mark) * 1000)
        await writer.drain()
    await asyncio.sleep(3.0)  # the stuck reader, held until the bridge gives up on it


@pytest.mark.slow
def test_an_agent_that_stops_reading_is_ended_before_our_buffer_grows_without_bound(
    loop_thread: LoopThread,
) -> None:
    session, _ = run_raw(loop_thread, _marks_without_reading)

    assert session.hangup_reason == "agent_not_reading"
    assert session.hangup_cause == "agent_not_reading"


async def _reserved_bit(writer: asyncio.StreamWriter) -> None:
    writer.write(frame(0x1, b'{"event": "clear"}', rsv1=True))  # no extension was agreed


async def _bad_opcode(writer: asyncio.StreamWriter) -> None:
    writer.write(frame(0x3, b"?"))  # a reserved data opcode


async def _stray_continuation(writer: asyncio.StreamWriter) -> None:
    writer.write(frame(0x0, b'{"event": "clear"}'))  # continues no message


async def _message_inside_a_message(writer: asyncio.StreamWriter) -> None:
    writer.write(frame(0x1, b'{"event": ', fin=False))
    writer.write(frame(0x1, b'{"event": "clear"}'))  # a new message before the first ended


@pytest.mark.parametrize(
    "script", [_reserved_bit, _bad_opcode, _stray_continuation, _message_inside_a_message]
)
def test_a_websocket_protocol_violation_is_a_protocol_error_not_an_agent_hang_up(
    loop_thread: LoopThread, script: Callable[[asyncio.StreamWriter], Any]
) -> None:
    session, raw = run_raw(loop_thread, script)

    assert session.hangup_reason == "agent_protocol_error"
    assert session.hangup_cause == "agent_protocol_error"
    assert raw.close_codes[:1] == [1002]


async def _one_huge_frame(writer: asyncio.StreamWriter) -> None:
    # Only the header: the size alone is enough to refuse the frame.
    writer.write(bytes([0x81, 127]) + struct.pack("!Q", 17 * 2**20))


async def _huge_in_fragments(writer: asyncio.StreamWriter) -> None:
    part = b"x" * (9 * 2**20)
    writer.write(frame(0x1, part, fin=False))
    writer.write(frame(0x0, part, fin=True))


@pytest.mark.parametrize("script", [_one_huge_frame, _huge_in_fragments])
def test_a_message_over_16_mib_is_message_too_big_not_an_agent_hang_up(
    loop_thread: LoopThread, script: Callable[[asyncio.StreamWriter], Any]
) -> None:
    session, raw = run_raw(loop_thread, script)

    assert session.hangup_reason == "agent_message_too_big"
    assert session.hangup_cause == "agent_message_too_big"
    assert raw.close_codes[:1] == [1009]


async def _close_1000(writer: asyncio.StreamWriter) -> None:
    writer.write(frame(0x8, struct.pack("!H", 1000)))


async def _just_hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()


@pytest.mark.parametrize("script", [_close_1000, _just_hang_up])
def test_an_agent_closing_is_still_an_agent_hang_up(
    loop_thread: LoopThread, script: Callable[[asyncio.StreamWriter], Any]
) -> None:
    session, _ = run_raw(loop_thread, script)

    assert session.hangup_reason == "agent_closed"
    assert session.hangup_cause == "agent:agent_closed"


def test_a_bridge_bug_on_one_message_is_a_bridge_error_not_an_agent_hang_up(
    runner: BridgeRunner, agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: a bug in our own handling of one message (none is known; this stands in
    # for the next one) must not be reported as the agent hanging up.
    def broken(self: BridgeSession, name: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(BridgeSession, "_on_agent_mark", broken)
    session = open_started(runner, agent)

    agent.send_mark(session.stream_sid, "m")
    wait_for(session.hangup_requested)

    assert session.hangup_reason == "bridge_error"
    assert session.hangup_cause == "bridge_error"


def test_agent_stop_keeps_its_agent_prefixed_cause(runner: BridgeRunner, agent: FakeAgent) -> None:
    session = open_started(runner, agent)

    agent.send_json({"event": "stop"})
    wait_for(session.hangup_requested)

    assert session.hangup_cause == "agent:agent_stop"


@pytest.mark.slow
def test_the_reference_agent_listening_longer_than_the_idle_timeout_is_not_idle(
    loop_thread: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reference_agent, "KEEPALIVE_S", 0.2)
    records: list[dict[str, Any]] = []
    server = loop_thread.run(
        reference_agent.start_reference_agent(
            "127.0.0.1", 0, talk_seconds=2.0, on_stream_end=records.append
        )
    )
    try:
        with BridgeRunner(open_timeout=2.0, idle_timeout=0.6, ping_interval=0.2) as runner:
            url = f"ws://127.0.0.1:{reference_agent.bound_port(server)}"
            session = runner.open(url=url, stream=StreamInfo(call_sid=CALL, account_sid=""))
            wait_for(session.hangup_requested)
    finally:
        server.close()
        loop_thread.run(server.wait_closed())

    assert session.hangup_reason == "agent_closed"  # its own end after 2 s, not agent_idle
    wait_for(lambda: len(records) == 1)
    assert records[0]["seconds"] >= 1.9
