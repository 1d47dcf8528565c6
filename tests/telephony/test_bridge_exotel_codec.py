from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from telephony.bridge.exotel_codec import PCM16_MEDIA_FORMAT, ExotelCodec
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

codec = ExotelCodec()

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
ACCOUNT = "AC123ea4a9ca0a22aba9e79a5f1b4b1d4c"
CALL = "CA2f0a5e02e47a5fe1b97d33c9d6f2c9ab"
# 160 samples = 20 ms at 8 kHz = 320 bytes, the frame size Exotel wants multiples of. The ramp runs
# through negative values so that byte order and sign both show up in a broken encoding.
PCM = struct.pack("<160h", *range(-8000, 8000, 100))
PCM_B64 = base64.b64encode(PCM).decode()

# Messages as Exotel's WebSocket protocol page documents them (string numbers, snake_case keys),
# each exactly what serialize() produces for the message it decodes to.
EXOTEL_WIRE: dict[str, dict[str, Any]] = {
    "connected": {"event": "connected"},
    "start": {
        "event": "start",
        "sequence_number": "1",
        "stream_sid": SID,
        "start": {
            "stream_sid": SID,
            "call_sid": CALL,
            "account_sid": ACCOUNT,
            "custom_parameters": {"campaign_id": "42", "attempt": "7"},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
        },
    },
    "media": {
        "event": "media",
        "sequence_number": "3",
        "stream_sid": SID,
        "media": {"chunk": "2", "timestamp": "200", "payload": PCM_B64},
    },
    "dtmf": {
        "event": "dtmf",
        "sequence_number": "7",
        "stream_sid": SID,
        "dtmf": {"digit": "5"},
    },
    "mark": {
        "event": "mark",
        "sequence_number": "15",
        "stream_sid": SID,
        "mark": {"name": "my label"},
    },
    "stop": {
        "event": "stop",
        "sequence_number": "20",
        "stream_sid": SID,
        "stop": {"call_sid": CALL, "account_sid": ACCOUNT, "reason": "callended"},
    },
}

# What a bidirectional (Voicebot) agent sends back: no sequence numbers.
AGENT_WIRE: dict[str, dict[str, Any]] = {
    "agent-media": {"event": "media", "stream_sid": SID, "media": {"payload": PCM_B64}},
    "agent-mark": {"event": "mark", "stream_sid": SID, "mark": {"name": "greeting-end"}},
    "agent-clear": {"event": "clear", "stream_sid": SID},
}

ALL_WIRE = {**EXOTEL_WIRE, **AGENT_WIRE}

