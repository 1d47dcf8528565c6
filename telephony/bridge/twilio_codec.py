"""Twilio Media Streams wire codec: JSON text <-> the messages in telephony.bridge.messages.

Pure, no I/O. Field names, shapes and key order follow Twilio's "Media Streams - WebSocket
Messages" reference so that agents written for Twilio plug in unchanged. Twilio sends
``sequenceNumber``, ``chunk`` and ``timestamp`` as *strings*; we do the same on the way out and
accept strings or integers on the way in. ``Media.payload`` holds mu-law.
"""

from __future__ import annotations

from typing import Any

from telephony.bridge.audio import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.bridge.messages import MULAW_MEDIA_FORMAT, CodecError, Connected, Dtmf, Start, Stop
from telephony.bridge.stream_codec import StreamCodec
from telephony.bridge.wire_json import put_if, str_field


class TwilioCodec(StreamCodec):
    name = "twilio"
    seq_key = "sequenceNumber"
    sid_key = "streamSid"
    account_key = "accountSid"
    call_key = "callSid"
    params_key = "customParameters"
    format_key = "mediaFormat"
    default_media_format = MULAW_MEDIA_FORMAT
    sends_media_track = True

    media_payload_from_pcm = staticmethod(pcm16_to_ulaw)
    pcm_from_media_payload = staticmethod(ulaw_to_pcm16)
    pcm_bytes_per_payload_byte = 2  # one mu-law byte is one 16-bit sample

    def _message(
        self, event: str, seq: int | None, sid: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        # Twilio's reference puts streamSid after the body in the start, stop and media it sends
        # (not in an agent's media, which has no sequence number) and first in dtmf.
        if event == "dtmf":
            out: dict[str, Any] = {"event": event}
            put_if(out, self.sid_key, sid)
            put_if(out, self.seq_key, seq)
            out[event] = body
            return out
        if event in ("start", "stop") or (event == "media" and seq is not None):
            out = {"event": event}
            put_if(out, self.seq_key, seq)
            out[event] = body
            put_if(out, self.sid_key, sid)
            return out
        return super()._message(event, seq, sid, body)

    def _connected(self, msg: Connected) -> dict[str, Any]:
        return {"event": "connected", "protocol": msg.protocol, "version": msg.version}

    def _start(self, msg: Start) -> dict[str, Any]:
        return {
            "accountSid": msg.account_sid,
            "streamSid": msg.stream_sid,
            "callSid": msg.call_sid,
            "tracks": list(msg.tracks),
            "customParameters": dict(msg.custom_parameters),
            "mediaFormat": dict(msg.media_format),
        }

    def _stop(self, msg: Stop) -> dict[str, Any]:
        return {"accountSid": msg.account_sid, "callSid": msg.call_sid}

    def _dtmf(self, msg: Dtmf) -> dict[str, Any]:
        return {"track": msg.track, "digit": msg.digit}

    def _parse_connected(self, data: dict[str, Any]) -> Connected:
        return Connected(
            protocol=str_field(data, "protocol", "connected"),
            version=str_field(data, "version", "connected"),
        )

    def _parse_tracks(self, start: dict[str, Any]) -> list[str]:
        tracks = start.get("tracks", ["inbound"])
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise CodecError("start message field 'tracks' must be a list of strings")
        return list(tracks)

    def _check_stop(self, stop: dict[str, Any]) -> None:
        pass  # Stop carries all that Twilio's stop body holds

    def _parse_dtmf_track(self, dtmf: dict[str, Any]) -> str:
        return str_field(dtmf, "track", "dtmf", default="inbound_track")
