"""The agent WebSocket's lifecycle for one BridgeSession: connect, start, pump, close.

The client is picows (Cython): a frame arrives as one callback and a message leaves as one
synchronous call, where the websockets library spends a task wake-up, a lock and an async
context manager on each. At 50 frames a second each way per call that was most of the bridge
thread's Python time (measured: ~40% less CPU per connection in an echo microbenchmark).
"""

from __future__ import annotations

import asyncio
import logging

from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from telephony.bridge.session import BridgeSession

logger = logging.getLogger(__name__)

OPEN_TIMEOUT = 3.0
CLOSE_TIMEOUT = 2.0
# Agents may send a whole utterance in one media message; 16 MiB is ~30 min of base64 mu-law.
MAX_MESSAGE_BYTES = 16 * 2**20
# Callee audio queued in our socket buffer for an agent that stopped reading: past this (~5 s of
# media messages) frames are dropped, because a voice agent wants the newest audio.
MAX_WRITE_BUFFER = 256 * 1024
# Marks echoes, DTMF and stop are never dropped; an agent that reads none of them while it keeps
# sending marks would grow this buffer without bound. Past this it has stopped reading: the call
# is ended (agent_not_reading).
MAX_STALLED_WRITE_BUFFER = 4 * 2**20
# An agent that sends no media, mark, clear or stop for this long is holding the callee in
# silence: the call is ended (AGENT_IDLE_TIMEOUT_S). Pongs do not count: agent libraries answer
# pings by themselves, so a pong proves the process is up, not that it is serving the call.
IDLE_TIMEOUT = 30.0
# After this long without a frame from the agent it is pinged; no pong within as long again and
# it is dead (AGENT_PING_INTERVAL_S). An agent sending media is not pinged: it is plainly alive,
# and its pong could queue behind a large message.
PING_INTERVAL = 10.0

# Closes the dialer starts, by the code it sent, and the session's end they stand for. Each is
# the dialer's decision, so none reads as the agent hanging up (see session.AGENT_HANGUPS).
_DIALER_CLOSES = {
    WSCloseCode.PROTOCOL_ERROR: "agent_protocol_error",  # picows: a frame RFC 6455 forbids
    WSCloseCode.INVALID_TEXT: "agent_protocol_error",
    WSCloseCode.MESSAGE_TOO_BIG: "agent_message_too_big",  # over MAX_MESSAGE_BYTES
    WSCloseCode.GOING_AWAY: "agent_ping_timeout",  # picows: no pong in time
    WSCloseCode.INTERNAL_ERROR: "bridge_error",  # a bug of ours on one agent message
}


class _AgentListener(WSListener):  # type: ignore[misc]
    """picows calls these on the loop thread; a message in several frames is put together."""

    def __init__(self, session: BridgeSession) -> None:
        self._session = session
        self._parts: list[bytes] | None = None
        self._parts_size = 0
        self._parts_text = False
        self.disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed_by_agent = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        try:
            self._on_frame(transport, frame)
        except Exception:
            # Our bug, not the agent's doing: say so in the close code (-> bridge_error) rather
            # than let picows close with one the agent's own 1011 would look like.
            logger.exception("stream %s: bridge failed on an agent frame", self._session.stream_sid)
            self._fail(transport, WSCloseCode.INTERNAL_ERROR)

    def _on_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            # picows leaves the reserved bits to extensions, and we agreed none (RFC 6455 5.2).
            logger.warning("stream %s: agent set a reserved frame bit; closing",
                           self._session.stream_sid)  # fmt: skip
            self._fail(transport, WSCloseCode.PROTOCOL_ERROR)
            return
        if kind == WSMsgType.TEXT and frame.fin and self._parts is None:
            self._deliver(transport, frame.get_payload_as_bytes(), text=True)
        elif kind in (WSMsgType.TEXT, WSMsgType.BINARY):
            if self._parts is not None:
                logger.warning("stream %s: agent started a message inside another; closing",
                               self._session.stream_sid)  # fmt: skip
                self._fail(transport, WSCloseCode.PROTOCOL_ERROR)
            elif frame.fin:
                self._deliver(transport, frame.get_payload_as_bytes(), text=False)
            else:
                self._parts = [frame.get_payload_as_bytes()]
                self._parts_size = frame.payload_size
                self._parts_text = kind == WSMsgType.TEXT
        elif kind == WSMsgType.CONTINUATION:
            if self._parts is None:
                logger.warning("stream %s: agent continued no message; closing",
                               self._session.stream_sid)  # fmt: skip
                self._fail(transport, WSCloseCode.PROTOCOL_ERROR)
                return
            self._parts.append(frame.get_payload_as_bytes())
            self._parts_size += frame.payload_size
            if self._parts_size > MAX_MESSAGE_BYTES:
                logger.warning("stream %s: agent message over %d bytes; closing",
                               self._session.stream_sid, MAX_MESSAGE_BYTES)  # fmt: skip
                self._fail(transport, WSCloseCode.MESSAGE_TOO_BIG)
            elif frame.fin:
                data, self._parts = b"".join(self._parts), None
                self._deliver(transport, data, text=self._parts_text)
        elif kind == WSMsgType.CLOSE:
            self.closed_by_agent = True
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        # PING is answered by picows itself (auto-pong), and PONGs are picows's auto-ping's.

    def _fail(self, transport: WSTransport, code: WSCloseCode) -> None:
        self._parts = None
        transport.send_close(code)
        transport.disconnect()

    def _deliver(self, transport: WSTransport, data: bytes, *, text: bool) -> None:
        if not text:
            self._session.handle_agent_message(data)  # logged and ignored there
            return
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError:
            self._session.handle_agent_message(data)  # as a binary frame: ignored
            return
        self._session.handle_agent_message(message)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)


