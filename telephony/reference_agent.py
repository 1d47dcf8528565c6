"""A built-in reference agent speaking Twilio Media Streams, for demos and end-to-end tests.

Per stream it waits for ``start``, plays a one-second two-beep greeting, sends a mark named
``greeting-end``, counts the callee's media frames, and after ``talk_seconds`` closes the
socket, which is how a real agent tells the dialer to hang up. While it listens it sends a
``listening`` mark every few seconds: the dialer ends a call whose agent sends nothing for
AGENT_IDLE_TIMEOUT_S (pongs do not count), and a mark with no audio before it is harmless (it is
echoed at once).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import struct
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from telephony.bridge.audio import SAMPLE_RATE, ULAW_FRAME_BYTES, pcm16_to_ulaw
from telephony.bridge.messages import CodecError, Mark, Media, Start, Stop
from telephony.bridge.twilio_codec import TwilioCodec

logger = logging.getLogger(__name__)

GREETING_MARK = "greeting-end"
START_TIMEOUT = 10.0
# Real agents send TTS in chunks larger than 20 ms; doing the same exercises the bridge's
# re-framing.
GREETING_CHUNK_BYTES = ULAW_FRAME_BYTES * 10
KEEPALIVE_MARK = "listening"
KEEPALIVE_S = 5.0  # well inside the dialer's shortest sensible idle timeout

codec = TwilioCodec()

StreamEndHandler = Callable[[dict[str, Any]], None]


def _tone_pcm(freq_hz: float, ms: int, amplitude: int = 8000) -> bytes:
    count = SAMPLE_RATE * ms // 1000
    samples = [
        int(amplitude * math.sin(2 * math.pi * freq_hz * n / SAMPLE_RATE)) for n in range(count)
    ]
    return struct.pack(f"<{count}h", *samples)


def _silence_pcm(ms: int) -> bytes:
    return bytes(SAMPLE_RATE * ms // 1000 * 2)


@functools.cache
def greeting_ulaw() -> bytes:
    """One second of mu-law: a 440 Hz beep, a gap, a 660 Hz beep, a gap (50 frames)."""
    pcm = _tone_pcm(440, 300) + _silence_pcm(100) + _tone_pcm(660, 300) + _silence_pcm(300)
    return pcm16_to_ulaw(pcm)


def print_stream_end(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def _wait_for_start(ws: ServerConnection) -> Start | None:
    try:
        async with asyncio.timeout(START_TIMEOUT):
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue
                try:
                    msg = codec.deserialize(raw)
                except CodecError as exc:
                    logger.warning("reference agent: ignoring malformed message: %s", exc)
                    continue
                if isinstance(msg, Start):
                    return msg
    except (TimeoutError, ConnectionClosed):
        pass
    return None


async def _send_greeting(ws: ServerConnection, stream_sid: str) -> None:
    greeting = greeting_ulaw()
    for offset in range(0, len(greeting), GREETING_CHUNK_BYTES):
        chunk = greeting[offset : offset + GREETING_CHUNK_BYTES]
        await ws.send(codec.serialize(Media(stream_sid=stream_sid, payload=chunk)))
    await ws.send(codec.serialize(Mark(stream_sid=stream_sid, name=GREETING_MARK)))


async def _keep_alive(ws: ServerConnection, stream_sid: str) -> None:
    mark = codec.serialize(Mark(stream_sid=stream_sid, name=KEEPALIVE_MARK))
    try:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            await ws.send(mark)
    except ConnectionClosed:
        pass


async def _handle_stream(
    ws: ServerConnection, *, talk_seconds: float, on_stream_end: StreamEndHandler
) -> None:
    start = await _wait_for_start(ws)
    if start is None:
        logger.warning("reference agent: no start message; closing")
        await ws.close()
        return
    began = time.monotonic()
    frames_heard = 0
    marks_received = 0
    keepalive: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(talk_seconds):
            await _send_greeting(ws, start.stream_sid)
            keepalive = asyncio.create_task(_keep_alive(ws, start.stream_sid))
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue
                try:
                    msg = codec.deserialize(raw)
                except CodecError:
                    continue
                if isinstance(msg, Media):
                    frames_heard += 1
                elif isinstance(msg, Mark) and msg.name != KEEPALIVE_MARK:
                    marks_received += 1
                elif isinstance(msg, Stop):
                    break
    except (TimeoutError, ConnectionClosed):
        pass
    finally:
        if keepalive is not None:
            keepalive.cancel()
    await ws.close()
    on_stream_end(
        {
            "event": "agent_stream_end",
            "streamSid": start.stream_sid,
            "callSid": start.call_sid,
            "customParameters": start.custom_parameters,
            "frames_heard": frames_heard,
            "marks_received": marks_received,
            "seconds": round(time.monotonic() - began, 3),
        }
    )


async def start_reference_agent(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    talk_seconds: float = 3.0,
    on_stream_end: StreamEndHandler = print_stream_end,
) -> Server:
    """Start listening and return the server; port 0 picks a free port (see ``bound_port``)."""
    handler = functools.partial(
        _handle_stream, talk_seconds=talk_seconds, on_stream_end=on_stream_end
    )
    return await serve(handler, host, port, compression=None, max_size=16 * 2**20)


def bound_port(server: Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


async def serve_reference_agent(
    host: str = "127.0.0.1",
    port: int = 8765,
    talk_seconds: float = 3.0,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    on_stream_end: StreamEndHandler = print_stream_end,
) -> None:
    """Serve until ``stop`` is set (or forever); sets ``ready`` once listening."""
    server = await start_reference_agent(
        host, port, talk_seconds=talk_seconds, on_stream_end=on_stream_end
    )
    try:
        if ready is not None:
            ready.set()
        if stop is None:
            await server.serve_forever()
        else:
            await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
