"""Exotel AgentStream (Voicebot applet) wire codec: JSON text <-> the Twilio codec's dataclasses.

Pure functions, no I/O. The message classes and ``CodecError`` are the ones in
``telephony.bridge.twilio_codec``, so a session can swap codecs without touching its own types;
only the JSON shape and the audio inside ``Media.payload`` differ.

Shapes follow Exotel's documentation:

- https://developer.exotel.com/docs/agentstream/websocket-protocol (events, field names, nesting)
- https://developer.exotel.com/docs/agentstream/stream-voicebot-applet (audio: raw/slin, 16-bit,
  8 kHz, mono, little-endian PCM, base64 in ``media.payload``)
- https://support.exotel.com/support/solutions/articles/3000108630-working-with-the-stream-and-voicebot-applet

Keys are snake_case (``stream_sid``, ``sequence_number``, ``call_sid``, ``account_sid``,
``custom_parameters``, ``media_format``) and ``sequence_number``, ``chunk`` and ``timestamp`` are
strings in Exotel's examples; we send strings and accept strings or integers. ``Media.payload``
holds raw PCM16 here, where the Twilio codec holds mu-law.

Where Exotel's documentation is silent, or our shared dataclasses cannot carry a field, we chose:

- ``connected`` is just ``{"event": "connected"}``; ``Connected.protocol``/``version`` are not sent
  and a parsed ``connected`` gets the defaults.
- ``start`` has no ``tracks`` and we do not send ``from``/``to`` (``Start`` has no such fields).
  ``Start``'s default ``media_format`` is Twilio's mu-law one, which cannot describe this codec's
  payload, so it is replaced by ``PCM16_MEDIA_FORMAT`` on the way out; any other dict is sent as is.
- ``media`` carries no ``track`` in Exotel's single-track stream, so ``Media.track`` is not sent;
  an incoming ``media.track`` (the Beta "both tracks" option) is read into ``Media.track``.
- ``dtmf`` is sent as ``{"digit": ...}`` without ``duration`` (``Dtmf`` does not know it); an
  incoming ``duration`` is checked and dropped, and ``Dtmf.track`` keeps its default.
- ``stop`` is sent with ``reason: "callended"``: ``Stop`` has no reason and the dialer only stops a
  stream when its call ends. An incoming ``reason`` is checked and dropped.
- Messages an agent sends back (``media`` with only a payload, ``mark``, ``clear``) carry no
  ``sequence_number``; as in the Twilio codec such fields are ``None`` and left out, and an empty
  ``stream_sid`` is left out too.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

from telephony.bridge.twilio_codec import (
    MULAW_MEDIA_FORMAT,
    Clear,
    CodecError,
    Connected,
    Dtmf,
    Mark,
    Media,
    Message,
    Start,
    Stop,
)
from telephony.bridge.wire_json import (
    b64_prefix_field,
    int_field,
    load_object,
    obj_field,
    preview,
    put_if,
    str_field,
)

__all__ = [
    "AUDIO",
    "PCM16_MEDIA_FORMAT",
    "PCM_BYTES_PER_PAYLOAD_BYTE",
    "STOP_REASON",
    "Clear",
    "CodecError",
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "Message",
    "Start",
    "Stop",
    "deserialize",
    "media_payload_from_pcm",
    "pcm_from_media_payload",
    "serialize",
]

# What ``Media.payload`` holds for this codec, so a codec-agnostic session can tell.
AUDIO: Final = "pcm16"

# Exotel's documented ``start.media_format`` for the default 8 kHz stream; the values are strings
# on Exotel's wire, and ``bit_rate`` is really the sample width in bits.
PCM16_MEDIA_FORMAT: Final[dict[str, Any]] = {
    "encoding": "audio/x-raw",
    "sample_rate": "8000",
    "bit_rate": "16",
}

# Exotel documents "stopped" (applet ended) and "callended" (call hung up).
STOP_REASON: Final = "callended"


def media_payload_from_pcm(pcm: bytes) -> bytes:
    """PCM16 (8 kHz mono, little-endian) -> ``Media.payload``: identity, Exotel carries PCM16."""
    return pcm


PCM_BYTES_PER_PAYLOAD_BYTE: Final = 1


def pcm_from_media_payload(payload: bytes) -> bytes:
    """``Media.payload`` -> PCM16 (8 kHz mono, little-endian): identity, Exotel carries PCM16."""
    return payload


# --- serialize ---------------------------------------------------------------------------------


def _wire_media_format(media_format: dict[str, Any]) -> dict[str, Any]:
    # Start() built without a media_format carries Twilio's mu-law default, which would tell an
    # Exotel agent the wrong encoding for the PCM16 this codec sends.
    if media_format == MULAW_MEDIA_FORMAT:
        return dict(PCM16_MEDIA_FORMAT)
    return dict(media_format)


def _media_to_dict(msg: Media) -> dict[str, Any]:
    out: dict[str, Any] = {"event": "media"}
    put_if(out, "sequence_number", msg.sequence_number)
    put_if(out, "stream_sid", msg.stream_sid)
    media: dict[str, Any] = {}
    if msg.chunk is not None:
        media["chunk"] = str(msg.chunk)
    if msg.timestamp is not None:
        media["timestamp"] = str(msg.timestamp)
    media["payload"] = base64.b64encode(msg.payload).decode("ascii")
    out["media"] = media
    return out


def _to_dict(msg: Message) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(msg, Media):
        return _media_to_dict(msg)
    if isinstance(msg, Connected):
        return {"event": "connected"}
    if isinstance(msg, Start):
        out = {"event": "start"}
        put_if(out, "sequence_number", msg.sequence_number)
        out["stream_sid"] = msg.stream_sid
        out["start"] = {
            "stream_sid": msg.stream_sid,
            "call_sid": msg.call_sid,
            "account_sid": msg.account_sid,
            "custom_parameters": dict(msg.custom_parameters),
            "media_format": _wire_media_format(msg.media_format),
        }
        return out
    if isinstance(msg, Mark):
        out = {"event": "mark"}
        put_if(out, "sequence_number", msg.sequence_number)
        put_if(out, "stream_sid", msg.stream_sid)
        out["mark"] = {"name": msg.name}
        return out
    if isinstance(msg, Clear):
        out = {"event": "clear"}
        put_if(out, "stream_sid", msg.stream_sid)
        return out
    if isinstance(msg, Stop):
        out = {"event": "stop"}
        put_if(out, "sequence_number", msg.sequence_number)
        put_if(out, "stream_sid", msg.stream_sid)
        out["stop"] = {
            "call_sid": msg.call_sid,
            "account_sid": msg.account_sid,
            "reason": STOP_REASON,
        }
        return out
    if isinstance(msg, Dtmf):
        out = {"event": "dtmf"}
        put_if(out, "sequence_number", msg.sequence_number)
        put_if(out, "stream_sid", msg.stream_sid)
        out["dtmf"] = {"digit": msg.digit}
        return out
    raise TypeError(f"not a stream message: {type(msg).__name__}")


def serialize(msg: Message) -> str:
    """Return the compact JSON text Exotel's protocol puts on the wire for ``msg``."""
    return json.dumps(_to_dict(msg), separators=(",", ":"))


