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
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from telephony.bridge.audio import pcm16_to_ulaw, ulaw_to_pcm16

MULAW_MEDIA_FORMAT: dict[str, Any] = {
    "encoding": "audio/x-mulaw",
    "sampleRate": 8000,
    "channels": 1,
}


class CodecError(ValueError):
    """A WebSocket text frame that is not a valid Media Streams message."""


# The session speaks 16-bit PCM; each wire codec says how its media payload carries it.
AUDIO = "mulaw"
media_payload_from_pcm = pcm16_to_ulaw
pcm_from_media_payload = ulaw_to_pcm16


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


def _put_seq(out: dict[str, Any], sequence_number: int | None) -> None:
    if sequence_number is not None:
        out["sequenceNumber"] = str(sequence_number)


def _put_sid(out: dict[str, Any], stream_sid: str) -> None:
    # Agents sometimes omit streamSid; keep the round trip exact by omitting it again.
    if stream_sid:
        out["streamSid"] = stream_sid


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
        _put_sid(out, msg.stream_sid)
        out["media"] = media
    else:
        _put_seq(out, msg.sequence_number)
        out["media"] = media
        _put_sid(out, msg.stream_sid)
    return out


def _to_dict(msg: Message) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(msg, Media):
        return _media_to_dict(msg)
    if isinstance(msg, Connected):
        return {"event": "connected", "protocol": msg.protocol, "version": msg.version}
    if isinstance(msg, Start):
        out = {"event": "start"}
        _put_seq(out, msg.sequence_number)
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
        _put_seq(out, msg.sequence_number)
        _put_sid(out, msg.stream_sid)
        out["mark"] = {"name": msg.name}
        return out
    if isinstance(msg, Clear):
        out = {"event": "clear"}
        _put_sid(out, msg.stream_sid)
        return out
    if isinstance(msg, Stop):
        out = {"event": "stop"}
        _put_seq(out, msg.sequence_number)
        out["stop"] = {"accountSid": msg.account_sid, "callSid": msg.call_sid}
        _put_sid(out, msg.stream_sid)
        return out
    if isinstance(msg, Dtmf):
        out = {"event": "dtmf"}
        _put_sid(out, msg.stream_sid)
        _put_seq(out, msg.sequence_number)
        out["dtmf"] = {"track": msg.track, "digit": msg.digit}
        return out
    raise TypeError(f"not a Media Streams message: {type(msg).__name__}")


def serialize(msg: Message) -> str:
    """Return the compact JSON text Twilio would put on the wire for ``msg``."""
    return json.dumps(_to_dict(msg), separators=(",", ":"))


# --- deserialize -------------------------------------------------------------------------------


def _obj(parent: dict[str, Any], key: str, event: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise CodecError(f"{event} message needs a {key!r} object")
    return value


def _str(parent: dict[str, Any], key: str, event: str, *, default: str | None = None) -> str:
    value = parent.get(key, default)
    if not isinstance(value, str):
        if key not in parent and default is None:
            raise CodecError(f"{event} message is missing {key!r}")
        raise CodecError(f"{event} message field {key!r} must be a string")
    return value


def _int(parent: dict[str, Any], key: str, event: str) -> int | None:
    value = parent.get(key)
    if value is None:
        return None
    # bool is an int subclass; "true" is never a sequence number.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():  # not "²"
        return int(value)
    raise CodecError(f"{event} message field {key!r} must be a decimal number, got {value!r}")


def _payload(media: dict[str, Any]) -> bytes:
    text = _str(media, "payload", "media")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"media payload is not valid base64: {exc}") from exc


def _parse_media(data: dict[str, Any]) -> Media:
    media = _obj(data, "media", "media")
    track = media.get("track")
    if track is not None and not isinstance(track, str):
        raise CodecError("media message field 'track' must be a string")
    return Media(
        stream_sid=_str(data, "streamSid", "media", default=""),
        payload=_payload(media),
        track=track,
        chunk=_int(media, "chunk", "media"),
        timestamp=_int(media, "timestamp", "media"),
        sequence_number=_int(data, "sequenceNumber", "media"),
    )


def _parse_start(data: dict[str, Any]) -> Start:
    start = _obj(data, "start", "start")
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
        stream_sid=_str(start, "streamSid", "start"),
        account_sid=_str(start, "accountSid", "start"),
        call_sid=_str(start, "callSid", "start"),
        tracks=list(tracks),
        custom_parameters=dict(params),
        media_format=dict(media_format),
        sequence_number=_int(data, "sequenceNumber", "start"),
    )


def _parse(data: dict[str, Any]) -> Message:
    event = data.get("event")
    if event == "media":
        return _parse_media(data)
    if event == "mark":
        return Mark(
            stream_sid=_str(data, "streamSid", "mark", default=""),
            name=_str(_obj(data, "mark", "mark"), "name", "mark"),
            sequence_number=_int(data, "sequenceNumber", "mark"),
        )
    if event == "clear":
        return Clear(stream_sid=_str(data, "streamSid", "clear", default=""))
    if event == "connected":
        return Connected(
            protocol=_str(data, "protocol", "connected"),
            version=_str(data, "version", "connected"),
        )
    if event == "start":
        return _parse_start(data)
    if event == "stop":
        stop = data.get("stop", {})
        if not isinstance(stop, dict):
            raise CodecError("stop message field 'stop' must be an object")
        return Stop(
            stream_sid=_str(data, "streamSid", "stop", default=""),
            account_sid=_str(stop, "accountSid", "stop", default=""),
            call_sid=_str(stop, "callSid", "stop", default=""),
            sequence_number=_int(data, "sequenceNumber", "stop"),
        )
    if event == "dtmf":
        dtmf = _obj(data, "dtmf", "dtmf")
        return Dtmf(
            stream_sid=_str(data, "streamSid", "dtmf", default=""),
            digit=_str(dtmf, "digit", "dtmf"),
            track=_str(dtmf, "track", "dtmf", default="inbound_track"),
            sequence_number=_int(data, "sequenceNumber", "dtmf"),
        )
    if event is None:
        raise CodecError("message has no 'event' field")
    raise CodecError(f"unknown event {event!r}")


def deserialize(text: str | bytes) -> Message:
    """Parse one WebSocket text frame; raise CodecError if it is not a Media Streams message."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[..." nested past the parser's depth
        raise CodecError("JSON nested too deeply") from exc
    if not isinstance(data, dict):
        raise CodecError(f"expected a JSON object, got {type(data).__name__}")
    return _parse(data)
