"""BridgeRunner: one asyncio loop in a daemon thread carrying every agent stream of a process.

The engine's pjsua2 main thread polls SIP and cannot host an event loop, so the bridge runs its
own. ``open`` and ``shutdown`` are called from engine threads; everything else happens on the
loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

from telephony.bridge.relay import RemoteMedia, RtpRelay
from telephony.bridge.rest import MAX_CONN_PER_CLIENT, RestServer, stream_credentials
from telephony.bridge.session import BridgeSession, StreamInfo, new_stream_sid
from telephony.bridge.transport import (
    IDLE_TIMEOUT,
    OPEN_TIMEOUT,
    PING_INTERVAL,
    run_agent_connection,
)

__all__ = ["BridgeRunner", "BridgeSession", "StreamInfo", "new_stream_sid"]

logger = logging.getLogger(__name__)

TICK_S = 0.02  # the relays' playout clock: one 20 ms RTP packet per call per tick
MAX_CATCH_UP_TICKS = 5  # a loop stalled longer than this resyncs rather than bursting


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (it is in requirements.txt): measured, it cuts the bridge
    thread's CPU per call by about a fifth against asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class BridgeRunner:
    def __init__(
        self,
        *,
        open_timeout: float = OPEN_TIMEOUT,
        name: str = "agent-bridge",
        rest_host: str = "",
        rest_port: int = 0,
        rest_secret: bytes = b"",
        rest_max_conn_per_client: int = MAX_CONN_PER_CLIENT,
        idle_timeout: float = IDLE_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        """With rest_host and rest_secret, also serve Twilio's call-update REST call for this
        process's streams (telephony.bridge.rest): agents that hang up through Twilio's API
        find each stream's base URL and credentials in its start message.

        idle_timeout: an agent that sends no media, mark, clear or stop for this long is
        disconnected and its call ended (agent_idle); ping_interval: an agent silent this long
        is pinged, and one whose pong takes as long again is dead (agent_ping_timeout)."""
        self._open_timeout = open_timeout
        self._idle_timeout = idle_timeout
        self._ping_interval = ping_interval
        self._loop = new_loop()
        self._tasks: dict[asyncio.Task[None], BridgeSession] = {}  # loop thread only
        self._by_call: dict[str, BridgeSession] = {}  # loop thread only
        self._relays: set[RtpRelay] = set()  # loop thread only
        self._next_tick: float | None = None
        self._shut_down = False
        self._thread = threading.Thread(target=self._run_loop, name=name, daemon=True)
        self._thread.start()
        self._rest: RestServer | None = None
        self._rest_base = ""
        self._rest_secret = rest_secret
        if rest_host and rest_secret:
            rest = RestServer(
                lookup=self._hangup_for,
                secret=rest_secret,
                max_conn_per_client=rest_max_conn_per_client,
            )
            try:
                bound = asyncio.run_coroutine_threadsafe(
                    rest.start(rest_host, rest_port), self._loop
                ).result(5.0)
            except OSError as exc:
                # Calls still bridge; agents can hang up by closing the socket.
                logger.error("bridge REST endpoint not served on %s:%s: %s", rest_host,
                             rest_port, exc)  # fmt: skip
            else:
                self._rest = rest
                self._rest_base = f"http://{rest_host}:{bound}"
                logger.info("bridge REST endpoint on %s", self._rest_base)

    @property
    def rest_base_url(self) -> str:
        return self._rest_base

    def __enter__(self) -> BridgeRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    @property
    def active_sessions(self) -> int:
        return len(self._tasks)

    def open(self, *, url: str, stream: StreamInfo) -> BridgeSession:
        """Start streaming a call to ``url``; returns at once, the socket opens on the loop."""
        if self._shut_down:
            raise RuntimeError("BridgeRunner is shut down")
        if self._rest is not None:
            # Per-stream credentials, derived (never stored): the AccountSid in `start`, the
            # token and the base URL in customParameters, as an agent needs them for Twilio's
            # POST .../Accounts/{AccountSid}/Calls/{CallSid}.json with Status=completed.
            creds = stream_credentials(stream.call_sid, secret=self._rest_secret)
            stream.account_sid = creds.account_sid
            stream.custom_parameters = {
                **stream.custom_parameters,
                "apiBaseUrl": self._rest_base,
                "authToken": creds.auth_token,
            }
        session = BridgeSession(stream=stream, loop=self._loop)
        self._loop.call_soon_threadsafe(self._start_session, session, url)
        return session

    def attach_relay(self, relay: RtpRelay, session: BridgeSession, remote: RemoteMedia) -> None:
        """Engine thread: carry the call's RTP between the far end and the session from now."""
        self._call(self._start_relay, relay, session, remote)

    def update_relay(self, relay: RtpRelay, remote: RemoteMedia) -> None:
        """Engine thread: the far end moved its media (a re-INVITE)."""
        self._call(relay.set_remote, remote)

    def detach_relay(self, relay: RtpRelay) -> None:
        """Engine thread: the call ended; the relay's sockets close on the loop."""
        if not self._call(self._stop_relay, relay):
            relay.close_unstarted()

    def _call(self, callback: Callable[..., object], *args: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: shutdown raced the call
            return False
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Close every session (each sends ``stop``), stop the loop and join its thread."""
        if self._shut_down:
            return
        self._shut_down = True
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            if self._rest is not None:
                asyncio.run_coroutine_threadsafe(self._rest.close(), self._loop).result(timeout)
            future = asyncio.run_coroutine_threadsafe(self._close_all(timeout * 0.8), self._loop)
            try:
                future.result(timeout)
            except TimeoutError:
                logger.warning("bridge sessions did not close within %.1f s", timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.warning("bridge loop thread did not stop within %.1f s", timeout)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _start_session(self, session: BridgeSession, url: str) -> None:
        coro = run_agent_connection(
            session,
            url,
            open_timeout=self._open_timeout,
            idle_timeout=self._idle_timeout,
            ping_interval=self._ping_interval,
        )
        task = self._loop.create_task(coro, name=f"bridge-{session.stream_sid}")
        session.attach_task(task)
        self._tasks[task] = session
        self._by_call[session.stream.call_sid] = session
        task.add_done_callback(self._forget)

    def _start_relay(self, relay: RtpRelay, session: BridgeSession, remote: RemoteMedia) -> None:
        try:
            relay.start(self._loop, session, remote)
        except OSError as exc:
            logger.warning("stream %s: RTP relay not started: %s", session.stream_sid, exc)
            session.request_hangup("relay_failed")
            return
        self._relays.add(relay)
        if self._next_tick is None:
            self._next_tick = self._loop.time() + TICK_S
            self._loop.call_at(self._next_tick, self._tick)

    def _stop_relay(self, relay: RtpRelay) -> None:
        self._relays.discard(relay)
        relay.stop(self._loop)

    def _tick(self) -> None:
        """Every 20 ms while relays run: each sends its next packet. A late tick sends the
        packets it missed (up to MAX_CATCH_UP_TICKS), so the far end's playout never starves."""
        if not self._relays or self._next_tick is None:
            self._next_tick = None
            return
        now = self._loop.time()
        due = 1 + int((now - self._next_tick) / TICK_S) if now > self._next_tick else 1
        if due > MAX_CATCH_UP_TICKS:
            due, self._next_tick = 1, now
        mono = time.monotonic()
        for relay in list(self._relays):
            try:
                for _ in range(due):
                    relay.tick(mono)
            except Exception:
                # One call's bug must not stop the clock the other calls play out by.
                logger.exception("RTP relay tick failed")
                self._stop_relay(relay)
        self._next_tick += due * TICK_S
        self._loop.call_at(self._next_tick, self._tick)

    def _hangup_for(self, call_sid: str) -> Callable[[str], None] | None:
        session = self._by_call.get(call_sid)
        return session.request_hangup if session is not None else None

    def _forget(self, task: asyncio.Task[None]) -> None:
        session = self._tasks.pop(task, None)
        if session is not None and self._by_call.get(session.stream.call_sid) is session:
            del self._by_call[session.stream.call_sid]
        if not task.cancelled() and task.exception() is not None:
            # run_agent_connection never raises; if it ever does, say so rather than lose it.
            logger.error("bridge task %s failed", task.get_name(), exc_info=task.exception())

    async def _close_all(self, timeout: float) -> None:
        for relay in list(self._relays):
            self._stop_relay(relay)
        for session in list(self._tasks.values()):
            session.close()
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
