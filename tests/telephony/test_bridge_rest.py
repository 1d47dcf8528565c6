"""The agent-facing Twilio REST server, over real sockets on loopback.

The server runs on its own asyncio loop in a thread, as it will on the BridgeRunner's loop; the
test thread is the agent, speaking HTTP through http.client, urllib or a raw socket.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest

from telephony.bridge.rest import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    CallCredentials,
    RestServer,
    _client_ip,
    stream_credentials,
)
from tests.helpers.bridge import LoopThread, closed_by_server, connect_from
from tests.helpers.wait import wait_for

T = TypeVar("T")

SECRET = b"test-secret-0123456789abcdef"
LIVE = "CA00000000000000000000000000001234"
OTHER_LIVE = "CA00000000000000000000000000005678"
GONE = "CA00000000000000000000000000009999"
IDLE_TIMEOUT = 0.3
TIMEOUT = 5.0


def call_path(call_sid: str, account_sid: str | None = None, *, suffix: str = ".json") -> str:
    account = account_sid or stream_credentials(call_sid, secret=SECRET).account_sid
    return f"/2010-04-01/Accounts/{account}/Calls/{call_sid}{suffix}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def auth_for(call_sid: str) -> str:
    creds = stream_credentials(call_sid, secret=SECRET)
    return basic(creds.account_sid, creds.auth_token)


class Harness:
    """A RestServer on a loop in a daemon thread, with a fake set of live calls."""

    def __init__(self, **server_kwargs: Any) -> None:
        """server_kwargs go to RestServer (read_timeout, ...); none: the server's defaults."""
        self.live: set[str] = {LIVE, OTHER_LIVE}
        self.hangups: list[tuple[str, str]] = []
        self.lookup_error: Exception | None = None
        self.hangup_error: Exception | None = None
        self.loop_errors: list[dict[str, Any]] = []
        self._lt = LoopThread()
        self.loop = self._lt.loop
        # Anything reaching the loop's exception handler means the server let an error escape.
        self.loop.set_exception_handler(lambda _loop, ctx: self.loop_errors.append(ctx))
        self.server = RestServer(lookup=self._lookup, secret=SECRET, **server_kwargs)
        self.port = self.run(self.server.start("127.0.0.1", 0))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._lt.run(coro, TIMEOUT)

    def close(self) -> None:
        try:
            self.run(self.server.close())
        finally:
            self._lt.stop()

    def _lookup(self, call_sid: str) -> Callable[[str], None] | None:
        assert threading.current_thread() is self._lt.thread  # lookup runs on the loop
        if self.lookup_error is not None:
            raise self.lookup_error
        if call_sid not in self.live:
            return None

        def hang_up(reason: str) -> None:
            if self.hangup_error is not None:
                raise self.hangup_error
            self.hangups.append((call_sid, reason))

        return hang_up


def open_from(h: Harness, client_ip: str) -> int:
    """Connections from client_ip the server has accepted and not yet forgotten."""
    return h.server._per_client.get(client_ip, 0)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(read_timeout=IDLE_TIMEOUT)
    try:
        yield h
    finally:
        h.close()
    assert h.loop_errors == []


@pytest.fixture
def harness_factory() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**server_kwargs: Any) -> Harness:
        made.append(Harness(**server_kwargs))
        return made[-1]

    yield make
    for h in made:
        h.close()
    assert all(h.loop_errors == [] for h in made)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: dict[str, Any]


def request(
    port: int,
    method: str,
    path: str,
    *,
    auth: str | None = None,
    form: dict[str, str] | None = None,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        headers: dict[str, str] = {}
        body = None
        if auth is not None:
            headers["Authorization"] = auth
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, json.loads(resp.read()))
    finally:
        conn.close()


def hang_up(port: int, call_sid: str = LIVE, status: str = "completed") -> Reply:
    return request(
        port, "POST", call_path(call_sid), auth=auth_for(call_sid), form={"Status": status}
    )


