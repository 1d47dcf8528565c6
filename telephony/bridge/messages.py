"""The messages both agent wires (Twilio Media Streams, Exotel AgentStream) carry, as small frozen
dataclasses. A wire codec (telephony.bridge.wire_codec) turns them into that wire's JSON and back.

Messages an agent sends back (``media`` with only a payload, ``mark``, ``clear``) carry no
sequence numbers: those fields are ``None`` and codecs leave them out, so both the platform-side
and the agent-side shapes round-trip exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telephony.bridge.wire_json import CodecError as CodecError  # callers catch it from here

MULAW_MEDIA_FORMAT: dict[str, Any] = {
    "encoding": "audio/x-mulaw",
    "sampleRate": 8000,
    "channels": 1,
}


def _default_tracks() -> list[str]:
    return ["inbound"]


def _default_media_format() -> dict[str, Any]:
    return dict(MULAW_MEDIA_FORMAT)


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str = "Call"
    version: str = "1.0.0"


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: list[str] = field(default_factory=_default_tracks)
    custom_parameters: dict[str, str] = field(default_factory=dict)
    media_format: dict[str, Any] = field(default_factory=_default_media_format)
    sequence_number: int | None = 1


@dataclass(frozen=True, slots=True)
class Media:
    stream_sid: str
    payload: bytes  # raw audio in the wire's encoding (see WireCodec), not base64
    track: str | None = None
    chunk: int | None = None
    timestamp: int | None = None  # ms since the stream started
    sequence_number: int | None = None
    # Payload bytes past the limit deserialize() was given: counted, never decoded.
    dropped_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Mark:
    stream_sid: str
    name: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class Clear:
    stream_sid: str


@dataclass(frozen=True, slots=True)
class Stop:
    stream_sid: str
    account_sid: str
    call_sid: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    digit: str
    track: str = "inbound_track"
    sequence_number: int | None = None


Message = Connected | Start | Media | Mark | Clear | Stop | Dtmf
