"""Hostile SIP traffic for tests: out-of-dialog requests a stranger (or a misbehaving trunk)
sends to an engine's SIP port, and a listener that reports what came back. Loopback only: the
source is bound to a 127.0.0.x address of the caller's choosing, so a test can play a stranger
(127.0.0.2) beside a trunk on 127.0.0.1."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterable

SDP = (
    "v=0\r\no=probe 1 1 IN IP4 {src}\r\ns=-\r\nc=IN IP4 {src}\r\nt=0 0\r\n"
    "m=audio {rtp} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
)


def request(
    method: str,
    *,
    src: str,
    src_port: int,
    dst: str,
    dst_port: int,
    body: str = "",
    content_type: str = "",
    extra: Iterable[str] = (),
) -> bytes:
    """One out-of-dialog request, well formed, with a fresh Call-ID and branch."""
    tag = uuid.uuid4().hex[:10]
    lines = [
        f"{method} sip:+919876543210@{dst}:{dst_port} SIP/2.0",
        f"Via: SIP/2.0/UDP {src}:{src_port};branch=z9hG4bK{uuid.uuid4().hex};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{src}>;tag={tag}",
        f"To: <sip:+919876543210@{dst}>",
        f"Call-ID: {uuid.uuid4().hex}@{src}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:probe@{src}:{src_port}>",
        *extra,
    ]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def invite(*, src: str, src_port: int, dst: str, dst_port: int, rtp_port: int = 40000) -> bytes:
    return request(
        "INVITE",
        src=src,
        src_port=src_port,
        dst=dst,
        dst_port=dst_port,
        body=SDP.format(src=src, rtp=rtp_port),
        content_type="application/sdp",
    )


class Prober:
    """A UDP socket on (src, any port) that sends requests and collects every reply."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((src, 0))
        self.port: int = self.sock.getsockname()[1]

    def send(self, data: bytes, dst: tuple[str, int]) -> None:
        self.sock.sendto(data, dst)

    def burst(self, messages: list[bytes], dst: tuple[str, int], *, per_second: float) -> None:
        gap = 1.0 / per_second
        start = time.monotonic()
        for i, data in enumerate(messages):
            delay = start + i * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.sock.sendto(data, dst)

    def replies(self, *, wait_s: float) -> list[bytes]:
        """Everything that arrives within wait_s (the clock restarts at each datagram's arrival
        only up to wait_s in total)."""
        got: list[bytes] = []
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            got.append(data)
        return got

    def close(self) -> None:
        self.sock.close()


def status_codes(replies: list[bytes]) -> list[int]:
    """The status codes of the SIP responses among replies (requests sent back are skipped)."""
    codes = []
    for data in replies:
        first = data.split(b"\r\n", 1)[0]
        if first.startswith(b"SIP/2.0 "):
            codes.append(int(first.split()[1]))
    return codes


def requests_received(replies: list[bytes]) -> list[str]:
    """The methods of requests among replies (e.g. a NOTIFY sent back to a subscriber)."""
    return [
        data.split(b" ", 1)[0].decode("ascii", "replace")
        for data in replies
        if not data.startswith(b"SIP/2.0 ")
    ]


def final_codes(replies: list[bytes]) -> dict[str, int]:
    """The final status code each Call-ID got (retransmissions of a response counted once)."""
    finals: dict[str, int] = {}
    for data in replies:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
        if not head[0].startswith("SIP/2.0 ") or int(head[0].split()[1]) < 200:
            continue
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() in {"call-id", "i"}:
                finals[value.strip()] = int(head[0].split()[1])
    return finals