# --- deserialize -------------------------------------------------------------------------------


def _payload(media: dict[str, Any], max_bytes: int | None) -> tuple[bytes, int]:
    if max_bytes is not None:
        max_bytes -= max_bytes % 2  # a cut never splits a sample
    pcm, dropped = b64_prefix_field(media, "payload", "media", max_bytes=max_bytes)
    # Half a sample would shift every later sample by one byte and turn the audio into noise.
    if (len(pcm) + dropped) % 2:
        raise CodecError(
            f"media payload is {len(pcm) + dropped} bytes, not whole 16-bit PCM samples"
        )
    return pcm, dropped


def _parse_media(data: dict[str, Any], max_payload_bytes: int | None) -> Media:
    media = obj_field(data, "media", "media")
    track = media.get("track")
    if track is not None:  # absent and null alike mean no track
        track = str_field(media, "track", "media")
    payload, dropped = _payload(media, max_payload_bytes)
    return Media(
        stream_sid=str_field(data, "stream_sid", "media", default=""),
        payload=payload,
        dropped_bytes=dropped,
        track=track,
        chunk=int_field(media, "chunk", "media"),
        timestamp=int_field(media, "timestamp", "media"),
        sequence_number=int_field(data, "sequence_number", "media"),
    )


def _parse_start(data: dict[str, Any]) -> Start:
    start = obj_field(data, "start", "start")
    params = start.get("custom_parameters", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise CodecError("start message field 'custom_parameters' must map strings to strings")
    media_format = start.get("media_format", PCM16_MEDIA_FORMAT)
    if not isinstance(media_format, dict):
        raise CodecError("start message field 'media_format' must be an object")
    return Start(
        stream_sid=str_field(start, "stream_sid", "start"),
        account_sid=str_field(start, "account_sid", "start"),
        call_sid=str_field(start, "call_sid", "start"),
        custom_parameters=dict(params),
        media_format=dict(media_format),
        sequence_number=int_field(data, "sequence_number", "start"),
    )


def _parse_stop(data: dict[str, Any]) -> Stop:
    # An agent ending the stream may send a bare {"event": "stop"}; only a non-object is wrong.
    stop = data.get("stop", {})
    if not isinstance(stop, dict):
        raise CodecError("stop message field 'stop' must be an object")
    str_field(stop, "reason", "stop", default="")
    return Stop(
        stream_sid=str_field(data, "stream_sid", "stop", default=""),
        account_sid=str_field(stop, "account_sid", "stop", default=""),
        call_sid=str_field(stop, "call_sid", "stop", default=""),
        sequence_number=int_field(data, "sequence_number", "stop"),
    )


def _parse_dtmf(data: dict[str, Any]) -> Dtmf:
    dtmf = obj_field(data, "dtmf", "dtmf")
    int_field(dtmf, "duration", "dtmf")
    return Dtmf(
        stream_sid=str_field(data, "stream_sid", "dtmf", default=""),
        digit=str_field(dtmf, "digit", "dtmf"),
        sequence_number=int_field(data, "sequence_number", "dtmf"),
    )


def _parse(data: dict[str, Any], max_payload_bytes: int | None) -> Message:
    event = data.get("event")
    if event == "media":
        return _parse_media(data, max_payload_bytes)
    if event == "mark":
        return Mark(
            stream_sid=str_field(data, "stream_sid", "mark", default=""),
            name=str_field(obj_field(data, "mark", "mark"), "name", "mark"),
            sequence_number=int_field(data, "sequence_number", "mark"),
        )
    if event == "clear":
        return Clear(stream_sid=str_field(data, "stream_sid", "clear", default=""))
    if event == "connected":
        return Connected()
    if event == "start":
        return _parse_start(data)
    if event == "stop":
        return _parse_stop(data)
    if event == "dtmf":
        return _parse_dtmf(data)
    if event is None:
        raise CodecError("message has no 'event' field")
    raise CodecError(f"unknown event {preview(event)}")


def deserialize(text: str | bytes, *, max_payload_bytes: int | None = None) -> Message:
    """Parse one WebSocket text frame; raise CodecError if it is not an Exotel stream message.

    With max_payload_bytes, a media payload is decoded only that far; the rest is counted in
    ``Media.dropped_bytes``."""
    return _parse(load_object(text), max_payload_bytes)
