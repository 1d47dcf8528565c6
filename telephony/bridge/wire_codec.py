"""WireCodec: what a bridge session needs from the codec of its agent's wire format, and
``wire_codec`` to pick one by a campaign's stream format."""

from __future__ import annotations

from typing import Protocol

from telephony.bridge.exotel_codec import ExotelCodec
from telephony.bridge.messages import Message
from telephony.bridge.twilio_codec import TwilioCodec


class WireCodec(Protocol):
    """One agent wire format: its JSON messages, and how ``Media.payload`` carries the session's
    16-bit PCM."""

    @property
    def name(self) -> str: ...

    @property
    def pcm_bytes_per_payload_byte(self) -> int: ...

    def serialize(self, msg: Message) -> str: ...

    def deserialize(self, text: str | bytes, *, max_payload_bytes: int | None = None) -> Message:
        """Raise CodecError if ``text`` is not a message of the wire; with max_payload_bytes, a
        media payload is decoded only that far and the rest counted in ``Media.dropped_bytes``."""
        ...

    def media_payload_from_pcm(self, pcm: bytes) -> bytes: ...

    def pcm_from_media_payload(self, payload: bytes) -> bytes: ...


# Codecs hold no state: one of each serves every call.
_CODECS: dict[str, WireCodec] = {codec.name: codec for codec in (TwilioCodec(), ExotelCodec())}


def wire_codec(name: str) -> WireCodec:
    """The codec for a stream format ("twilio" or "exotel"); ValueError for any other."""
    try:
        return _CODECS[name]
    except KeyError:
        raise ValueError(f"unknown stream format {name!r}") from None
