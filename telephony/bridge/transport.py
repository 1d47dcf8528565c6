"""The agent WebSocket's lifecycle for one BridgeSession: connect, start, pump, close."""

from __future__ import annotations

import asyncio
import logging

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from telephony.bridge.session import BridgeSession

logger = logging.getLogger(__name__)

OPEN_TIMEOUT = 3.0
CLOSE_TIMEOUT = 2.0
# Agents may send a whole utterance in one media message; 16 MiB is ~30 min of base64 mu-law.
MAX_MESSAGE_BYTES = 16 * 2**20


async def run_agent_connection(
    session: BridgeSession, url: str, *, open_timeout: float = OPEN_TIMEOUT
) -> None:
    """Run one agent stream to its end. Never raises, except for cancellation."""
    reason: str | None = None
    try:
        reason = await _run(session, url, open_timeout)
    except asyncio.CancelledError:
        raise
    except Exception:
        # One loop thread carries every call's stream: a bug hit by one stream must end that
        # call only, never the loop and the other calls with it.
        logger.exception("stream %s: bridge failed", session.stream_sid)
        reason = "bridge_error"
    finally:
        session.mark_ended(reason)


async def _run(session: BridgeSession, url: str, open_timeout: float) -> str | None:
    try:
        ws = await connect(
            url,
            open_timeout=open_timeout,
            close_timeout=CLOSE_TIMEOUT,
            max_size=MAX_MESSAGE_BYTES,
            # Mu-law audio does not compress, and deflate per frame would cost CPU on every call.
            compression=None,
        )
    except (OSError, TimeoutError, ValueError, WebSocketException) as exc:
        logger.warning("stream %s: agent %s unreachable: %r", session.stream_sid, url, exc)
        return "agent_unreachable"
    logger.info("stream %s: connected to agent %s", session.stream_sid, url)
    try:
        for text in session.start_messages():
            await ws.send(text)
        session.mark_connected()
        return await _exchange(ws, session)
    except ConnectionClosed as exc:
        logger.info("stream %s: agent closed the socket: %s", session.stream_sid, exc)
        return "agent_closed"
    finally:
        await ws.close()


async def _exchange(ws: ClientConnection, session: BridgeSession) -> str | None:
    sender = asyncio.create_task(_send_loop(ws, session))
    receiver = asyncio.create_task(_receive_loop(ws, session))
    try:
        done, _ = await asyncio.wait((sender, receiver), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None and not isinstance(exc, ConnectionClosed):
            raise exc
    if session.close_requested:
        return None
    logger.info("stream %s: agent closed the socket", session.stream_sid)
    return "agent_closed"


async def _send_loop(ws: ClientConnection, session: BridgeSession) -> None:
    while True:
        batch, final = await session.next_batch()
        for text in batch:
            await ws.send(text)
        if final:
            await ws.close()
            return


async def _receive_loop(ws: ClientConnection, session: BridgeSession) -> None:
    # Ends quietly on a clean close, raises ConnectionClosedError on an abrupt one.
    async for data in ws:
        session.handle_agent_message(data)
