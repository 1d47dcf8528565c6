"""A Twilio-compatible REST endpoint so a streaming agent can hang up its own call.

Why this exists: voice agents written for Twilio Media Streams end a call out of band, through
Twilio's REST API, not through the media WebSocket. Pointed at this server instead of
api.twilio.com, such an agent works unchanged against the dialer. The server is meant to run on
the ``BridgeRunner``'s asyncio loop, next to the agent streams of the same process.

Twilio behaviour mirrored:

* Call resource update, ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` (the
  ``.json`` suffix is optional), form-encoded body, ``Status=completed`` or ``Status=canceled``
  ends the call; the answer is the call resource as JSON (``sid``, ``account_sid``, ``status``,
  ``uri``, ``api_version``, ``date_updated`` in RFC 2822 form).
* Call resource fetch, ``GET`` of the same URL, answers ``status: in-progress`` while live.
* HTTP basic auth with AccountSid:AuthToken; failures answer 401 with
  ``WWW-Authenticate: Basic realm="Twilio API"`` and error 20003 "Authenticate".
* Error bodies have Twilio's shape ``{"code", "message", "more_info", "status"}``; an unknown
  call is 404 / 20404, a bad ``Status`` is 400 / 21218.

Deliberate differences:

* Credentials are per call, not per account: ``stream_credentials`` derives an AccountSid and
  AuthToken from the CallSid with an HMAC under a secret of their own (the engines pass
  ``settings.ENGINE_REST_SECRET``, never Django's SECRET_KEY: tokens handed to agents must not
  be material derived from the key that signs sessions). Nothing is stored, and one agent's
  credentials cannot touch another call (CallSids here are predictable, the secret is not).
* ``canceled`` hangs the call up whatever its state (Twilio only cancels queued/ringing calls):
  by the time an agent has a stream, "cancel" can only mean "end it". Other update parameters
  (``Url``, ``Twiml``, ...) are not supported; without a valid ``Status`` the answer is 400.
* One request per connection: every answer carries ``Connection: close`` and the socket is
  closed after it. HTTP clients handle this transparently; it keeps the parser small and a
  connection's lifetime bounded by one read timeout.
* Plain HTTP, no chunked request bodies (501). Basic auth is cleartext, so bind to loopback (the
  engines' default, ENGINE_REST_HOST) or a private network, or terminate TLS in front.

Robustness: the server shares its loop with live audio streams, so no client can raise out of it
or hold it up. Each connection gets one deadline for its whole request and a shorter one for its
header block, header and body sizes are capped, protocol errors answer 4xx and close, and each
bad connection logs one WARNING.

Connection limits: at most ``max_connections`` (64) open at once, and at most
``max_conn_per_client`` (ENGINE_REST_MAX_CONN_PER_CLIENT, 8) from one client IP. A connection
over its address's limit is closed at once, before it is counted against the global cap, so a
slowloris from one address (70 idle sockets, say) cannot take the slots another address's agent
needs; and since an idle connection is answered 408 and closed after HEADER_TIMEOUT (2 s), the
slots it does hold come back quickly. Limits are per IP address as the socket sees it: behind a
proxy every agent shares the proxy's address (raise the limit there).

``lookup`` and the hang-up function run on the loop thread and must not block.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "API_VERSION",
    "HANGUP_REASON",
    "CallCredentials",
    "RestServer",
    "stream_credentials",
]

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
HANGUP_REASON = "agent_rest"

# A Twilio update request is a few hundred bytes; these caps only stop abuse.
MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_BYTES = 16 * 1024
# One deadline for the whole request (header and body), so a client trickling one byte at a time
# cannot hold a connection open longer than this.
READ_TIMEOUT = 5.0
# The header block of a real request is a few hundred bytes sent with the connection; a client
# that has not finished it within this is idle (or a slowloris), and its slot is wanted back.
HEADER_TIMEOUT = 2.0
# Connections beyond this are closed at once: each costs a task and buffers on the shared loop.
MAX_CONNECTIONS = 64
# An agent holds one connection per hang-up; more than this from one IP at once is abuse or a
# leak (the engines pass ENGINE_REST_MAX_CONN_PER_CLIENT).
MAX_CONN_PER_CLIENT = 8
# A short secret would make every derived token guessable offline from one leaked pair.
MIN_SECRET_BYTES = 16
# close() gives in-flight requests this long to finish before cancelling them.
_CLOSE_GRACE = 1.0
# After refusing a request whose input was not all read, swallow at most this much for at most
# this long before closing (see _linger).
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 64 * 1024

_CALL_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Calls/([^/]+?)(?:\.json)?")
_METHOD = re.compile(r"[A-Z]{1,16}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,10}")  # not str.isdigit: that accepts "²"
_HANGUP_STATUSES = frozenset({"completed", "canceled"})
_MAX_FORM_FIELDS = 64
_MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


@dataclass(frozen=True)
class CallCredentials:
    """What a stream's agent puts in its Twilio client: AccountSid and AuthToken."""

    account_sid: str  # "AC" + 32 lower-case hex digits
    auth_token: str  # 32 lower-case hex digits


