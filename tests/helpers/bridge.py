"""The agent's side of the media bridge on loopback: an event loop thread, a scripted WebSocket
agent, and raw TCP connections to the engines' REST server."""

from __future__ import annotations

import asyncio
import base64
import json
import select
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from telephony.reference_agent import bound_port
from tests.helpers.wait import wait_for

T = TypeVar("T")

ACCOUNT = "AC00000000000000000000000000000001"
CALL = "CA00000000000000000000000000000002"
TIMEOUT = 5.0


def agent_ulaw(count: int) -> bytes:
    # Avoid 0x7F/0xFF: they decode to PCM zero and would look like silence.
    return bytes(0x20 + i % 0x50 for i in range(count))


class LoopThread:
    """An asyncio loop in its own thread: an agent's process, or the engine's bridge loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., object], *args: object, timeout: float = TIMEOUT) -> None:
        """Run a plain function on the loop (as the loop's own callbacks run) and wait for it."""
        done = threading.Event()

        def call() -> None:
            fn(*args)
            done.set()

        self.loop.call_soon_threadsafe(call)
        assert done.wait(timeout), f"{fn!r} did not run on the loop within {timeout} s"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


class FakeAgent:
    """A real websockets server on 127.0.0.1 recording what the bridge sends, scripted by tests."""

    def __init__(self, loop_thread: LoopThread, *, handshake_delay: float = 0.0) -> None:
        self._lt = loop_thread
        self._delay = handshake_delay
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self._conn: ServerConnection | None = None
        self.server: Server = self._lt.run(self._start())
        self.url = f"ws://127.0.0.1:{bound_port(self.server)}"

    async def _start(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0, process_request=self._process_request)

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self._delay:
            await asyncio.sleep(self._delay)  # a slow handshake is what the caller asked for
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self._conn = ws
        try:
            async for raw in ws:
                with self._lock:
                    self._messages.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def messages(self, event: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self._messages if event is None or m["event"] == event]

    def wait_for(self, event: str, count: int = 1) -> list[dict[str, Any]]:
        wait_for(
            lambda: len(self.messages(event)) >= count,
            timeout=TIMEOUT,
            interval=0.002,
            what=f"{count} {event!r} message(s) at the agent",
        )
        return self.messages(event)

    def send(self, data: str | bytes) -> None:
        assert self._conn is not None
        self._lt.run(self._conn.send(data))

    def send_json(self, obj: dict[str, Any]) -> None:
        self.send(json.dumps(obj))

    def send_media(self, stream_sid: str, ulaw: bytes) -> None:
        payload = base64.b64encode(ulaw).decode()
        self.send_json({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})

    def send_mark(self, stream_sid: str, name: str) -> None:
        self.send_json({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})

    def close(self) -> None:
        assert self._conn is not None
        self._lt.run(self._conn.close())

    async def _stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    def stop(self) -> None:
        self._lt.run(self._stop())


def connect_from(source_ip: str, port: int) -> socket.socket:
    """A TCP connection to the server from one of loopback's many addresses (127.0.0.0/8)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((source_ip, 0))
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closed (or reset) this connection without answering, within the time."""
    readable, _, _ = select.select([sock], [], [], within)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
