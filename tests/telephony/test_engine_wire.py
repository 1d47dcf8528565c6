"""The pool's pipe protocol: pure encode/decode, and line reading off a real pipe."""

from __future__ import annotations

import json
import os

import pytest

from telephony.engine.events import DialJob
from telephony.pool.wire import (
    LineReader,
    Status,
    decode_job,
    decode_status,
    encode_job,
    encode_status,
)

JOB = DialJob(
    attempt_id=42,
    target_uri="sip:+919876543210@127.0.0.1:5999",
    cli="+911600123456",
    ring_timeout_s=30.0,
    max_call_s=600.0,
    agent_url="ws://127.0.0.1:8765/agent",
    custom_parameters={"name": "Asha", "attemptId": "42"},
    auth_username="acme",
    auth_password="s3cret",
)


def test_a_job_survives_the_pipe_exactly() -> None:
    line = encode_job(JOB, ["trunk:1", "campaign:7"])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["job"]["custom_parameters"] == {"name": "Asha", "attemptId": "42"}
    assert decode_job(line) == (JOB, ["trunk:1", "campaign:7"])


@pytest.mark.parametrize(
    "line",
    [b"", b"not json", b"[]", b'{"job": {"attempt_id": 1}}', b'{"scopes": []}', b'{"job": 3}'],
)
def test_a_bad_job_line_is_a_value_error(line: bytes) -> None:
    with pytest.raises(ValueError, match="not a job line"):
        decode_job(line)


def test_status_lines_carry_only_what_changed() -> None:
    assert encode_status(Status(engine_id=9)) == b'{"engine_id": 9}\n'
    assert decode_status(encode_status(Status(free=3, jobs_read=5))) == Status(free=3, jobs_read=5)
    for bad in (b"[1]", b'{"free": "x"}', b'{"nope": 1}', b"{"):
        with pytest.raises(ValueError, match="not a status line"):
            decode_status(bad)


def test_line_reader_joins_partial_writes_and_sees_the_writer_go() -> None:
    r, w = os.pipe()
    reader = LineReader(r)
    try:
        assert reader.read_lines() == []  # nothing yet, and no blocking
        os.write(w, b'{"free": 4}\n{"fr')
        assert reader.read_lines() == [b'{"free": 4}']
        os.write(w, b'ee": 3}\n\n')
        assert reader.read_lines() == [b'{"free": 3}']
        assert not reader.closed
        os.close(w)
        assert reader.read_lines() == [] and reader.closed
    finally:
        os.close(r)
