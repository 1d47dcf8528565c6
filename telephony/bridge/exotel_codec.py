"""Exotel AgentStream (Voicebot applet) wire codec: JSON text <-> the messages in
telephony.bridge.messages, the ones the Twilio codec uses, so a session can swap codecs without
touching its own types; only the JSON keys, a few bodies and the audio inside ``Media.payload``
differ.

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

from typing import Any, Final

from telephony.bridge.messages import MULAW_MEDIA_FORMAT, CodecError, Connected, Dtmf, Start, Stop
from telephony.bridge.stream_codec import StreamCodec
from telephony.bridge.wire_json import int_field, str_field

# Exotel's documented ``start.media_format`` for the default 8 kHz stream; the values are strings
# on Exotel's wire, and ``bit_rate`` is really the sample width in bits.
PCM16_MEDIA_FORMAT: Final[dict[str, Any]] = {
    "encoding": "audio/x-raw",
    "sample_rate": "8000",
    "bit_rate": "16",
}

# Exotel documents "stopped" (applet ended) and "callended" (call hung up).
STOP_REASON: Final = "callended"


class ExotelCodec(StreamCodec):
    name = "exotel"
    seq_key = "sequence_number"
    sid_key = "stream_sid"
    account_key = "account_sid"
    call_key = "call_sid"
    params_key = "custom_parameters"
    format_key = "media_format"
    default_media_format = PCM16_MEDIA_FORMAT
    sends_media_track = False

    # Exotel carries PCM16 (8 kHz mono, little-endian), what the session speaks.
    pcm_bytes_per_payload_byte = 1

    @staticmethod
    def media_payload_from_pcm(pcm: bytes) -> bytes:
        return pcm

    @staticmethod
    def pcm_from_media_payload(payload: bytes) -> bytes:
        return payload

    def _connected(self, msg: Connected) -> dict[str, Any]:
        return {"event": "connected"}

    def _start(self, msg: Start) -> dict[str, Any]:
        # Start() built without a media_format carries Twilio's mu-law default, which would tell
        # an Exotel agent the wrong encoding for the PCM16 this codec sends.
        media_format = msg.media_format
        return {
            "stream_sid": msg.stream_sid,
            "call_sid": msg.call_sid,
            "account_sid": msg.account_sid,
            "custom_parameters": dict(msg.custom_parameters),
            "media_format": dict(
                PCM16_MEDIA_FORMAT if media_format == MULAW_MEDIA_FORMAT else media_format
            ),
        }

    def _stop(self, msg: Stop) -> dict[str, Any]:
        return {"call_sid": msg.call_sid, "account_sid": msg.account_sid, "reason": STOP_REASON}

    def _dtmf(self, msg: Dtmf) -> dict[str, Any]:
        return {"digit": msg.digit}

    def _payload(self, media: dict[str, Any], max_bytes: int | None) -> tuple[bytes, int]:
        if max_bytes is not None:
            max_bytes -= max_bytes % 2  # a cut never splits a sample
        pcm, dropped = super()._payload(media, max_bytes)
        # Half a sample would shift every later sample by one byte and turn the audio into noise.
        if (len(pcm) + dropped) % 2:
            raise CodecError(
                f"media payload is {len(pcm) + dropped} bytes, not whole 16-bit PCM samples"
            )
        return pcm, dropped

    def _parse_connected(self, data: dict[str, Any]) -> Connected:
        return Connected()

    def _parse_tracks(self, start: dict[str, Any]) -> list[str]:
        return ["inbound"]  # Exotel's start names no tracks: the stream is the callee's

    def _check_stop(self, stop: dict[str, Any]) -> None:
        str_field(stop, "reason", "stop", default="")

    def _parse_dtmf_track(self, dtmf: dict[str, Any]) -> str:
        int_field(dtmf, "duration", "dtmf")  # checked, and dropped: Dtmf has no duration
        return "inbound_track"
