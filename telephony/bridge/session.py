"""BridgeSession: one call's agent stream, between the call's audio and the asyncio loop.

Threads that touch a session:

* the bridge's asyncio loop thread runs the transport, which feeds agent messages in with
  ``handle_agent_message`` and takes messages to send with ``next_batch``; with the RTP relay
  (telephony.bridge.relay, the default) the relay runs there too, calling
  ``deliver_call_audio`` (sent at once, nothing crosses threads) and ``next_agent_audio``;
* with a pjsua2 tap instead (ENGINE_BRIDGE_MEDIA=tap), pjmedia's clock thread calls
  ``on_call_audio`` and ``next_agent_audio`` every 20 ms and must never block;
* the engine's main thread polls ``hangup_requested`` and calls ``close``.

Tap audio crosses to the loop through a ``deque`` (append/popleft are atomic under the GIL) plus
one coalesced ``call_soon_threadsafe`` wake-up. Agent audio waits in a lock-protected playout
queue; the lock is held only for a few list operations on either side."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVarTuple

from telephony.bridge.audio import PCM_FRAME_BYTES, silence_pcm
from telephony.bridge.messages import Clear, Connected, Dtmf, Mark, Media, Start, Stop
from telephony.bridge.wire_codec import WireCodec, wire_codec

logger = logging.getLogger(__name__)
_Ts = TypeVarTuple("_Ts")

# Callee audio waiting for a slow or not-yet-open socket: 5 s. Past that the oldest frames go,
# because a voice agent wants the newest audio, not a growing backlog.
MAX_PENDING_FRAMES_TO_AGENT = 250
# Agents often send a whole utterance at once, faster than real time. Two minutes covers any sane
# utterance while bounding memory per call (~3.8 MB of PCM).
MAX_BUFFERED_AGENT_FRAMES = 6000
# Marks waiting behind that audio: one per frame is already more than any agent sends. Past it a
# mark is ignored (and never echoed), or a flood of marks would grow the queue without bound.
MAX_PENDING_MARKS = MAX_BUFFERED_AGENT_FRAMES
# A misbehaving agent can send junk 50 times a second: one warning, then one at most this often.
WARN_EVERY_S = 10.0
# How the session's end reads in the attempt's hangup_cause: ends the agent chose (closing the
# socket, `stop`, Twilio's REST hang-up in telephony.bridge.rest) carry "agent:", so reports
# tell them from ends the dialer chose (agent_idle, agent_protocol_error, ...), which do not.
AGENT_HANGUPS = frozenset({"agent_closed", "agent_stop", "agent_rest"})

_SILENCE = silence_pcm()


def new_stream_sid() -> str:
    return "MZ" + secrets.token_hex(16)


@dataclass
class StreamInfo:
    call_sid: str
    account_sid: str
    stream_sid: str = ""
    custom_parameters: dict[str, str] = field(default_factory=dict)
    wire: str = "twilio"  # the agent's message format: twilio or exotel
    # Called (from the bridge's loop thread) when the agent asks to hang up, so the engine
    # acts now rather than at its next poll.
    on_hangup_request: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if not self.stream_sid:
            self.stream_sid = new_stream_sid()


@dataclass(frozen=True, slots=True)
class _MarkPoint:
    """A pending agent mark, queued right after the last frame of audio that precedes it."""

    name: str


class BridgeSession:
    def __init__(self, *, stream: StreamInfo, loop: asyncio.AbstractEventLoop) -> None:
        self.stream = stream
        # Message classes are shared; the wire format (JSON shape, audio encoding) is per call.
        self._wire: WireCodec = wire_codec(stream.wire)
        self._loop = loop
        self._t0 = time.monotonic()

        # Callee -> agent. Written by the media thread, read by the loop.
        self._to_agent: deque[tuple[bytes, int]] = deque(maxlen=MAX_PENDING_FRAMES_TO_AGENT)
        self._wake_scheduled = False
        self._send_now: Callable[[str], bool] | None = None
        # Loop-only from here down to the playout queue.
        self._control: deque[Mark | Dtmf] = deque()
        self._wakeup = asyncio.Event()
        self._seq = 1  # "start" is always sequence number 1; see start_messages()
        self._chunk = 0
        self._connected = False
        self._close_requested = False
        self._ended = False
        self._task: asyncio.Task[None] | None = None
        self.ignored_messages = 0  # agent messages logged and ignored
        self._next_warning = 0.0
        self._unlogged = 0
        self._last_heard = time.monotonic()  # the agent's last media, mark, clear or stop

        # Agent -> callee playout queue: 320-byte PCM frames and the marks between them.
        self._play_lock = threading.Lock()
        self._play: deque[bytes | _MarkPoint] = deque()
        self._play_frames = 0
        self._pending_marks = 0
        self._tail = bytearray()  # decoded agent audio short of a whole frame
        self._dropped_pcm = 0  # agent audio (PCM bytes) that found the playout queue full

        self._hangup_reason: str | None = None
        self.frames_to_agent = 0  # media messages sent to the agent
        self.frames_from_agent = 0  # 20 ms agent frames handed to the media thread
        self.frames_dropped = 0  # callee frames dropped because the socket fell behind
        self.marks_echoed = 0

    # --- engine side (any thread) --------------------------------------------------------------

    @property
    def stream_sid(self) -> str:
        return self.stream.stream_sid

    @property
    def hangup_reason(self) -> str | None:
        return self._hangup_reason

    @property
    def hangup_cause(self) -> str | None:
        """The attempt's hangup cause for this end: "agent:<reason>" when the agent chose it."""
        reason = self._hangup_reason
        if reason is None:
            return None
        return f"agent:{reason}" if reason in AGENT_HANGUPS else reason

    def hangup_requested(self) -> bool:
        return self._hangup_reason is not None

    @property
    def buffered_agent_frames(self) -> int:
        return self._play_frames

    @property
    def pending_marks(self) -> int:
        return self._pending_marks

    @property
    def agent_frames_dropped(self) -> int:
        """20 ms frames of agent audio dropped because the playout queue was full."""
        return self._dropped_pcm // PCM_FRAME_BYTES

    def on_call_audio(self, pcm: bytes) -> None:
        """Media thread: 20 ms of callee PCM (16-bit LE, 8 kHz). Cheap and never blocks."""
        if self._ended or self._close_requested:
            return
        self._queue_call_audio(*self._call_audio(pcm))
        # One pending wake-up is enough: _wake clears the flag before the loop drains the deque,
        # so a frame appended after the drain started always schedules a fresh wake-up.
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self._call_soon(self._wake)

    def deliver_call_audio(self, pcm: bytes) -> None:
        """Loop thread (the RTP relay): as on_call_audio, but sent at once when the socket is
        open and nothing is queued before it: no queue, no wake-up, no task switch."""
        if self._ended or self._close_requested:
            return
        payload, timestamp = self._call_audio(pcm)
        send = self._send_now
        if send is None or self._to_agent or self._control:
            self._queue_call_audio(payload, timestamp)
            self._wakeup.set()
        elif send(self._media_text(payload, timestamp)):
            self.frames_to_agent += 1
        else:
            self.frames_dropped += 1

    def _call_audio(self, pcm: bytes) -> tuple[bytes, int]:
        """The frame's media payload and its timestamp (ms since the stream started)."""
        return self._wire.media_payload_from_pcm(pcm), int((time.monotonic() - self._t0) * 1000)

    def _queue_call_audio(self, payload: bytes, timestamp: int) -> None:
        if len(self._to_agent) == MAX_PENDING_FRAMES_TO_AGENT:
            self.frames_dropped += 1
        self._to_agent.append((payload, timestamp))

    def next_agent_audio(self) -> bytes:
        """Media thread: the next 320 bytes of agent PCM to play, or silence."""
        frame: bytes | None = None
        marks: list[str] = []
        with self._play_lock:
            play = self._play
            while play:
                item = play[0]
                if isinstance(item, _MarkPoint):
                    marks.append(item.name)
                elif frame is None:
                    frame = item
                    self._play_frames -= 1
                else:
                    break
                play.popleft()
            self._pending_marks -= len(marks)
        if marks:
            self._call_soon(self._echo_marks, marks)
        if frame is None:
            return _SILENCE
        self.frames_from_agent += 1
        return frame

    def on_dtmf(self, digit: str) -> None:
        """Engine: a DTMF digit from the callee, forwarded to the agent as a ``dtmf`` message."""
        self._call_soon(self._queue_control, Dtmf(stream_sid=self.stream_sid, digit=digit))

    def close(self) -> None:
        """Engine: the call ended. Sends ``stop`` and closes the socket, on the loop."""
        self._call_soon(self._close_on_loop)

    def _call_soon(self, callback: Callable[[*_Ts], object], *args: *_Ts) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            # The runner's loop is already closed (shutdown raced the end of the call): there is
            # no socket left to serve, so dropping the work is correct.
            pass

    # --- loop side ------------------------------------------------------------------------------

    def attach_task(self, task: asyncio.Task[None]) -> None:
        self._task = task

    @property
    def close_requested(self) -> bool:
        return self._close_requested

    def request_hangup(self, reason: str) -> None:
        if self._hangup_reason is None:
            self._hangup_reason = reason
            logger.info("stream %s: hang-up requested: %s", self.stream_sid, reason)
            if self.stream.on_hangup_request is not None:
                self.stream.on_hangup_request()

    def start_messages(self) -> list[str]:
        start = Start(
            stream_sid=self.stream_sid,
            account_sid=self.stream.account_sid,
            call_sid=self.stream.call_sid,
            custom_parameters=dict(self.stream.custom_parameters),
            sequence_number=1,
        )
        return [self._wire.serialize(Connected()), self._wire.serialize(start)]

    def mark_connected(self, send_now: Callable[[str], bool] | None) -> None:
        """The socket is open (or, with None, going): send_now sends one message at once, or
        returns False when it had to drop it."""
        self._connected = True
        self._send_now = send_now
        if send_now is not None:
            self._last_heard = time.monotonic()  # the idle clock starts with the stream

    def agent_silent_for(self) -> float:
        """Seconds since the agent last sent a media, mark, clear or stop message."""
        return time.monotonic() - self._last_heard

    def end_stream(self, reason: str) -> None:
        """Loop: the dialer ends the call (reason: why): ask the engine to hang up, send the agent
        ``stop`` and close the socket, as at any end of call."""
        if self._close_requested:  # the call is already ending: keep the cause it has
            return
        self.request_hangup(reason)
        self._close_on_loop()

    def mark_ended(self, reason: str | None) -> None:
        """The socket is gone; ``reason`` asks the engine to hang up unless we closed it."""
        self._ended = True
        self._to_agent.clear()
        self._control.clear()
        if reason is not None and not self._close_requested:
            self.request_hangup(reason)

    async def next_batch(self) -> tuple[list[str], bool]:
        """Wait for messages to send. The flag is True when the batch ends with ``stop``."""
        while True:
            out = self._drain()
            if self._close_requested:
                self._seq += 1
                stop = Stop(
                    stream_sid=self.stream_sid,
                    account_sid=self.stream.account_sid,
                    call_sid=self.stream.call_sid,
                    sequence_number=self._seq,
                )
                out.append(self._wire.serialize(stop))
                return out, True
            if out:
                return out, False
            self._wakeup.clear()
            await self._wakeup.wait()

    def handle_agent_message(self, data: str | bytes) -> None:
        """Loop: one message from the agent. Whatever it holds, a message the codec refuses is
        logged and ignored: a bad message must never end the call."""
        if isinstance(data, bytes):
            self._ignore("binary frame of %d bytes", len(data))
            return
        try:
            # Only the audio that fits in the playout queue is decoded (the queue only drains
            # between now and _on_agent_media, on another thread).
            msg = self._wire.deserialize(data, max_payload_bytes=self._payload_room())
        except ValueError as exc:  # CodecError, and any ValueError a check has missed
            self._ignore("malformed message: %s", exc)
            return
        if isinstance(msg, Media):
            self._last_heard = time.monotonic()
            self._on_agent_media(msg.payload, msg.dropped_bytes)
        elif isinstance(msg, Mark):
            self._last_heard = time.monotonic()
            self._on_agent_mark(msg.name)
        elif isinstance(msg, Clear):
            self._last_heard = time.monotonic()
            self._on_agent_clear()
        elif isinstance(msg, Stop):
            self.request_hangup("agent_stop")
        else:
            self._ignore("%s message, which agents do not send", type(msg).__name__)

    def _ignore(self, what: str, *args: object) -> None:
        self._warn("ignoring agent " + what, *args)
        # Counted once logged: whoever watches the count (tests, from another thread) then sees
        # the log line too.
        self.ignored_messages += 1

    def _warn(self, what: str, *args: object) -> None:
        """Log a warning about the agent, the first at once, then at most one per WARN_EVERY_S
        saying how many went unlogged: a flood of junk must not flood the log."""
        now = time.monotonic()
        if now < self._next_warning:
            self._unlogged += 1
            return
        self._next_warning = now + WARN_EVERY_S
        unlogged, self._unlogged = self._unlogged, 0
        if unlogged:
            logger.warning("stream %s: " + what + " (and %d more since the last warning)",
                           self.stream_sid, *args, unlogged)  # fmt: skip
        else:
            logger.warning("stream %s: " + what, self.stream_sid, *args)

    def _wake(self) -> None:
        self._wake_scheduled = False
        self._wakeup.set()

    def _queue_control(self, msg: Mark | Dtmf) -> None:
        if self._ended:
            return
        self._control.append(msg)
        self._wakeup.set()

    def _echo_marks(self, names: list[str]) -> None:
        for name in names:
            self._queue_control(Mark(stream_sid=self.stream_sid, name=name))

    def _drain(self) -> list[str]:
        out: list[str] = []
        while self._control:
            self._seq += 1
            msg = dataclasses.replace(self._control.popleft(), sequence_number=self._seq)
            if isinstance(msg, Mark):
                self.marks_echoed += 1
            out.append(self._wire.serialize(msg))
        sent = 0
        while self._to_agent:
            payload, timestamp = self._to_agent.popleft()
            out.append(self._media_text(payload, timestamp))
            sent += 1
        self.frames_to_agent += sent
        return out

    def _media_text(self, payload: bytes, timestamp: int) -> str:
        self._seq += 1
        self._chunk += 1
        media = Media(
            stream_sid=self.stream_sid,
            payload=payload,
            track="inbound",
            chunk=self._chunk,
            timestamp=timestamp,
            sequence_number=self._seq,
        )
        return self._wire.serialize(media)

    def _room_pcm(self) -> int:
        """PCM bytes the playout queue can still take (the caller holds _play_lock)."""
        return max(0, (MAX_BUFFERED_AGENT_FRAMES - self._play_frames) * PCM_FRAME_BYTES
                   - len(self._tail))  # fmt: skip

    def _payload_room(self) -> int:
        with self._play_lock:
            room = self._room_pcm()
        return room // self._wire.pcm_bytes_per_payload_byte

    def _on_agent_media(self, payload: bytes, dropped_payload_bytes: int) -> None:
        pcm = self._wire.pcm_from_media_payload(payload)
        dropped = dropped_payload_bytes * self._wire.pcm_bytes_per_payload_byte
        with self._play_lock:
            room = self._room_pcm()
            if len(pcm) > room:  # only if the codec was given no limit
                dropped += len(pcm) - room
                pcm = pcm[:room]
            tail = self._tail
            tail += pcm
            whole = len(tail) // PCM_FRAME_BYTES * PCM_FRAME_BYTES
            for start in range(0, whole, PCM_FRAME_BYTES):
                self._play.append(bytes(tail[start : start + PCM_FRAME_BYTES]))
            del tail[:whole]
            self._play_frames += whole // PCM_FRAME_BYTES
        if dropped:
            self._dropped_pcm += dropped
            self._warn("agent audio dropped: %d frames already buffered (%d frames dropped in all)",
                       MAX_BUFFERED_AGENT_FRAMES, self.agent_frames_dropped)  # fmt: skip

    def _on_agent_mark(self, name: str) -> None:
        with self._play_lock:
            full = self._pending_marks >= MAX_PENDING_MARKS
            if not full and self._tail:
                # The mark closes an utterance: pad its last partial frame with silence so every
                # byte before the mark gets played before we echo it.
                self._tail.extend(bytes(PCM_FRAME_BYTES - len(self._tail)))
                self._play.append(bytes(self._tail))
                self._tail.clear()
                self._play_frames += 1
            if not full and self._play:
                self._play.append(_MarkPoint(name))
                self._pending_marks += 1
                return
        if full:
            self._ignore("mark: %d marks already wait for audio to play", MAX_PENDING_MARKS)
            return
        # Nothing left to play before it: Twilio echoes such a mark at once.
        self._echo_marks([name])

    def _on_agent_clear(self) -> None:
        with self._play_lock:
            names = [item.name for item in self._play if isinstance(item, _MarkPoint)]
            dropped = self._play_frames
            self._play.clear()
            self._tail.clear()
            self._play_frames = 0
            self._pending_marks = 0
        logger.debug("stream %s: clear dropped %d frames", self.stream_sid, dropped)
        self._echo_marks(names)

    def _close_on_loop(self) -> None:
        if self._close_requested:
            return
        self._close_requested = True
        if not self._connected:
            # The call is over before the agent answered: no stream to stop, just give up.
            self._ended = True
            if self._task is not None:
                self._task.cancel()
        self._wakeup.set()
