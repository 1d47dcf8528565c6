"""Twilio Media Streams wire codec: JSON text <-> small frozen dataclasses.

Pure functions, no I/O. Field names and shapes follow Twilio's "Media Streams - WebSocket
Messages" reference so that agents written for Twilio plug in unchanged. Twilio sends
``sequenceNumber``, ``chunk`` and ``timestamp`` as *strings*; we do the same on the way out and
accept strings or integers on the way in.

Messages an agent sends back (``media`` with only a payload, ``mark``, ``clear``) carry no
sequence numbers: those fields are ``None`` and are left out when serialized, so both the
Twilio-side and the agent-side shapes round-trip exactly.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from telephony.bridge.audio import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.bridge.wire_json import CodecError as CodecError  # callers catch it from here
from telephony.bridge.wire_json import (
    b64_prefix_field,
    int_field,
    load_object,
    obj_field,
    preview,
    put_if,
    str_field,
)

MULAW_MEDIA_FORMAT: dict[str, Any] = {
    "encoding": "audio/x-mulaw",
    "sampleRate": 8000,
    "channels": 1,
}


# The session speaks 16-bit PCM; each wire codec says how its media payload carries it.
AUDIO = "mulaw"
media_payload_from_pcm = pcm16_to_ulaw
pcm_from_media_payload = ulaw_to_pcm16
PCM_BYTES_PER_PAYLOAD_BYTE = 2  # one mu-law byte is one 16-bit sample


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
    payload: bytes  # raw mu-law, not base64
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


# --- serialize ---------------------------------------------------------------------------------


def _media_to_dict(msg: Media) -> dict[str, Any]:
    media: dict[str, Any] = {}
    if msg.track is not None:
        media["track"] = msg.track
    if msg.chunk is not None:
        media["chunk"] = str(msg.chunk)
    if msg.timestamp is not None:
        media["timestamp"] = str(msg.timestamp)
    media["payload"] = base64.b64encode(msg.payload).decode("ascii")
    out: dict[str, Any] = {"event": "media"}
    if msg.sequence_number is None:
        # The agent-side shape, as Twilio documents it: event, streamSid, media.
        put_if(out, "streamSid", msg.stream_sid)
        out["media"] = media
    else:
        put_if(out, "sequenceNumber", msg.sequence_number)
        out["media"] = media
        put_if(out, "streamSid", msg.stream_sid)
    return out


def _to_dict(msg: Message) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(msg, Media):
        return _media_to_dict(msg)
    if isinstance(msg, Connected):
        return {"event": "connected", "protocol": msg.protocol, "version": msg.version}
    if isinstance(msg, Start):
        out = {"event": "start"}
        put_if(out, "sequenceNumber", msg.sequence_number)
        out["start"] = {
            "accountSid": msg.account_sid,
            "streamSid": msg.stream_sid,
            "callSid": msg.call_sid,
            "tracks": list(msg.tracks),
            "customParameters": dict(msg.custom_parameters),
            "mediaFormat": dict(msg.media_format),
        }
        out["streamSid"] = msg.stream_sid
        return out
    if isinstance(msg, Mark):
        out = {"event": "mark"}
        put_if(out, "sequenceNumber", msg.sequence_number)
        put_if(out, "streamSid", msg.stream_sid)
        out["mark"] = {"name": msg.name}
        return out
    if isinstance(msg, Clear):
        out = {"event": "clear"}
        put_if(out, "streamSid", msg.stream_sid)
        return out
    if isinstance(msg, Stop):
        out = {"event": "stop"}
        put_if(out, "sequenceNumber", msg.sequence_number)
        out["stop"] = {"accountSid": msg.account_sid, "callSid": msg.call_sid}
        put_if(out, "streamSid", msg.stream_sid)
        return out
    if isinstance(msg, Dtmf):
        out = {"event": "dtmf"}
        put_if(out, "streamSid", msg.stream_sid)
        put_if(out, "sequenceNumber", msg.sequence_number)
        out["dtmf"] = {"track": msg.track, "digit": msg.digit}
        return out
    raise TypeError(f"not a Media Streams message: {type(msg).__name__}")


def serialize(msg: Message) -> str:
    """Return the compact JSON text Twilio would put on the wire for ``msg``."""
    return json.dumps(_to_dict(msg), separators=(",", ":"))


# --- deserialize -------------------------------------------------------------------------------


def _parse_media(data: dict[str, Any], max_payload_bytes: int | None) -> Media:
    media = obj_field(data, "media", "media")
    track = media.get("track")
    if track is not None:  # absent and null alike mean no track
        track = str_field(media, "track", "media")
    payload, dropped = b64_prefix_field(media, "payload", "media", max_bytes=max_payload_bytes)
    return Media(
        stream_sid=str_field(data, "streamSid", "media", default=""),
        payload=payload,
        dropped_bytes=dropped,
        track=track,
        chunk=int_field(media, "chunk", "media"),
        timestamp=int_field(media, "timestamp", "media"),
        sequence_number=int_field(data, "sequenceNumber", "media"),
    )


def _parse_start(data: dict[str, Any]) -> Start:
    start = obj_field(data, "start", "start")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise CodecError("start message field 'tracks' must be a list of strings")
    params = start.get("customParameters", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise CodecError("start message field 'customParameters' must map strings to strings")
    media_format = start.get("mediaFormat", _default_media_format())
    if not isinstance(media_format, dict):
        raise CodecError("start message field 'mediaFormat' must be an object")
    return Start(
        stream_sid=str_field(start, "streamSid", "start"),
        account_sid=str_field(start, "accountSid", "start"),
        call_sid=str_field(start, "callSid", "start"),
        tracks=list(tracks),
        custom_parameters=dict(params),
        media_format=dict(media_format),
        sequence_number=int_field(data, "sequenceNumber", "start"),
    )


def _parse(data: dict[str, Any], max_payload_bytes: int | None) -> Message:
    event = data.get("event")
    if event == "media":
        return _parse_media(data, max_payload_bytes)
    if event == "mark":
        return Mark(
            stream_sid=str_field(data, "streamSid", "mark", default=""),
            name=str_field(obj_field(data, "mark", "mark"), "name", "mark"),
            sequence_number=int_field(data, "sequenceNumber", "mark"),
        )
    if event == "clear":
        return Clear(stream_sid=str_field(data, "streamSid", "clear", default=""))
    if event == "connected":
        return Connected(
            protocol=str_field(data, "protocol", "connected"),
            version=str_field(data, "version", "connected"),
        )
    if event == "start":
        return _parse_start(data)
    if event == "stop":
        stop = data.get("stop", {})
        if not isinstance(stop, dict):
            raise CodecError("stop message field 'stop' must be an object")
        return Stop(
            stream_sid=str_field(data, "streamSid", "stop", default=""),
            account_sid=str_field(stop, "accountSid", "stop", default=""),
            call_sid=str_field(stop, "callSid", "stop", default=""),
            sequence_number=int_field(data, "sequenceNumber", "stop"),
        )
    if event == "dtmf":
        dtmf = obj_field(data, "dtmf", "dtmf")
        return Dtmf(
            stream_sid=str_field(data, "streamSid", "dtmf", default=""),
            digit=str_field(dtmf, "digit", "dtmf"),
            track=str_field(dtmf, "track", "dtmf", default="inbound_track"),
            sequence_number=int_field(data, "sequenceNumber", "dtmf"),
        )
    if event is None:
        raise CodecError("message has no 'event' field")
    raise CodecError(f"unknown event {preview(event)}")


def deserialize(text: str | bytes, *, max_payload_bytes: int | None = None) -> Message:
    """Parse one WebSocket text frame; raise CodecError if it is not a Media Streams message.

    With max_payload_bytes, a media payload is decoded only that far; the rest is counted in
    ``Media.dropped_bytes``."""
    return _parse(load_object(text), max_payload_bytes)
