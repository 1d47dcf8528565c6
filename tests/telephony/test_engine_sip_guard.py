"""Engines that strangers cannot hurt: the kernel filter on the SIP socket, the refusing account,
and a live call that carries on through floods, torture messages, transfers and redirects."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from campaigns.models import CallAttempt
from telephony.pool.models import EngineProcess
from telephony.sip_guard import (
    SipGuard,
    SipGuardError,
    attach,
    filter_program,
    udp_socket_fd,
    uri_host,
)
from tests.helpers.processes import TRANSACTIONAL_CALL, dial_cmd
from tests.helpers.sip_probe import (
    Prober,
    final_codes,
    invite,
    request,
    requests_received,
    status_codes,
)
from tests.helpers.sip_torture import torture_messages
from tests.helpers.sipp import SippUAS
from tests.helpers.wait import wait_for

TRUNK_IP = "127.0.0.1"  # SIPp, the trunk the engine dials
STRANGER_IP = "127.0.0.2"  # loopback too, but not an address the engine dials


def _receiver(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(0.2)
    return sock


def _arrives(sock: socket.socket, data: bytes, src: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.bind((src, 0))
        out.sendto(data, sock.getsockname())
    try:
        return sock.recv(65535) == data
    except TimeoutError:
        return False


# -- the filter, on real sockets ----------------------------------------------------------------
def test_the_filter_passes_allowed_sources_and_drops_the_rest() -> None:
    with _receiver() as sock:
        attach(sock.fileno(), filter_program([ipaddress.IPv4Network("127.0.0.1/32")]))
        assert _arrives(sock, b"OPTIONS sip:x SIP/2.0\r\n\r\n", "127.0.0.1")
        assert _arrives(sock, b"\r\n\r\n", "127.0.0.1")  # the engine's own wake-up datagram
        assert not _arrives(sock, b"OPTIONS sip:x SIP/2.0\r\n\r\n", STRANGER_IP)
        assert not _arrives(sock, b"INVITE sip:x SIP/2.0\r\n\r\n", STRANGER_IP)


@pytest.mark.parametrize("method", ["SUBSCRIBE", "MESSAGE", "PUBLISH"])
def test_presence_and_messaging_are_dropped_even_from_a_trunk(method: str) -> None:
    with _receiver() as sock:
        attach(sock.fileno(), filter_program([ipaddress.IPv4Network("127.0.0.1/32")]))
        assert not _arrives(sock, f"{method} sip:x SIP/2.0\r\n\r\n".encode(), "127.0.0.1")
        assert _arrives(sock, b"NOTIFY sip:x SIP/2.0\r\n\r\n", "127.0.0.1")
        assert _arrives(sock, b"subscribe sip:x SIP/2.0\r\n\r\n", "127.0.0.1")  # not a method


def test_networks_and_long_lists_are_honoured() -> None:
    # 600 networks: past the 255-instruction reach of a conditional jump.
    nets = [ipaddress.IPv4Network(f"10.{i // 250}.{i % 250}.0/24") for i in range(599)]
    nets.append(ipaddress.IPv4Network("127.0.0.0/30"))
    with _receiver() as sock:
        attach(sock.fileno(), filter_program(nets))
        assert _arrives(sock, b"OPTIONS a", "127.0.0.2")
        assert _arrives(sock, b"OPTIONS b", "127.0.0.3")
        assert not _arrives(sock, b"OPTIONS c", "127.0.0.9")
    with pytest.raises(SipGuardError):
        filter_program(ipaddress.IPv4Network(f"10.{i // 250}.{i % 250}.1") for i in range(1001))


def test_the_guard_finds_a_socket_it_did_not_open_and_learns_trunks() -> None:
    with _receiver() as sock:
        host, port = sock.getsockname()
        assert udp_socket_fd(host, port) == sock.fileno()
        guard = SipGuard(host=host, port=port, allow=["127.0.0.8/29"])
        assert _arrives(sock, b"OPTIONS a", "127.0.0.12")
        assert not _arrives(sock, b"OPTIONS b", "127.0.0.3")
        guard.allow_host(uri_host("sip:+919876543210@127.0.0.3:5060;transport=udp"))
        assert _arrives(sock, b"OPTIONS c", "127.0.0.3")
        guard.allow_host("no-such-host.invalid")  # logged; nothing else changes
        assert not _arrives(sock, b"OPTIONS d", "127.0.0.4")
    with pytest.raises(SipGuardError):
        udp_socket_fd("127.0.0.1", 9)


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("sip:+919876543210@carrier.example:5060", "carrier.example"),
        ("sip:+919876543210@10.1.2.3;transport=udp", "10.1.2.3"),
        ("<sip:9876@[::1]:5060>", "::1"),
        ("sip:carrier.example", "carrier.example"),
    ],
)
def test_uri_host(uri: str, host: str) -> None:
    assert uri_host(uri) == host


# -- a live engine ------------------------------------------------------------------------------
def _dial(env: dict[str, str], trunk: str, max_seconds: int) -> subprocess.Popen[str]:
    """A call held up to max_seconds in the background, while the test attacks the engine."""
    cmd = dial_cmd(
        "9876543210", "--trunk", trunk, *TRANSACTIONAL_CALL, "--max-seconds", str(max_seconds),
        "--json",
    )  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _engine(proc: subprocess.Popen[str]) -> EngineProcess:
    def registered() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return EngineProcess.objects.filter(pid=proc.pid).exists()

    wait_for(registered, timeout=20, interval=0.05, what="the engine to register")
    return EngineProcess.objects.get(pid=proc.pid)


def _result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_live_call_survives_floods_and_torture(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    with SippUAS("uas_answer.xml", workdir=tmp_path) as uas:
        proc = _dial(subprocess_env, uas.uri, max_seconds=10)
        try:
            engine = _engine(proc)
            target = ("127.0.0.1", engine.sip_port)
            wait_for(
                lambda: CallAttempt.objects.filter(status="answered").exists(),
                timeout=10,
                what="the call to be answered",  # SIPp answers after 500 ms
            )
            stranger, trunk = Prober(STRANGER_IP), Prober(TRUNK_IP)

            # 40 unsolicited INVITEs with SDP at 100/s: on main, the engine aborted at ~32.
            stranger.burst(
                [invite(src=STRANGER_IP, src_port=stranger.port, dst=target[0],
                        dst_port=target[1]) for _ in range(40)],
                target, per_second=100,
            )  # fmt: skip
            # The same from the trunk's own address (or one spoofing it): refused, never 500.
            trunk.burst(
                [invite(src=TRUNK_IP, src_port=trunk.port, dst=target[0], dst_port=target[1])
                 for _ in range(40)],
                target, per_second=100,
            )  # fmt: skip
            # A SUBSCRIBE flood, and messaging, from both.
            for prober in (stranger, trunk):
                prober.burst(
                    [request(method, src=prober.src, src_port=prober.port, dst=target[0],
                             dst_port=target[1], extra=["Event: presence", "Expires: 60"])
                     for _ in range(50) for method in ("SUBSCRIBE", "MESSAGE", "PUBLISH")],
                    target, per_second=300,
                )  # fmt: skip
            stranger_replies = stranger.replies(wait_s=1.0)
            trunk_replies = trunk.replies(wait_s=1.0)

            # RFC 4475-style torture messages from both addresses.
            for prober in (stranger, trunk):
                for _, data in torture_messages(
                    src=prober.src, src_port=prober.port, dst=target[0], dst_port=target[1]
                ):
                    prober.send(data, target)
            time.sleep(0.5)  # time to choke on them: a crash has no condition to wait on
            assert proc.poll() is None, "the engine died under the flood"
            os.kill(engine.pid, 0)
        finally:
            if proc.poll() is None:
                result = _result(proc)
            else:
                result = {}
        invites = uas.invites()

    assert stranger_replies == []  # dropped below pjsua: no reply, no NOTIFY, no media
    codes = status_codes(trunk_replies)
    assert 500 not in codes
    assert set(codes) <= {100, 403}
    assert list(final_codes(trunk_replies).values()) == [403] * 40
    assert requests_received(trunk_replies) == []  # no NOTIFY for a subscription
    assert engine.pid == proc.pid  # the same engine process carried the call to its end
    assert result["disposition"] == "answered"
    assert result["hangup_cause"] == "max_duration"
    assert 9 <= result["duration_s"] <= 12
    assert len(invites) == 1


@pytest.mark.slow
def test_a_transfer_request_is_refused_and_never_dialed(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    # pjsua's default would accept the REFER (202) and INVITE its Refer-To: a call no check saw.
    with SippUAS("uas_refer.xml", workdir=tmp_path) as uas:
        result = _result(_dial(subprocess_env, uas.uri, max_seconds=3))
        messages = uas.messages()
        invites = uas.invites()
    responses = [m.start_line for m in messages if m.direction == "received"]
    assert any(line.startswith("SIP/2.0 403") for line in responses), responses
    assert not any(line.startswith("SIP/2.0 202") for line in responses)
    assert invites == [f"sip:+919876543210@127.0.0.1:{uas.port}"]
    assert result["disposition"] == "answered" and result["hangup_cause"] == "max_duration"


@pytest.mark.slow
def test_a_redirect_is_not_followed(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    with SippUAS("uas_redirect.xml", workdir=tmp_path) as uas:
        result = _result(_dial(subprocess_env, uas.uri, max_seconds=3))
        time.sleep(0.5)  # a followed redirect would INVITE within this: nothing to wait on
        invites = uas.invites()
    assert invites == [f"sip:+919876543210@127.0.0.1:{uas.port}"]
    assert result["disposition"] != "answered"
    assert result["sip_code"] == 302 and result["disposition"] == "failed"
    assert result["sip_reason"] == "redirect not followed"