# The dataclass each wire message decodes to.
DECODED: dict[str, Message] = {
    "connected": Connected(),
    "start": Start(
        stream_sid=SID,
        account_sid=ACCOUNT,
        call_sid=CALL,
        custom_parameters={"campaign_id": "42", "attempt": "7"},
        media_format={"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
        sequence_number=1,
    ),
    "media": Media(stream_sid=SID, payload=PCM, chunk=2, timestamp=200, sequence_number=3),
    "dtmf": Dtmf(stream_sid=SID, digit="5", sequence_number=7),
    "mark": Mark(stream_sid=SID, name="my label", sequence_number=15),
    "stop": Stop(stream_sid=SID, account_sid=ACCOUNT, call_sid=CALL, sequence_number=20),
    "agent-media": Media(stream_sid=SID, payload=PCM),
    "agent-mark": Mark(stream_sid=SID, name="greeting-end"),
    "agent-clear": Clear(stream_sid=SID),
}


def test_every_wire_example_has_a_decoded_counterpart() -> None:
    assert set(DECODED) == set(ALL_WIRE)


@pytest.mark.parametrize("name", sorted(ALL_WIRE))
def test_deserialize_exotel_json_gives_the_expected_message(name: str) -> None:
    assert codec.deserialize(json.dumps(ALL_WIRE[name])) == DECODED[name]


@pytest.mark.parametrize("name", sorted(ALL_WIRE))
def test_serialize_gives_exotel_json(name: str) -> None:
    assert json.loads(codec.serialize(DECODED[name])) == ALL_WIRE[name]


@pytest.mark.parametrize("name", sorted(ALL_WIRE))
def test_wire_message_round_trips_to_identical_compact_json_in_exotel_key_order(name: str) -> None:
    wire = json.dumps(ALL_WIRE[name], separators=(",", ":"))

    assert codec.serialize(codec.deserialize(wire)) == wire


@pytest.mark.parametrize("name", sorted(DECODED))
def test_message_round_trips_through_the_wire(name: str) -> None:
    assert codec.deserialize(codec.serialize(DECODED[name])) == DECODED[name]


def test_start_built_with_defaults_announces_pcm16_not_twilio_mulaw() -> None:
    # This is how the bridge session builds its start message.
    msg = Start(
        stream_sid=SID,
        account_sid=ACCOUNT,
        call_sid=CALL,
        custom_parameters={"attempt": "7"},
        sequence_number=1,
    )

    assert json.loads(codec.serialize(msg)) == {
        "event": "start",
        "sequence_number": "1",
        "stream_sid": SID,
        "start": {
            "stream_sid": SID,
            "call_sid": CALL,
            "account_sid": ACCOUNT,
            "custom_parameters": {"attempt": "7"},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
        },
    }


def test_start_with_another_media_format_keeps_it() -> None:
    wide = {"encoding": "audio/x-raw", "sample_rate": "16000", "bit_rate": "16"}
    msg = Start(stream_sid=SID, account_sid=ACCOUNT, call_sid=CALL, media_format=wide)

    assert json.loads(codec.serialize(msg))["start"]["media_format"] == wide


def test_start_without_optional_fields_decodes_with_pcm16_format() -> None:
    wire = {
        "event": "start",
        "start": {"stream_sid": SID, "call_sid": CALL, "account_sid": ACCOUNT},
    }

    assert codec.deserialize(json.dumps(wire)) == Start(
        stream_sid=SID,
        account_sid=ACCOUNT,
        call_sid=CALL,
        media_format=dict(PCM16_MEDIA_FORMAT),
        sequence_number=None,
    )


def test_documented_start_fields_we_cannot_carry_are_ignored() -> None:
    wire = json.loads(json.dumps(EXOTEL_WIRE["start"]))
    wire["start"]["from"] = "+919876543210"
    wire["start"]["to"] = "+918047491899"

    assert codec.deserialize(json.dumps(wire)) == DECODED["start"]


def test_connected_drops_twilio_protocol_and_version() -> None:
    msg = Connected(protocol="Call", version="1.0.0")

    assert json.loads(codec.serialize(msg)) == {"event": "connected"}


def test_media_numbers_are_sent_as_strings_and_track_is_left_out() -> None:
    # The session tags what it sends as the inbound track; Exotel's single-track stream has none.
    msg = Media(
        stream_sid=SID,
        payload=b"\x00\xff\x7f\x80",
        track="inbound",
        chunk=12,
        timestamp=240,
        sequence_number=14,
    )

    assert json.loads(codec.serialize(msg)) == {
        "event": "media",
        "sequence_number": "14",
        "stream_sid": SID,
        "media": {"chunk": "12", "timestamp": "240", "payload": "AP9/gA=="},
    }


def test_incoming_media_track_is_kept() -> None:
    wire = {"event": "media", "stream_sid": SID, "media": {"track": "outbound", "payload": ""}}

    assert codec.deserialize(json.dumps(wire)) == Media(
        stream_sid=SID, payload=b"", track="outbound"
    )


def test_pcm_payload_round_trips_through_base64() -> None:
    payload = codec.media_payload_from_pcm(PCM)
    msg = Media(stream_sid=SID, payload=payload)

    data = json.loads(codec.serialize(msg))
    back = codec.deserialize(codec.serialize(msg))

    assert len(PCM) == 320
    assert base64.b64decode(data["media"]["payload"]) == PCM
    assert isinstance(back, Media)
    assert codec.pcm_from_media_payload(back.payload) == PCM


def test_pcm_helpers_are_identity_one_payload_byte_per_pcm_byte() -> None:
    assert codec.media_payload_from_pcm(PCM) == PCM
    assert codec.pcm_from_media_payload(PCM) == PCM
    assert codec.pcm_bytes_per_payload_byte == 1


def test_payload_is_little_endian_pcm16() -> None:
    wire = {"event": "media", "media": {"payload": base64.b64encode(b"\x01\x00\xff\xff").decode()}}

    msg = codec.deserialize(json.dumps(wire))

    assert isinstance(msg, Media)
    assert struct.unpack("<2h", msg.payload) == (1, -1)


def test_dtmf_duration_is_accepted_and_dropped() -> None:
    wire = {
        "event": "dtmf",
        "sequence_number": "7",
        "stream_sid": SID,
        "dtmf": {"digit": "5", "duration": "100"},
    }

    assert codec.deserialize(json.dumps(wire)) == DECODED["dtmf"]


def test_stop_reason_stopped_is_accepted_and_sent_back_as_callended() -> None:
    wire = json.loads(json.dumps(EXOTEL_WIRE["stop"]))
    wire["stop"]["reason"] = "stopped"

    msg = codec.deserialize(json.dumps(wire))

    assert msg == DECODED["stop"]
    assert json.loads(codec.serialize(msg))["stop"]["reason"] == "callended"


def test_bare_stop_from_an_agent_is_accepted() -> None:
    assert codec.deserialize('{"event": "stop"}') == Stop(
        stream_sid="", account_sid="", call_sid=""
    )


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (
            {
                "event": "media",
                "sequence_number": 3,
                "media": {"chunk": 2, "timestamp": 200, "payload": ""},
            },
            Media(stream_sid="", payload=b"", chunk=2, timestamp=200, sequence_number=3),
        ),
        (
            {"event": "mark", "sequence_number": 15, "stream_sid": SID, "mark": {"name": "x"}},
            Mark(stream_sid=SID, name="x", sequence_number=15),
        ),
        (
            {
                "event": "stop",
                "sequence_number": 20,
                "stream_sid": SID,
                "stop": {"call_sid": CALL, "account_sid": ACCOUNT, "reason": "callended"},
            },
            Stop(stream_sid=SID, account_sid=ACCOUNT, call_sid=CALL, sequence_number=20),
        ),
        (
            {"event": "dtmf", "sequence_number": 7, "dtmf": {"digit": "#", "duration": 100}},
            Dtmf(stream_sid="", digit="#", sequence_number=7),
        ),
    ],
)
def test_integer_numbers_are_accepted(wire: dict[str, Any], expected: Message) -> None:
    assert codec.deserialize(json.dumps(wire)) == expected


