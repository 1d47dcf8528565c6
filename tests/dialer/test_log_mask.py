"""Phone numbers leave the process only as their last four digits, through the real log config."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.log_mask import MaskNumbers, mask_numbers
from telephony.engine.events import DialJob
from telephony.pool.wire import decode_job, encode_job
from tests.helpers.paths import REPO


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+919876543210", "+91******3210"),
        ("9876543210", "******3210"),
        ("919876543210", "91******3210"),
        ("+14155550123", "+1******0123"),
        ("INVITE sip:+919876543210@10.0.0.5:5060", "INVITE sip:+91******3210@10.0.0.5:5060"),
        ("<sip:+911400123456@127.0.0.1>", "<sip:+91******3456@127.0.0.1>"),
        ("tel:9876543210;ext=1", "tel:******3210;ext=1"),
        ("called 9876543210.", "called ******3210."),
        ("to +919876501230, +919876501231", "to +91******1230, +91******1231"),
        ('{"number": "+919876543210"}', '{"number": "+91******3210"}'),
    ],
)
def test_numbers_keep_only_their_last_four_digits(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03 17:16:44,783 INFO campaigns.tasks: tick",
        "engine listening on 127.0.0.1:5080, RTP 20000-59999",
        "attempt 42 (pid 123456, contact 98765, campaign 7)",
        "engine host:5080:4711:1764782000123456789",  # time_ns: 19 digits, not a phone number
        "Task campaigns.dispatch[1bf5db7a-35f1-4f2b-ac0c-123456789012] succeeded",
        "succeeded in 0.0057590700s",
        "registry v12: 10000000 rows in 15.8 s",  # 8 digits
        "hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "already masked +91******3210",
    ],
)
def test_timestamps_ports_ids_and_short_numbers_are_left_alone(text: str) -> None:
    assert mask_numbers(text) == text


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """The console handler dialer.settings.LOGGING configured, writing into a buffer."""
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert isinstance(handler, logging.StreamHandler)
    assert any(isinstance(f, MaskNumbers) for f in handler.filters)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def test_a_logged_line_has_the_number_masked_in_message_and_arguments(
    console: io.StringIO,
) -> None:
    log = logging.getLogger("campaigns.services.claim_check")
    log.warning("attempt %s: sip:+919876543210@carrier: busy", 4711)
    log.warning("attempt %s to %s via %s", 4712, "9876543210", "sip:+919876543211@10.0.0.5:5060")
    lines = console.getvalue().splitlines()
    assert lines[0].endswith("attempt 4711: sip:+91******3210@carrier: busy")
    assert lines[1].endswith("attempt 4712 to ******3210 via sip:+91******3211@10.0.0.5:5060")
    # The asctime prefix survives untouched: 'YYYY-MM-DD HH:MM:SS,mmm LEVEL name: '.
    assert lines[0].split(" WARNING ")[0].count(":") == 2


def test_a_traceback_has_the_number_masked(console: io.StringIO) -> None:
    log = logging.getLogger("telephony.pool.host")
    try:
        raise ValueError("bad number +919876543210")
    except ValueError:
        log.exception("engine: dial of %s failed", "+919876543210")
    text = console.getvalue()
    assert "9876543210" not in text
    assert "engine: dial of +91******3210 failed" in text
    assert "ValueError: bad number +91******3210" in text


def test_a_broken_log_call_is_left_to_the_handlers_error_report() -> None:
    # The filter runs before the handler's own try/except: raising here would reach the caller.
    record = logging.LogRecord("dialer", logging.WARNING, __file__, 1, "two %s %s", ("one",), None)
    assert MaskNumbers().filter(record) is True
    assert (record.msg, record.args) == ("two %s %s", ("one",))


_CELERY_LOGGING = """
import logging
from dialer.celery import app
app.log.setup(loglevel="INFO")  # what a worker and beat do: Celery's own root handlers
logging.getLogger("campaigns").warning("dial %s via %s", "+919876543210", "sip:+919876543211@t")
"""


@pytest.mark.slow
def test_celery_workers_and_beat_mask_numbers_too(tmp_path: Path) -> None:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="dialer.settings")
    env["DIALER_VAR_DIR"] = str(tmp_path / "var")
    run = subprocess.run(
        [sys.executable, "-c", _CELERY_LOGGING],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "dial +91******3210 via sip:+91******3211@t" in run.stderr
    assert "9876543210" not in run.stderr


# --- the trunk password ------------------------------------------------------------------------

TRUNK_PASSWORD = "s3cret-trunk-pa55word"


def _job() -> DialJob:
    return DialJob(
        attempt_id=4711,
        target_uri="sip:+919876543210@carrier.example:5060",
        cli="+911400123456",
        ring_timeout_s=30.0,
        max_call_s=600.0,
        auth_username="acme",
        auth_password=TRUNK_PASSWORD,
    )


def test_a_dial_job_never_shows_its_trunk_password(console: io.StringIO) -> None:
    job = _job()
    assert TRUNK_PASSWORD not in repr(job)
    assert TRUNK_PASSWORD not in str(job)
    logging.getLogger("telephony.engine.core").warning("dialing %r / %s", job, job)
    assert TRUNK_PASSWORD not in console.getvalue()
    assert "auth_username='acme'" in console.getvalue()
    # The pipe to the engine still carries it: the engine needs it to answer a 401.
    assert decode_job(encode_job(job, ["trunk:1"]))[0].auth_password == TRUNK_PASSWORD


@pytest.mark.parametrize(
    "line",
    [
        b'{"job": {"auth_password": "%s", "attempt": 1}, "scopes": []}' % TRUNK_PASSWORD.encode(),
        b'{"job": {"auth_username": "acme", "auth_password": "%s", "atte' % TRUNK_PASSWORD.encode(),
    ],
    ids=["unknown-field", "truncated"],
)
def test_a_corrupt_job_line_is_reported_without_the_password(
    console: io.StringIO, line: bytes
) -> None:
    with pytest.raises(ValueError) as info:
        decode_job(line)
    assert TRUNK_PASSWORD not in str(info.value)
    try:
        decode_job(line)
    except ValueError:
        # What the engine host logs for a bad line from its supervisor.
        logging.getLogger("telephony.pool.host").exception("engine: ignoring a bad job line")
    assert "ignoring a bad job line" in console.getvalue()
    assert TRUNK_PASSWORD not in console.getvalue()
