"""What the two agent wires share: Exotel's AgentStream copies the shape of Twilio Media Streams.

Every message is a JSON object with an ``event``, a sequence number and a stream sid when set, and
one object named for the event (``media``, ``mark``, ...); numbers go out as strings and come in as
strings or integers. ``StreamCodec`` builds and parses that shape once; a wire's codec subclasses
it to name its keys (camelCase or snake_case) and to supply what the wires shape differently.
"""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from telephony.bridge.messages import (
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


class StreamCodec(ABC):
    # The wire's key for each field both wires carry.
    seq_key: ClassVar[str]
    sid_key: ClassVar[str]
    account_key: ClassVar[str]
    call_key: ClassVar[str]
    params_key: ClassVar[str]
    format_key: ClassVar[str]
    # What a start message without one says the media is.
    default_media_format: ClassVar[dict[str, Any]]
    sends_media_track: ClassVar[bool]

    # --- serialize -----------------------------------------------------------------------------

    def serialize(self, msg: Message) -> str:
        """Return the compact JSON text the wire carries for ``msg``."""
        return json.dumps(self._to_dict(msg), separators=(",", ":"))

    def _to_dict(self, msg: Message) -> dict[str, Any]:
        if isinstance(msg, Media):
            media: dict[str, Any] = {}
            if msg.track is not None and self.sends_media_track:
                media["track"] = msg.track
            if msg.chunk is not None:
                media["chunk"] = str(msg.chunk)
            if msg.timestamp is not None:
                media["timestamp"] = str(msg.timestamp)
            media["payload"] = base64.b64encode(msg.payload).decode("ascii")
            return self._message("media", msg.sequence_number, msg.stream_sid, media)
        if isinstance(msg, Connected):
            return self._connected(msg)
        if isinstance(msg, Start):
            return self._message("start", msg.sequence_number, msg.stream_sid, self._start(msg))
        if isinstance(msg, Mark):
            return self._message("mark", msg.sequence_number, msg.stream_sid, {"name": msg.name})
        if isinstance(msg, Clear):
            return self._message("clear", None, msg.stream_sid, None)
        if isinstance(msg, Stop):
            return self._message("stop", msg.sequence_number, msg.stream_sid, self._stop(msg))
        if isinstance(msg, Dtmf):
            return self._message("dtmf", msg.sequence_number, msg.stream_sid, self._dtmf(msg))
        raise TypeError(f"not a stream message: {type(msg).__name__}")

    def _message(
        self, event: str, seq: int | None, sid: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The event, its sequence number and stream sid when set, then its body."""
        out: dict[str, Any] = {"event": event}
        put_if(out, self.seq_key, seq)
        put_if(out, self.sid_key, sid)
        if body is not None:
            out[event] = body
        return out

    @abstractmethod
    def _connected(self, msg: Connected) -> dict[str, Any]: ...

    @abstractmethod
    def _start(self, msg: Start) -> dict[str, Any]:
        """The body of a start message."""

    @abstractmethod
    def _stop(self, msg: Stop) -> dict[str, Any]:
        """The body of a stop message."""

    @abstractmethod
    def _dtmf(self, msg: Dtmf) -> dict[str, Any]:
        """The body of a dtmf message."""

    # --- deserialize ---------------------------------------------------------------------------

    def deserialize(self, text: str | bytes, *, max_payload_bytes: int | None = None) -> Message:
        """Parse one WebSocket text frame; raise CodecError if it is not a message of the wire.

        With max_payload_bytes, a media payload is decoded only that far; the rest is counted in
        ``Media.dropped_bytes``."""
        data = load_object(text)
        event = data.get("event")
        if event == "media":
            return self._parse_media(data, max_payload_bytes)
        if event == "mark":
            return Mark(
                stream_sid=str_field(data, self.sid_key, "mark", default=""),
                name=str_field(obj_field(data, "mark", "mark"), "name", "mark"),
                sequence_number=int_field(data, self.seq_key, "mark"),
            )
        if event == "clear":
            return Clear(stream_sid=str_field(data, self.sid_key, "clear", default=""))
        if event == "connected":
            return self._parse_connected(data)
        if event == "start":
            return self._parse_start(data)
        if event == "stop":
            return self._parse_stop(data)
        if event == "dtmf":
            return self._parse_dtmf(data)
        if event is None:
            raise CodecError("message has no 'event' field")
        raise CodecError(f"unknown event {preview(event)}")

    def _parse_media(self, data: dict[str, Any], max_payload_bytes: int | None) -> Media:
        media = obj_field(data, "media", "media")
        track = media.get("track")
        if track is not None:  # absent and null alike mean no track
            track = str_field(media, "track", "media")
        payload, dropped = self._payload(media, max_payload_bytes)
        return Media(
            stream_sid=str_field(data, self.sid_key, "media", default=""),
            payload=payload,
            dropped_bytes=dropped,
            track=track,
            chunk=int_field(media, "chunk", "media"),
            timestamp=int_field(media, "timestamp", "media"),
            sequence_number=int_field(data, self.seq_key, "media"),
        )

    def _payload(self, media: dict[str, Any], max_bytes: int | None) -> tuple[bytes, int]:
        """The media payload, decoded up to max_bytes, and how many bytes follow."""
        return b64_prefix_field(media, "payload", "media", max_bytes=max_bytes)

    def _parse_start(self, data: dict[str, Any]) -> Start:
        start = obj_field(data, "start", "start")
        tracks = self._parse_tracks(start)
        params = start.get(self.params_key, {})
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise CodecError(f"start message field {self.params_key!r} must map strings to strings")
        media_format = start.get(self.format_key, self.default_media_format)
        if not isinstance(media_format, dict):
            raise CodecError(f"start message field {self.format_key!r} must be an object")
        return Start(
            stream_sid=str_field(start, self.sid_key, "start"),
            account_sid=str_field(start, self.account_key, "start"),
            call_sid=str_field(start, self.call_key, "start"),
            tracks=tracks,
            custom_parameters=dict(params),
            media_format=dict(media_format),
            sequence_number=int_field(data, self.seq_key, "start"),
        )

    def _parse_stop(self, data: dict[str, Any]) -> Stop:
        # An agent ending the stream may send a bare {"event": "stop"}; only a non-object is wrong.
        stop = data.get("stop", {})
        if not isinstance(stop, dict):
            raise CodecError("stop message field 'stop' must be an object")
        self._check_stop(stop)
        return Stop(
            stream_sid=str_field(data, self.sid_key, "stop", default=""),
            account_sid=str_field(stop, self.account_key, "stop", default=""),
            call_sid=str_field(stop, self.call_key, "stop", default=""),
            sequence_number=int_field(data, self.seq_key, "stop"),
        )

    def _parse_dtmf(self, data: dict[str, Any]) -> Dtmf:
        dtmf = obj_field(data, "dtmf", "dtmf")
        return Dtmf(
            stream_sid=str_field(data, self.sid_key, "dtmf", default=""),
            digit=str_field(dtmf, "digit", "dtmf"),
            track=self._parse_dtmf_track(dtmf),
            sequence_number=int_field(data, self.seq_key, "dtmf"),
        )

    @abstractmethod
    def _parse_connected(self, data: dict[str, Any]) -> Connected: ...

    @abstractmethod
    def _parse_tracks(self, start: dict[str, Any]) -> list[str]:
        """The tracks a start message's body says the stream carries."""

    @abstractmethod
    def _parse_dtmf_track(self, dtmf: dict[str, Any]) -> str:
        """The track a dtmf message's body says the digit came from."""

    @abstractmethod
    def _check_stop(self, stop: dict[str, Any]) -> None:
        """Check the fields of a stop message's body that ``Stop`` does not carry."""
