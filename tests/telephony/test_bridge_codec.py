from __future__ import annotations

import base64
import json

import pytest

from telephony.bridge.messages import Clear, CodecError, Mark, Media, Start
from telephony.bridge.twilio_codec import TwilioCodec

codec = TwilioCodec()

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
ACCOUNT = "AC123ea4a9ca0a22aba9e79a5f1b4b1d4c"
CALL = "CA2f0a5e02e47a5fe1b97d33c9d6f2c9ab"
ULAW = bytes(range(0x10, 0x10 + 160))
ULAW_B64 = base64.b64encode(ULAW).decode()

# Messages as Twilio's "Media Streams - WebSocket Messages" reference documents them, with the
# numbers as strings the way Twilio sends them.
TWILIO_WIRE = {
    "connected": {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    "start": {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound", "outbound"],
            "customParameters": {"FirstName": "Jane", "campaign_id": "42"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": SID,
    },
    "media": {
        "event": "media",
        "sequenceNumber": "3",
        "media": {"track": "outbound", "chunk": "1", "timestamp": "5", "payload": ULAW_B64},
        "streamSid": SID,
    },
    "mark": {
        "event": "mark",
        "sequenceNumber": "4",
        "streamSid": SID,
        "mark": {"name": "my label"},
    },
    "stop": {
        "event": "stop",
        "sequenceNumber": "5",
        "stop": {"accountSid": ACCOUNT, "callSid": CALL},
        "streamSid": SID,
    },
    "dtmf": {
        "event": "dtmf",
        "streamSid": SID,
        "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "1"},
    },
}

# What a bidirectional agent sends back.
AGENT_WIRE = {
    "agent-media": {"event": "media", "streamSid": SID, "media": {"payload": ULAW_B64}},
    "agent-mark": {"event": "mark", "streamSid": SID, "mark": {"name": "greeting-end"}},
    "agent-clear": {"event": "clear", "streamSid": SID},
}

ALL_WIRE = {**TWILIO_WIRE, **AGENT_WIRE}


@pytest.mark.parametrize("name", sorted(ALL_WIRE))
def test_wire_message_round_trips_to_identical_json(name: str) -> None:
    wire = json.dumps(ALL_WIRE[name])

    text = codec.serialize(codec.deserialize(wire))

    assert json.loads(text) == ALL_WIRE[name]


@pytest.mark.parametrize("name", sorted(ALL_WIRE))
def test_serialized_keys_keep_twilio_order(name: str) -> None:
    wire = json.dumps(ALL_WIRE[name], separators=(",", ":"))

    assert codec.serialize(codec.deserialize(wire)) == wire


def test_start_serializes_to_twilio_shape_with_defaults() -> None:
    msg = Start(
        stream_sid=SID, account_sid=ACCOUNT, call_sid=CALL, custom_parameters={"attempt": "7"}
    )

    assert json.loads(codec.serialize(msg)) == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound"],
            "customParameters": {"attempt": "7"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": SID,
    }


def test_media_numbers_are_sent_as_strings_and_payload_as_base64() -> None:
    msg = Media(
        stream_sid=SID,
        payload=b"\x00\xff\x7f",
        track="inbound",
        chunk=12,
        timestamp=240,
        sequence_number=14,
    )

    data = json.loads(codec.serialize(msg))

    assert data["sequenceNumber"] == "14"
    assert data["media"] == {
        "track": "inbound",
        "chunk": "12",
        "timestamp": "240",
        "payload": "AP9/",
    }


def test_deserialized_twilio_media_has_int_numbers_and_raw_payload() -> None:
    msg = codec.deserialize(json.dumps(TWILIO_WIRE["media"]))

    assert msg == Media(
        stream_sid=SID, payload=ULAW, track="outbound", chunk=1, timestamp=5, sequence_number=3
    )


def test_integer_numbers_are_accepted_and_reserialized_as_strings() -> None:
    wire = {"event": "mark", "sequenceNumber": 9, "streamSid": SID, "mark": {"name": "x"}}

    msg = codec.deserialize(json.dumps(wire))

    assert msg == Mark(stream_sid=SID, name="x", sequence_number=9)
    assert json.loads(codec.serialize(msg))["sequenceNumber"] == "9"


def test_agent_messages_decode_without_sequence_numbers() -> None:
    assert codec.deserialize(json.dumps(AGENT_WIRE["agent-media"])) == Media(
        stream_sid=SID, payload=ULAW
    )
    assert codec.deserialize(json.dumps(AGENT_WIRE["agent-mark"])) == Mark(
        stream_sid=SID, name="greeting-end"
    )
    assert codec.deserialize(json.dumps(AGENT_WIRE["agent-clear"])) == Clear(stream_sid=SID)


def test_agent_media_without_stream_sid_is_accepted() -> None:
    msg = codec.deserialize('{"event":"media","media":{"payload":"AP9/"}}')

    assert msg == Media(stream_sid="", payload=b"\x00\xff\x7f")


def test_bytes_input_is_accepted() -> None:
    assert codec.deserialize(json.dumps(AGENT_WIRE["agent-clear"]).encode()) == Clear(SID)


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("{}", "no 'event' field"),
        ('{"event": "bogus"}', "unknown event 'bogus'"),
        ('{"event": "media", "streamSid": "MZ1"}', "needs a 'media' object"),
        ('{"event": "media", "media": {}}', "missing 'payload'"),
        ('{"event": "media", "media": {"payload": 12}}', "'payload' must be a string"),
        ('{"event": "media", "media": {"payload": "@@not base64@@"}}', "not valid base64"),
        ('{"event": "media", "media": {"payload": "AP9"}}', "not valid base64"),
        (
            '{"event": "media", "sequenceNumber": "x1", "media": {"payload": ""}}',
            "'sequenceNumber' must be a decimal number",
        ),
        ('{"event": "media", "media": {"payload": "", "chunk": true}}', "'chunk' must be"),
        ('{"event": "mark", "streamSid": "MZ1", "mark": {}}', "missing 'name'"),
        ('{"event": "mark", "streamSid": "MZ1"}', "needs a 'mark' object"),
        ('{"event": "clear", "streamSid": 5}', "'streamSid' must be a string"),
        ('{"event": "start", "sequenceNumber": "1"}', "needs a 'start' object"),
        (
            '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1"}}',
            "missing 'accountSid'",
        ),
        (
            '{"event": "start", "start": {"streamSid": "MZ1", "accountSid": "AC1",'
            ' "callSid": "CA1", "customParameters": {"n": 1}}}',
            "'customParameters' must map strings to strings",
        ),
        ('{"event": "dtmf", "dtmf": {"track": "inbound_track"}}', "missing 'digit'"),
        (
            '{"event": "media", "sequenceNumber": "\u00b2", "media": {"payload": ""}}',
            "'sequenceNumber' must be a decimal number",
        ),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_input_raises_codec_error_saying_what_is_wrong(
    wire: str | bytes, error: str
) -> None:
    with pytest.raises(CodecError, match=error):
        codec.deserialize(wire)


def test_codec_error_is_a_value_error() -> None:
    assert issubclass(CodecError, ValueError)