def test_integer_numbers_are_reserialized_as_strings() -> None:
    wire = {"event": "mark", "sequence_number": 9, "stream_sid": SID, "mark": {"name": "x"}}

    data = json.loads(codec.serialize(codec.deserialize(json.dumps(wire))))

    assert data["sequence_number"] == "9"


def test_agent_media_without_stream_sid_is_accepted_and_left_out_again() -> None:
    msg = codec.deserialize('{"event":"media","media":{"payload":"AP9/gA=="}}')

    assert msg == Media(stream_sid="", payload=b"\x00\xff\x7f\x80")
    assert codec.serialize(msg) == '{"event":"media","media":{"payload":"AP9/gA=="}}'


def test_bytes_input_is_accepted() -> None:
    wire = json.dumps(AGENT_WIRE["agent-clear"]).encode()

    assert codec.deserialize(wire) == Clear(SID)


def test_serializing_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a stream message"):
        codec.serialize("media")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("not json", "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('"media"', "expected a JSON object"),
        ("{}", "no 'event' field"),
        ('{"event": "bogus"}', "unknown event 'bogus'"),
        ('{"event": 5}', "unknown event 5"),
        ('{"event": "media", "stream_sid": "MZ1"}', "needs a 'media' object"),
        ('{"event": "media", "media": "AP9/"}', "needs a 'media' object"),
        ('{"event": "media", "media": {}}', "missing 'payload'"),
        ('{"event": "media", "media": {"payload": 12}}', "'payload' must be a string"),
        ('{"event": "media", "media": {"payload": null}}', "'payload' must be a string"),
        ('{"event": "media", "media": {"payload": "@@not base64@@"}}', "not valid base64"),
        ('{"event": "media", "media": {"payload": "AP9"}}', "not valid base64"),
        ('{"event": "media", "media": {"payload": "AP\\u00e9/"}}', "not valid base64"),
        ('{"event": "media", "media": {"payload": "AP9/"}}', "not whole 16-bit PCM samples"),
        ('{"event": "media", "media": {"payload": "", "track": 1}}', "'track' must be a string"),
        (
            '{"event": "media", "sequence_number": "x1", "media": {"payload": ""}}',
            "'sequence_number' must be a decimal number",
        ),
        (
            '{"event": "media", "sequence_number": "-1", "media": {"payload": ""}}',
            "'sequence_number' must be a decimal number",
        ),
        (
            '{"event": "media", "sequence_number": "\\u00b2", "media": {"payload": ""}}',
            "'sequence_number' must be a decimal number",
        ),
        ('{"event": "media", "media": {"payload": "", "chunk": true}}', "'chunk' must be"),
        ('{"event": "media", "media": {"payload": "", "timestamp": 1.5}}', "'timestamp' must be"),
        ('{"event": "mark", "stream_sid": "MZ1", "mark": {}}', "missing 'name'"),
        ('{"event": "mark", "stream_sid": "MZ1"}', "needs a 'mark' object"),
        ('{"event": "mark", "mark": {"name": 3}}', "'name' must be a string"),
        ('{"event": "clear", "stream_sid": 5}', "'stream_sid' must be a string"),
        ('{"event": "start", "sequence_number": "1"}', "needs a 'start' object"),
        # Twilio's camelCase start is not Exotel's wire format.
        (
            '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1",'
            ' "accountSid": "AC1"}}',
            "missing 'stream_sid'",
        ),
        (
            '{"event": "start", "start": {"stream_sid": "MZ1", "call_sid": "CA1"}}',
            "missing 'account_sid'",
        ),
        (
            '{"event": "start", "start": {"stream_sid": "MZ1", "account_sid": "AC1"}}',
            "missing 'call_sid'",
        ),
        (
            '{"event": "start", "start": {"stream_sid": "MZ1", "account_sid": "AC1",'
            ' "call_sid": "CA1", "custom_parameters": {"n": 1}}}',
            "'custom_parameters' must map strings to strings",
        ),
        (
            '{"event": "start", "start": {"stream_sid": "MZ1", "account_sid": "AC1",'
            ' "call_sid": "CA1", "media_format": "pcm"}}',
            "'media_format' must be an object",
        ),
        ('{"event": "stop", "stop": "callended"}', "'stop' must be an object"),
        ('{"event": "stop", "stop": {"reason": 1}}', "'reason' must be a string"),
        ('{"event": "stop", "stop": {"call_sid": 1}}', "'call_sid' must be a string"),
        ('{"event": "dtmf", "dtmf": {"duration": "100"}}', "missing 'digit'"),
        ('{"event": "dtmf", "dtmf": {"digit": 5}}', "'digit' must be a string"),
        ('{"event": "dtmf", "dtmf": {"digit": "5", "duration": "long"}}', "'duration' must be"),
        ('{"event": "dtmf"}', "needs a 'dtmf' object"),
    ],
)
def test_malformed_input_raises_codec_error_saying_what_is_wrong(
    wire: str | bytes, error: str
) -> None:
    with pytest.raises(CodecError, match=error):
        codec.deserialize(wire)


def test_non_text_input_raises_codec_error() -> None:
    with pytest.raises(CodecError, match="expected str or bytes"):
        codec.deserialize(None)  # type: ignore[arg-type]
