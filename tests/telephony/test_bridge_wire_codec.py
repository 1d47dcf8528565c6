from __future__ import annotations

import dataclasses

import pytest

from telephony.bridge.exotel_codec import PCM16_MEDIA_FORMAT, ExotelCodec
from telephony.bridge.messages import Clear, Connected, Dtmf, Mark, Media, Message, Start, Stop
from telephony.bridge.twilio_codec import TwilioCodec
from telephony.bridge.wire_codec import WireCodec, wire_codec

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
ACCOUNT = "AC123ea4a9ca0a22aba9e79a5f1b4b1d4c"
CALL = "CA2f0a5e02e47a5fe1b97d33c9d6f2c9ab"
PCM = bytes(range(256)) + bytes(64)  # 320 bytes: 20 ms of 16-bit PCM

CODECS: dict[str, WireCodec] = {"twilio": TwilioCodec(), "exotel": ExotelCodec()}

# One of each message, as the dialer sends it (sequence numbers) and as an agent does (none).
# Exotel cannot carry Connected's protocol/version, Start's tracks or Dtmf's track, so these use
# the defaults; its start announces PCM16.
MESSAGES: dict[str, Message] = {
    "connected": Connected(),
    "start": Start(
        stream_sid=SID,
        account_sid=ACCOUNT,
        call_sid=CALL,
        custom_parameters={"attempt": "7"},
        media_format=dict(PCM16_MEDIA_FORMAT),
    ),
    "media": Media(
        stream_sid=SID, payload=PCM, track="inbound", chunk=3, timestamp=40, sequence_number=4
    ),
    "mark": Mark(stream_sid=SID, name="greeting-end", sequence_number=5),
    "clear": Clear(stream_sid=SID),
    "stop": Stop(stream_sid=SID, account_sid=ACCOUNT, call_sid=CALL, sequence_number=6),
    "dtmf": Dtmf(stream_sid=SID, digit="#", sequence_number=7),
    "agent-media": Media(stream_sid=SID, payload=PCM),
    "agent-mark": Mark(stream_sid=SID, name="greeting-end"),
}


@pytest.mark.parametrize("name", ["twilio", "exotel"])
def test_wire_codec_picks_the_codec_for_a_stream_format(name: str) -> None:
    codec = wire_codec(name)

    assert codec.name == name
    assert type(codec) is type(CODECS[name])


@pytest.mark.parametrize("name", ["nope", "", "Twilio", "sip"])
def test_wire_codec_refuses_any_other_stream_format(name: str) -> None:
    with pytest.raises(ValueError, match="unknown stream format"):
        wire_codec(name)


@pytest.mark.parametrize("wire", CODECS)
def test_codec_carries_pcm_with_the_payload_size_it_declares(wire: str) -> None:
    codec = CODECS[wire]

    payload = codec.media_payload_from_pcm(PCM)

    assert len(payload) * codec.pcm_bytes_per_payload_byte == len(PCM)
    assert len(codec.pcm_from_media_payload(payload)) == len(PCM)


@pytest.mark.parametrize("wire", CODECS)
@pytest.mark.parametrize("name", MESSAGES)
def test_every_message_round_trips_through_every_codec(wire: str, name: str) -> None:
    codec = CODECS[wire]
    msg = MESSAGES[name]
    if wire == "exotel" and isinstance(msg, Media):
        msg = dataclasses.replace(msg, track=None)  # Exotel's single-track stream sends none

    assert codec.deserialize(codec.serialize(msg)) == msg


@pytest.mark.parametrize("wire", CODECS)
def test_serializing_something_else_is_a_type_error(wire: str) -> None:
    with pytest.raises(TypeError, match="not a stream message"):
        CODECS[wire].serialize("media")  # type: ignore[arg-type]