def raw_exchange(port: int, data: bytes, *, shut_write: bool = False) -> bytes:
    """Send bytes, read until the server closes; b"" if it closed (or reset) without a word."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        return read_to_eof(sock)


def read_to_eof(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    assert match, raw[:200]
    return int(match.group(1))


def assert_twilio_error(reply: Reply, status: int, code: int) -> None:
    assert reply.status == status
    assert reply.body["status"] == status
    assert reply.body["code"] == code
    assert isinstance(reply.body["message"], str) and reply.body["message"]
    assert reply.body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


# --- credentials -------------------------------------------------------------------------------


def test_credentials_are_deterministic_per_call_and_shaped_like_twilio() -> None:
    first = stream_credentials(LIVE, secret=SECRET)
    assert first == stream_credentials(LIVE, secret=SECRET)
    assert re.fullmatch(r"AC[0-9a-f]{32}", first.account_sid)
    assert re.fullmatch(r"[0-9a-f]{32}", first.auth_token)

    other = stream_credentials(OTHER_LIVE, secret=SECRET)
    assert other.account_sid != first.account_sid
    assert other.auth_token != first.auth_token

    rekeyed = stream_credentials(LIVE, secret=SECRET + b"x")
    assert rekeyed.account_sid != first.account_sid
    assert rekeyed.auth_token != first.auth_token


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        stream_credentials(LIVE, secret=b"short")
    with pytest.raises(ValueError):
        RestServer(lookup=lambda _sid: None, secret=b"")


# --- the happy path ----------------------------------------------------------------------------


def test_status_completed_hangs_up_once_and_returns_the_call_resource(harness: Harness) -> None:
    creds = stream_credentials(LIVE, secret=SECRET)
    before = time.time()
    reply = hang_up(harness.port)

    assert reply.status == 200
    assert harness.hangups == [(LIVE, "agent_rest")]
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["Connection"] == "close"
    assert reply.body["sid"] == LIVE
    assert reply.body["account_sid"] == creds.account_sid
    assert reply.body["status"] == "completed"
    assert reply.body["api_version"] == "2010-04-01"
    assert reply.body["uri"] == call_path(LIVE)
    updated = parsedate_to_datetime(reply.body["date_updated"])  # RFC 2822
    assert updated.tzinfo is not None
    assert before - 2 <= updated.timestamp() <= time.time() + 2


def test_status_canceled_without_json_suffix_also_hangs_up(harness: Harness) -> None:
    reply = request(
        harness.port,
        "POST",
        call_path(LIVE, suffix=""),
        auth=auth_for(LIVE),
        form={"Status": "canceled", "StatusCallback": "ignored"},
    )
    assert reply.status == 200
    assert reply.body["status"] == "canceled"
    assert harness.hangups == [(LIVE, "agent_rest")]


def test_urllib_basic_auth_challenge_round_trip(harness: Harness) -> None:
    # urllib only sends credentials after a 401 with a matching realm, so this checks the
    # challenge header works the way HTTP clients expect, not just that it is present.
    creds = stream_credentials(LIVE, secret=SECRET)
    base = f"http://127.0.0.1:{harness.port}"
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, base, creds.account_sid, creds.auth_token)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
    req = urllib.request.Request(base + call_path(LIVE), data=b"Status=completed", method="POST")
    with opener.open(req, timeout=TIMEOUT) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["status"] == "completed"
    assert harness.hangups == [(LIVE, "agent_rest")]


def test_get_of_a_live_call_is_in_progress_and_does_not_hang_up(harness: Harness) -> None:
    reply = request(harness.port, "GET", call_path(LIVE), auth=auth_for(LIVE))
    assert reply.status == 200
    assert reply.body["status"] == "in-progress"
    assert reply.body["sid"] == LIVE
    assert harness.hangups == []


# --- refusals ----------------------------------------------------------------------------------


def test_wrong_token_is_401_with_twilio_challenge(harness: Harness) -> None:
    creds = stream_credentials(LIVE, secret=SECRET)
    reply = request(
        harness.port,
        "POST",
        call_path(LIVE),
        auth=basic(creds.account_sid, "0" * 32),
        form={"Status": "completed"},
    )
    assert_twilio_error(reply, 401, 20003)
    assert reply.body["message"] == "Authenticate"
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert harness.hangups == []


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Bearer abc",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode("AC\u00e9:\u00e9".encode()).decode(),
        "Basic \u00ff\u00fe",
    ],
    ids=["missing", "bearer", "bad-base64", "no-colon", "non-ascii-creds", "latin1-header"],
)
def test_missing_or_malformed_auth_is_401(harness: Harness, auth: str | None) -> None:
    if auth is not None and not auth.isascii():
        # http.client refuses to send non-latin-1 headers itself; go raw.
        raw = raw_exchange(
            harness.port,
            f"POST {call_path(LIVE)} HTTP/1.1\r\nHost: x\r\nAuthorization: ".encode()
            + auth.encode("latin-1")
            + b"\r\nContent-Length: 16\r\n\r\nStatus=completed",
        )
        assert status_of(raw) == 401
    else:
        reply = request(
            harness.port, "POST", call_path(LIVE), auth=auth, form={"Status": "completed"}
        )
        assert_twilio_error(reply, 401, 20003)
    assert harness.hangups == []


def test_account_sid_in_path_must_match_the_call(harness: Harness) -> None:
    wrong_account = stream_credentials(OTHER_LIVE, secret=SECRET).account_sid
    reply = request(
        harness.port,
        "POST",
        call_path(LIVE, account_sid=wrong_account),
        auth=auth_for(LIVE),
        form={"Status": "completed"},
    )
    assert_twilio_error(reply, 401, 20003)
    assert harness.hangups == []


def test_one_calls_credentials_cannot_hang_up_another_call(harness: Harness) -> None:
    other = stream_credentials(OTHER_LIVE, secret=SECRET)
    reply = request(
        harness.port,
        "POST",
        call_path(LIVE, account_sid=other.account_sid),
        auth=auth_for(OTHER_LIVE),
        form={"Status": "completed"},
    )
    assert_twilio_error(reply, 401, 20003)
    assert harness.hangups == []


def test_unknown_call_with_valid_auth_is_404(harness: Harness) -> None:
    reply = hang_up(harness.port, GONE)
    assert_twilio_error(reply, 404, 20404)
    assert GONE in reply.body["message"]
    assert harness.hangups == []


def test_unknown_call_without_valid_auth_is_401_not_404(harness: Harness) -> None:
    # Otherwise anyone could probe which calls are live.
    reply = request(harness.port, "POST", call_path(GONE), form={"Status": "completed"})
    assert_twilio_error(reply, 401, 20003)


def test_call_that_ended_is_404_on_a_second_hang_up(harness: Harness) -> None:
    assert hang_up(harness.port).status == 200
    harness.live.discard(LIVE)
    assert_twilio_error(hang_up(harness.port), 404, 20404)
    assert harness.hangups == [(LIVE, "agent_rest")]


@pytest.mark.parametrize(
    "form",
    [
        {"Status": "in-progress"},
        {"Status": "Completed"},
        {"Status": ""},
        {"Twiml": "<Response><Hangup/></Response>"},
        {},
    ],
    ids=["in-progress", "wrong-case", "empty", "twiml-only", "no-fields"],
)
def test_bad_or_missing_status_is_400(harness: Harness, form: dict[str, str]) -> None:
    reply = request(harness.port, "POST", call_path(LIVE), auth=auth_for(LIVE), form=form)
    assert_twilio_error(reply, 400, 21218)
    assert harness.hangups == []


def test_conflicting_status_values_are_400(harness: Harness) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", harness.port, timeout=TIMEOUT)
    conn.request(
        "POST",
        call_path(LIVE),
        body="Status=completed&Status=in-progress",
        headers={"Authorization": auth_for(LIVE)},
    )
    assert conn.getresponse().status == 400
    conn.close()
    assert harness.hangups == []


def test_non_utf8_form_body_is_400(harness: Harness) -> None:
    body = b"Status=completed&Note=\xff\xfe"
    raw = raw_exchange(
        harness.port,
        f"POST {call_path(LIVE)} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth_for(LIVE)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert status_of(raw) == 400
    assert harness.hangups == []


def test_other_methods_and_paths(harness: Harness) -> None:
    reply = request(harness.port, "DELETE", call_path(LIVE), auth=auth_for(LIVE))
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, POST"

    for path in ("/", "/2010-04-01/Accounts/AC1/Calls.json", "/2010-04-01/Accounts/AC1/x/y"):
        assert_twilio_error(request(harness.port, "POST", path, auth=auth_for(LIVE)), 404, 20404)
    assert harness.hangups == []


# --- errors inside the process -----------------------------------------------------------------


def test_failing_lookup_or_hangup_is_500_and_server_survives(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="telephony.bridge.rest")
    harness.lookup_error = RuntimeError("registry broke")
    assert hang_up(harness.port).status == 500
    harness.lookup_error = None
    harness.hangup_error = RuntimeError("session broke")
    assert hang_up(harness.port).status == 500
    harness.hangup_error = None
    assert hang_up(harness.port).status == 200
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2


# --- hostile and broken clients ----------------------------------------------------------------

_VALID_HEAD = f"POST {call_path(LIVE)} HTTP/1.1\r\nHost: x\r\n".encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\xff\xfe\x80 garbage \x9c\r\n\r\n", 400),
        (b"hello\r\n\r\n", 400),
        (b"GET /\xc3\x28 HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/9.9\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX-Folded: a\r\n  b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Name : 1\r\n\r\n", 400),
        (_VALID_HEAD + b"Content-Length: 12abc\r\n\r\n", 400),
        (_VALID_HEAD + b"Content-Length: \xc2\xb2\r\n\r\n", 400),
        (_VALID_HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        (_VALID_HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
        (_VALID_HEAD + b"X-Pad: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n", 431),
        (_VALID_HEAD + b"Content-Length: 99999999\r\n\r\n" + b"x" * 20000, 413),
        (_VALID_HEAD + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode(), 413),
    ],
    ids=[
        "binary",
        "no-request-line",
        "non-utf8-target",
        "bad-version",
        "header-no-colon",
        "obs-fold",
        "space-in-name",
        "bad-length",
        "unicode-digit-length",
        "conflicting-length",
        "chunked",
        "huge-header",
        "huge-body",
        "body-one-over",
    ],
)
def test_malformed_request_is_refused_and_next_request_works(
    harness: Harness, caplog: pytest.LogCaptureFixture, data: bytes, expected: int
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.bridge.rest")
    raw = raw_exchange(harness.port, data)
    # A whole, parseable error answer; not just a closed or reset socket.
    assert status_of(raw) == expected
    assert b"Connection: close" in raw
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["status"] == expected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]

    assert hang_up(harness.port).status == 200
    assert harness.hangups == [(LIVE, "agent_rest")]


def test_expect_100_continue(harness: Harness) -> None:
    body = b"Status=completed"
    with socket.create_connection(("127.0.0.1", harness.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            _VALID_HEAD
            + f"Authorization: {auth_for(LIVE)}\r\nExpect: 100-continue\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert status_of(read_to_eof(sock)) == 200
    assert harness.hangups == [(LIVE, "agent_rest")]


def test_silent_client_is_dropped_after_timeout_without_blocking_others(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.bridge.rest")
    with socket.create_connection(("127.0.0.1", harness.port), timeout=TIMEOUT) as idle:
        started = time.monotonic()
        # While the idle client sits there, a real request is served at once.
        assert hang_up(harness.port).status == 200
        assert time.monotonic() - started < IDLE_TIMEOUT
        raw = read_to_eof(idle)
        waited = time.monotonic() - started
    assert IDLE_TIMEOUT * 0.8 <= waited < IDLE_TIMEOUT + 2.0
    assert status_of(raw) == 408
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1

    assert hang_up(harness.port, OTHER_LIVE).status == 200
    assert harness.hangups == [(LIVE, "agent_rest"), (OTHER_LIVE, "agent_rest")]


def test_trickling_client_gets_one_deadline_for_the_whole_request(harness: Harness) -> None:
    # A byte every 50 ms never idles for the timeout; the deadline must still cut it off.
    request_bytes = _VALID_HEAD + b"X-Slow: " + b"a" * 200
    with socket.create_connection(("127.0.0.1", harness.port), timeout=TIMEOUT) as sock:
        started = time.monotonic()
        sock.settimeout(0.05)
        raw = b""
        for byte in request_bytes:
            try:
                sock.sendall(bytes([byte]))
                raw = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if raw:
                break
        elapsed = time.monotonic() - started
    assert status_of(raw) == 408
    assert elapsed < IDLE_TIMEOUT + 2.0


def test_half_open_client_mid_request_is_closed_without_answer(harness: Harness) -> None:
    raw = raw_exchange(
        harness.port, _VALID_HEAD + b"Content-Length: 50\r\n\r\nStat", shut_write=True
    )
    assert raw == b""
    raw = raw_exchange(harness.port, b"", shut_write=True)
    assert raw == b""
    assert hang_up(harness.port).status == 200


def test_close_drops_idle_connections_promptly() -> None:
    h = Harness(read_timeout=30.0)
    try:
        with socket.create_connection(("127.0.0.1", h.port), timeout=TIMEOUT) as idle:
            wait_for(lambda: open_from(h, "127.0.0.1") == 1, what="the server to accept it")
            started = time.monotonic()
            h.run(h.server.close())
            assert time.monotonic() - started < 2.0
            assert read_to_eof(idle) == b""
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", h.port), timeout=1.0).close()
    finally:
        h.close()
    assert h.loop_errors == []


def test_call_credentials_type_is_frozen() -> None:
    creds = CallCredentials(account_sid="AC" + "0" * 32, auth_token="0" * 32)
    with pytest.raises(AttributeError):
        creds.auth_token = "x"  # type: ignore[misc]


def test_urllib_without_credentials_surfaces_401(harness: Harness) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{harness.port}{call_path(LIVE)}", data=b"Status=completed"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=TIMEOUT)
    assert info.value.code == 401
    assert json.loads(info.value.read())["code"] == 20003


# --- connection limits -------------------------------------------------------------------------


def test_idle_connections_from_one_address_cannot_lock_out_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The server's own defaults (connection caps, timeouts), as the engines run it.
    caplog.set_level(logging.WARNING, logger="telephony.bridge.rest")
    h = Harness()
    idle: list[socket.socket] = []
    try:
        for _ in range(70):
            idle.append(connect_from("127.0.0.2", h.port))
        wait_for(
            lambda: (
                open_from(h, "127.0.0.2") == 8
                and sum(closed_by_server(sock, 0.0) for sock in idle) == 62
            ),
            what="the server to accept 8 and refuse the rest",
        )
        started = time.monotonic()
        assert hang_up(h.port).status == 200  # from 127.0.0.1
        assert time.monotonic() - started < 1.0
        assert h.hangups == [(LIVE, "agent_rest")]
        # 127.0.0.2 keeps its 8 (ENGINE_REST_MAX_CONN_PER_CLIENT's default); the rest were
        # closed at once, not left to wait for a timeout.
        kept = [sock for sock in idle if not closed_by_server(sock, 0.0)]
        assert len(kept) == 8
        # One warning for the flood, not one per refused connection.
        refusals = [r for r in caplog.records if "per client" in r.getMessage()]
        assert len(refusals) == 1
    finally:
        for sock in idle:
            sock.close()
        h.close()
    assert h.loop_errors == []


def test_per_client_cap_is_a_parameter_and_frees_up_as_connections_close(
    harness_factory: Callable[..., Harness],
) -> None:
    h = harness_factory(read_timeout=TIMEOUT, max_conn_per_client=2)
    first, second = connect_from("127.0.0.3", h.port), connect_from("127.0.0.3", h.port)
    with first, second:
        wait_for(lambda: open_from(h, "127.0.0.3") == 2, what="the server to accept both")
        with connect_from("127.0.0.3", h.port) as third:
            assert closed_by_server(third, 1.0)  # at once, not after the 5 s read timeout
        with connect_from("127.0.0.4", h.port) as elsewhere:
            assert not closed_by_server(elsewhere, 0.1)  # another address has its own count
        assert not closed_by_server(first, 0.0) and not closed_by_server(second, 0.0)
        first.close()
        wait_for(lambda: open_from(h, "127.0.0.3") == 1, what="the server to forget one")
        with connect_from("127.0.0.3", h.port) as again:
            again.sendall(
                f"GET {call_path(LIVE)} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {auth_for(LIVE)}\r\n\r\n".encode()
            )
            assert status_of(read_to_eof(again)) == 200


@pytest.mark.parametrize(
    ("peername", "client"),
    [
        (("192.0.2.7", 5555), "192.0.2.7"),
        (("::ffff:192.0.2.7", 5555, 0, 0), "192.0.2.7"),  # dual-stack socket, IPv4 client
        (("2001:db8:1:2:aaaa::1", 5555, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 5555, 0, 0), "2001:db8:1:2::/64"),  # same /64, same client
        (("fe80::1%eth0", 5555, 0, 2), "fe80::/64"),
        ("/run/rest.sock", "/run/rest.sock"),
    ],
)
def test_the_per_client_limit_counts_ipv4_addresses_and_ipv6_slash_64s(
    peername: object, client: str
) -> None:
    class Writer:
        def get_extra_info(self, name: str) -> object:
            assert name == "peername"
            return peername

    assert _client_ip(Writer()) == client  # type: ignore[arg-type]


@pytest.mark.slow
def test_idle_connection_is_closed_within_the_header_timeout() -> None:
    # Defaults again: a client that sends nothing is answered 408 and closed within 2 s, so
    # idle connections do not pile up for the whole-request deadline.
    h = Harness()
    try:
        with connect_from("127.0.0.1", h.port) as idle:
            started = time.monotonic()
            raw = read_to_eof(idle)
            waited = time.monotonic() - started
        assert status_of(raw) == 408
        assert waited < 3.0
    finally:
        h.close()
    assert h.loop_errors == []