def stream_credentials(call_sid: str, *, secret: bytes) -> CallCredentials:
    """Derived, not stored: HMAC-SHA256(secret, call_sid) split into an AC sid and a token.

    The first 16 bytes of the MAC become the AccountSid, the last 16 the AuthToken, so the
    server can check a request knowing nothing but the CallSid in its path.
    """
    _check_secret(secret)
    digest = hmac.new(secret, call_sid.encode("utf-8"), hashlib.sha256).hexdigest()
    return CallCredentials(account_sid="AC" + digest[:32], auth_token=digest[32:])


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"secret must be at least {MIN_SECRET_BYTES} bytes")


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class _Response:
    status: int
    body: dict[str, object]
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        payload = json.dumps(self.body, separators=(",", ":")).encode("utf-8")
        lines = [
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
            "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(payload)}",
            "Connection: close",
            f"Date: {formatdate(usegmt=True)}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _error(
    status: int,
    message: str,
    *,
    code: int | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> _Response:
    # Without a specific Twilio code, use the HTTP status: Twilio's error dictionary has generic
    # entries under those numbers (400 Bad Request, 404 Not Found, ...).
    code = status if code is None else code
    body: dict[str, object] = {
        "code": code,
        "message": message,
        "more_info": _MORE_INFO.format(code=code),
        "status": status,
    }
    return _Response(status, body, headers)


class _ProtocolError(Exception):
    """The request cannot be parsed or is refused before routing; answer and close.

    Part of the request may still be unread when this is raised.
    """

    def __init__(self, response: _Response, reason: str) -> None:
        super().__init__(reason)
        self.response = response
        self.reason = reason


class _ClientGone(Exception):
    """EOF before a whole request arrived; nobody is left to answer."""

    def __init__(self, partial: bool) -> None:
        super().__init__("client closed the connection")
        self.partial = partial


@dataclass
class _Connection:
    writer: asyncio.StreamWriter
    peer: str
    client_ip: str
    warned: bool = field(default=False)
    unread_input: bool = field(default=False)  # refused before the whole request was read


class RestServer:
    """Twilio-style call hang-up endpoint for the calls live in this process.

    One request per connection (``Connection: close``). All methods run on the event loop the
    server was started on; ``lookup`` and the hang-up functions it returns are called there too.
    """

    def __init__(
        self,
        *,
        lookup: Callable[[str], Callable[[str], None] | None],
        secret: bytes,
        read_timeout: float = READ_TIMEOUT,
        header_timeout: float = HEADER_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_conn_per_client: int = MAX_CONN_PER_CLIENT,
    ) -> None:
        """lookup(call_sid) returns the hang-up function of a live call (called with a reason
        string like "agent_rest"), or None when no such call is live in this process.

        read_timeout bounds a whole request, header_timeout (at most read_timeout) its header
        block; max_conn_per_client caps the connections open at once from one client IP."""
        _check_secret(secret)
        if max_conn_per_client < 1:
            raise ValueError("max_conn_per_client must be at least 1")
        self._lookup = lookup
        self._secret = secret
        self._read_timeout = read_timeout
        self._header_timeout = min(header_timeout, read_timeout)
        self._max_connections = max_connections
        self._max_per_client = max_conn_per_client
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[object], _Connection] = {}
        self._per_client: dict[str, int] = {}  # client IP -> its connections in _connections
        self._capped_clients: set[str] = set()  # warned about since they last were under cap
        self._closed = False

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0 picks a free one); returns the bound port."""
        if self._server is not None or self._closed:
            raise RuntimeError("RestServer can only be started once")
        # The stream limit caps how far readuntil() scans for the end of the header block.
        self._server = await asyncio.start_server(self._handle, host, port, limit=MAX_HEADER_BYTES)
        port = int(self._server.sockets[0].getsockname()[1])
        logger.info("agent REST server listening on %s:%d", host, port)
        return port

    async def close(self) -> None:
        """Stop listening, let in-flight requests finish briefly, then drop what is left."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        # Closing a transport feeds EOF to its reader, so idle connections end on their own.
        for conn in list(self._connections.values()):
            conn.writer.close()
        tasks = list(self._connections)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_CLOSE_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # --- one connection ---------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Everything is caught here: an exception escaping a client_connected_cb only reaches the
        # loop's exception handler, and on the bridge loop nothing must go unexplained.
        task = asyncio.current_task()
        conn = _Connection(writer=writer, peer=_peer(writer), client_ip=_client_ip(writer))
        if task is None or self._closed:
            writer.transport.abort()
            return
        # Per client first: a client over its own limit must not use up the global cap either.
        if self._per_client.get(conn.client_ip, 0) >= self._max_per_client:
            self._refuse_over_client_cap(conn)
            return
        if len(self._connections) >= self._max_connections:
            self._warn(conn, "refused: %d connections open", len(self._connections))
            writer.transport.abort()
            return
        self._connections[task] = conn
        self._per_client[conn.client_ip] = self._per_client.get(conn.client_ip, 0) + 1
        try:
            response = await self._serve(reader, conn)
            if response is not None:
                writer.write(response.encode())
                async with asyncio.timeout(self._read_timeout):
                    await writer.drain()
                if conn.unread_input:
                    await self._linger(reader, writer)
        except asyncio.CancelledError:
            # Only close() cancels these tasks. Python 3.11's stream protocol calls
            # task.exception() on the finished handler, which raises for a cancelled task and
            # logs a bogus error, so end normally instead.
            pass
        except OSError as exc:  # ConnectionError, or TimeoutError from the drain deadline
            self._warn(conn, "could not send the response: %r", exc)
        except Exception:
            # A bug, not a bad client: say so loudly, but keep the server and the loop alive.
            logger.exception("agent REST server: unexpected error serving %s", conn.peer)
        finally:
            self._forget(task, conn)
            await self._close_writer(conn)

    def _refuse_over_client_cap(self, conn: _Connection) -> None:
        # A flood from one address would be one warning per socket: warn once, then again only
        # after the address has dropped back under its limit.
        if conn.client_ip not in self._capped_clients:
            self._capped_clients.add(conn.client_ip)
            self._warn(
                conn,
                "refused: %d connections per client open (more closed at once until some end)",
                self._max_per_client,
            )
        conn.writer.transport.abort()

    def _forget(self, task: asyncio.Task[object], conn: _Connection) -> None:
        if self._connections.pop(task, None) is None:
            return
        left = self._per_client[conn.client_ip] - 1
        if left:
            self._per_client[conn.client_ip] = left
        else:
            del self._per_client[conn.client_ip]
        self._capped_clients.discard(conn.client_ip)  # under its limit again

    async def _serve(self, reader: asyncio.StreamReader, conn: _Connection) -> _Response | None:
        try:
            async with asyncio.timeout(self._read_timeout):
                request = await self._read_request(reader, conn.writer)
        except TimeoutError:
            self._warn(
                conn,
                "no complete request in time (header %.1f s, request %.1f s)",
                self._header_timeout,
                self._read_timeout,
            )
            return _error(408, "Request Timeout")
        except _ClientGone as exc:
            if exc.partial:
                self._warn(conn, "client closed the connection mid-request")
            else:
                # Port probes and health checks connect and leave; not worth a warning.
                logger.debug("agent REST server: %s closed without a request", conn.peer)
            return None
        except _ProtocolError as exc:
            self._warn(conn, "%s", exc.reason)
            conn.unread_input = True
            return exc.response
        return self._dispatch(request, conn)

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Closing a socket with unread input makes the kernel send RST, and the RST can destroy
        # the error response before the client reads it (a client sending a 1 MB body would see
        # "connection reset" instead of 413). So half-close and swallow what is still coming for
        # a moment, as nginx's lingering close does; bounded in time and bytes.
        try:
            if writer.can_write_eof():
                writer.write_eof()
            swallowed = 0
            async with asyncio.timeout(min(self._read_timeout, _LINGER_SECONDS)):
                while swallowed < _LINGER_BYTES:
                    chunk = await reader.read(4096)
                    if not chunk:
                        return
                    swallowed += len(chunk)
        except OSError:  # the peer reset, shutdown() failed, or TimeoutError: done either way
            pass

    async def _close_writer(self, conn: _Connection) -> None:
        try:
            conn.writer.close()
            # The answer is small enough to sit in the kernel's buffer, but a peer that never
            # reads must not keep this task alive: bound the wait, then abort.
            async with asyncio.timeout(self._read_timeout):
                await conn.writer.wait_closed()
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            conn.writer.transport.abort()
        except Exception:
            logger.exception("agent REST server: error closing %s", conn.peer)
            conn.writer.transport.abort()

    def _warn(self, conn: _Connection, msg: str, *args: object) -> None:
        # One warning per connection: a hostile client must not be able to flood the log.
        if conn.warned:
            logger.debug("agent REST server: %s: " + msg, conn.peer, *args)
            return
        conn.warned = True
        logger.warning("agent REST server: %s: " + msg, conn.peer, *args)

    # --- HTTP/1.1 parsing -------------------------------------------------------------------

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request:
        try:
            async with asyncio.timeout(self._header_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise _ProtocolError(
                _error(431, "Request Header Fields Too Large"), "header block too large"
            ) from exc
        except asyncio.IncompleteReadError as exc:
            raise _ClientGone(partial=bool(exc.partial)) from exc
        if len(head) > MAX_HEADER_BYTES:
            # readuntil() checks the limit against where the separator starts, not ends.
            raise _ProtocolError(
                _error(431, "Request Header Fields Too Large"), "header block too large"
            )
        method, path, headers = _parse_head(head[:-4])

        if "transfer-encoding" in headers:
            raise _ProtocolError(
                _error(501, "Transfer-Encoding is not supported; send Content-Length"),
                "Transfer-Encoding request",
            )
        length_text = headers.get("content-length", "0")
        if not _CONTENT_LENGTH.fullmatch(length_text):
            raise _ProtocolError(_error(400, "Invalid Content-Length"), "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _ProtocolError(
                _error(413, f"Request body over {MAX_BODY_BYTES} bytes"),
                f"body of {length} bytes refused",
            )
        if length and headers.get("expect", "").lower() == "100-continue":
            # curl asks before sending bodies over 1 KiB; without this it stalls for a second.
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise _ClientGone(partial=True) from exc
        return _Request(method=method, path=path, headers=headers, body=body)

    # --- routing ----------------------------------------------------------------------------

    def _dispatch(self, request: _Request, conn: _Connection) -> _Response:
        match = _CALL_PATH.fullmatch(request.path)
        if match is None:
            # %r: the path is client-controlled and could carry a bare LF into the log.
            self._warn(conn, "%s %r: no such resource", request.method, request.path[:200])
            return _not_found(request.path)
        if request.method not in ("GET", "POST"):
            self._warn(conn, "%s not allowed on %r", request.method, request.path[:200])
            return _error(405, "Method Not Allowed", headers=(("Allow", "GET, POST"),))
        try:
            path_account = unquote(match.group(1), errors="strict")
            call_sid = unquote(match.group(2), errors="strict")
        except UnicodeDecodeError:
            self._warn(conn, "path is not UTF-8 after percent-decoding")
            return _error(400, "Invalid URL encoding")

        creds = stream_credentials(call_sid, secret=self._secret)
        if not _authorized(request.headers.get("authorization"), path_account, creds):
            self._warn(conn, "%s call %r: authentication failed", request.method, call_sid[:64])
            return _error(
                401,
                "Authenticate",
                code=20003,
                headers=(("WWW-Authenticate", 'Basic realm="Twilio API"'),),
            )

        try:
            hang_up = self._lookup(call_sid)
        except Exception:
            logger.exception("agent REST server: lookup(%r) failed", call_sid)
            return _error(500, "Internal Server Error")
        if hang_up is None:
            # The usual cause is a race with the callee hanging up first, not an attack.
            logger.info("agent REST server: %s call %s: not live", request.method, call_sid)
            return _not_found(request.path)

        if request.method == "GET":
            return _Response(200, _call_resource(creds, call_sid, "in-progress"))

        status, problem = _requested_status(request.body)
        if status is None:
            self._warn(conn, "POST call %s: %s", call_sid, problem)
            return _error(400, problem, code=21218)
        try:
            hang_up(HANGUP_REASON)
        except Exception:
            logger.exception("agent REST server: hang-up of call %s failed", call_sid)
            return _error(500, "Internal Server Error")
        logger.info("agent REST server: call %s: agent set Status=%s", call_sid, status)
        return _Response(200, _call_resource(creds, call_sid, status))


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Request line and header fields of one request; raises _ProtocolError when malformed."""
    request_line, *field_lines = head.split(b"\r\n")
    try:
        method, target, version = request_line.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError) as exc:
        raise _ProtocolError(_error(400, "Bad Request"), "malformed request line") from exc
    if not _METHOD.fullmatch(method) or version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _ProtocolError(_error(400, "Bad Request"), "malformed request line")
    if target.startswith(("http://", "https://")):
        target = urlsplit(target).path  # absolute-form, which servers must accept
    if not target.startswith("/"):
        raise _ProtocolError(_error(400, "Bad Request"), "request target is not a path")
    path = target.split("?", 1)[0]

    headers: dict[str, str] = {}
    for line in field_lines:
        name_bytes, sep, value_bytes = line.partition(b":")
        # No colon, an empty name, whitespace around the name (which also catches obsolete
        # folded lines): all are request-smuggling material that RFC 9112 says to reject.
        if not sep or not name_bytes or name_bytes != name_bytes.strip():
            raise _ProtocolError(_error(400, "Bad Request"), "malformed header field")
        try:
            name = name_bytes.decode("ascii").lower()
        except UnicodeDecodeError as exc:
            raise _ProtocolError(_error(400, "Bad Request"), "non-ASCII header name") from exc
        value = value_bytes.decode("latin-1").strip()  # header values are opaque octets
        if name in headers:
            if name == "content-length":
                # Two different lengths is the classic smuggling trick; two equal ones is noise.
                if headers[name] != value:
                    raise _ProtocolError(
                        _error(400, "Bad Request"), "conflicting Content-Length headers"
                    )
                continue
            value = f"{headers[name]}, {value}"  # RFC 9110 list semantics
        headers[name] = value
    return method, path, headers


def _authorized(header: str | None, path_account: str, creds: CallCredentials) -> bool:
    user, password, well_formed = b"", b"", False
    if header is not None:
        scheme, _, param = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                raw = base64.b64decode(param.strip(), validate=True)
            except ValueError:  # binascii.Error, or non-ASCII characters
                raw = None
            if raw is not None:
                user, sep, password = raw.partition(b":")
                well_formed = bool(sep)
    expected_sid = creds.account_sid.encode("ascii")
    # Compare bytes, never str: compare_digest raises on non-ASCII str. All three comparisons
    # run every time so timing does not reveal which part was wrong.
    checks = (
        hmac.compare_digest(user, expected_sid),
        hmac.compare_digest(password, creds.auth_token.encode("ascii")),
        hmac.compare_digest(path_account.encode("utf-8"), expected_sid),
    )
    return well_formed and all(checks)


def _requested_status(body: bytes) -> tuple[str | None, str]:
    """The Status the form asks for, or None and why it is refused."""
    try:
        fields = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError is one; so is "too many fields"
        return None, "Invalid form body"
    values = {value for name, value in fields if name == "Status"}
    if not values:
        return None, "Missing Status: only Status=completed or Status=canceled is supported"
    if len(values) > 1:
        return None, "Conflicting Status values"
    status = values.pop()
    if status not in _HANGUP_STATUSES:
        return None, f"Invalid Status {status[:40]!r}: use completed or canceled"
    return status, ""


def _call_resource(creds: CallCredentials, call_sid: str, status: str) -> dict[str, object]:
    return {
        "sid": call_sid,
        "account_sid": creds.account_sid,
        "status": status,
        "api_version": API_VERSION,
        "date_updated": format_datetime(datetime.now(UTC)),
        "uri": f"/{API_VERSION}/Accounts/{creds.account_sid}/Calls/{call_sid}.json",
    }


def _not_found(path: str) -> _Response:
    return _error(404, f"The requested resource {path[:200]} was not found", code=20404)


def _client_ip(writer: asyncio.StreamWriter) -> str:
    """What the per-client limit counts by: the IPv4 address, or the IPv6 /64 (one IPv6 host
    commonly holds a whole /64, so counting single addresses would not limit it)."""
    peer = writer.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer:
        return str(peer)  # a Unix socket, or an unknown peer: one shared limit
    host = str(peer[0])
    try:
        address = ipaddress.ip_address(host.partition("%")[0])  # without an IPv6 zone
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