async def run_agent_connection(
    session: BridgeSession,
    url: str,
    *,
    open_timeout: float = OPEN_TIMEOUT,
    idle_timeout: float = IDLE_TIMEOUT,
    ping_interval: float = PING_INTERVAL,
) -> None:
    """Run one agent stream to its end. Never raises, except for cancellation."""
    reason: str | None = None
    try:
        reason = await _run(session, url, open_timeout, idle_timeout, ping_interval)
    except asyncio.CancelledError:
        raise
    except Exception:
        # One loop thread carries every call's stream: a bug hit by one stream must end that
        # call only, never the loop and the other calls with it.
        logger.exception("stream %s: bridge failed", session.stream_sid)
        reason = "bridge_error"
    finally:
        session.mark_ended(reason)


async def _run(
    session: BridgeSession, url: str, open_timeout: float, idle_timeout: float, ping_interval: float
) -> str | None:
    try:
        transport, listener = await asyncio.wait_for(
            ws_connect(
                lambda: _AgentListener(session),
                url,
                websocket_handshake_timeout=open_timeout,
                max_frame_size=MAX_MESSAGE_BYTES,
                enable_auto_pong=True,
                enable_auto_ping=True,
                auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
                auto_ping_idle_timeout=ping_interval,
                auto_ping_reply_timeout=ping_interval,
                max_redirects=0,
            ),
            open_timeout,
        )
    except (OSError, TimeoutError, ValueError, WSError) as exc:
        logger.warning("stream %s: agent %s unreachable: %r", session.stream_sid, url, exc)
        return "agent_unreachable"
    logger.info("stream %s: connected to agent %s", session.stream_sid, url)
    try:
        for text in session.start_messages():
            transport.send(WSMsgType.TEXT, text.encode())
        session.mark_connected(lambda text: _send_media(transport, text))
        assert isinstance(listener, _AgentListener)
        return await _exchange(transport, listener, session, idle_timeout)
    finally:
        session.mark_connected(None)
        if not transport.is_disconnected:
            # Flushing what an agent is not reading could hold the socket open for as long as
            # TCP lets it: drop it instead.
            transport.disconnect(graceful=_write_buffer(transport) <= MAX_WRITE_BUFFER)


def _send_media(transport: WSTransport, text: str) -> bool:
    """Send a media message now, or drop it (False) when the agent has stopped reading."""
    if _write_buffer(transport) > MAX_WRITE_BUFFER:
        return False
    transport.send(WSMsgType.TEXT, text.encode())
    return True


async def _exchange(
    transport: WSTransport, listener: _AgentListener, session: BridgeSession, idle_timeout: float
) -> str | None:
    sender = asyncio.create_task(_send_loop(transport, session))
    watchdog = asyncio.create_task(_end_when_idle(session, idle_timeout))
    try:
        await asyncio.wait((sender, listener.disconnected), return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and sender.exception() is None:
            # We sent stop and a close frame: give the agent a moment to close its side.
            await asyncio.wait((listener.disconnected,), timeout=CLOSE_TIMEOUT)
    finally:
        for task in (sender, watchdog):
            if not task.done():
                task.cancel()
        await asyncio.gather(sender, watchdog, return_exceptions=True)
    if not sender.cancelled() and sender.exception() is not None:
        raise sender.exception()  # type: ignore[misc]
    if session.close_requested:
        return None
    reason = dialer_close_reason(transport)
    if reason is not None:
        logger.warning("stream %s: closed the agent's socket: %s", session.stream_sid, reason)
        return reason
    logger.info("stream %s: agent closed the socket", session.stream_sid)
    return "agent_closed"


def dialer_close_reason(transport: WSTransport) -> str | None:
    """Why the dialer closed the socket, when it closed it first; None when the agent did."""
    handshake = transport.close_handshake
    if handshake is None or handshake.sent is None or handshake.recv_then_sent:
        return None
    return _DIALER_CLOSES.get(handshake.sent.code)


async def _end_when_idle(session: BridgeSession, idle_timeout: float) -> None:
    while (left := idle_timeout - session.agent_silent_for()) > 0:
        await asyncio.sleep(left)
    logger.warning("stream %s: agent sent nothing for %.0f s; ending the call",
                   session.stream_sid, idle_timeout)  # fmt: skip
    session.end_stream("agent_idle")


async def _send_loop(transport: WSTransport, session: BridgeSession) -> None:
    while True:
        batch, final = await session.next_batch()
        for text in batch:
            transport.send(WSMsgType.TEXT, text.encode())
        if final:
            transport.send_close(WSCloseCode.OK)
            return
        if _write_buffer(transport) > MAX_STALLED_WRITE_BUFFER and not session.close_requested:
            logger.warning("stream %s: agent has not read %d bytes; ending the call",
                           session.stream_sid, _write_buffer(transport))  # fmt: skip
            session.end_stream("agent_not_reading")


def _write_buffer(transport: WSTransport) -> int:
    size: int = transport.underlying_transport.get_write_buffer_size()
    return size
