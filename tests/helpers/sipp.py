"""Run SIPp as the independent SIP peer of a test, and read back what it saw.

`SippUAS` starts one background SIPp UAS on 127.0.0.1 from a scenario in tests/sipp/ and stops
exactly that process when the `with` block ends. `run_uac` runs a SIPp UAC in the foreground until
its scenario ends and returns its exit code (0: every call went as scripted) and the number of RTP
packets the far end sent to it.

What SIPp received is read from its message trace (-trace_msg), which it writes as each message
goes by, so `invites()` and `cancels()` are current while SIPp runs.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.helpers.paths import SIPP_SCENARIOS

SIPP = "sipp"
SCENARIO_DIR = SIPP_SCENARIOS
HOST = "127.0.0.1"

# Every SIPp run ends by itself after this long, so a test process killed hard leaks nothing.
DEFAULT_LIFETIME_S = 300
_READY_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 3.0

_PID_RE = re.compile(r"PID=\[(\d+)\]")
# One entry of a -trace_msg file: a dashed header line with a timestamp, then the message.
_ENTRY_SPLIT_RE = re.compile(r"^-{20,} .*$", re.MULTILINE)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def write_dtmf_pcap(dest: Path, *, digit: str = "9", payload_type: int = 120) -> Path:
    """SIPp's RFC 2833 pcap for `digit`, its RTP payload type rewritten (and the UDP checksum
    cleared, which IPv4 allows), for a peer that negotiated another telephone-event type."""
    name = {"#": "pound", "*": "star"}.get(digit, digit)
    data = bytearray(Path(f"/usr/share/sip-tester/dtmf_2833_{name}.pcap").read_bytes())
    offset = 24  # pcap global header
    while offset + 16 <= len(data):
        captured = int.from_bytes(data[offset + 8 : offset + 12], "little")
        packet = offset + 16
        # Ethernet (14) + IPv4 (20, no options in these captures) + UDP (8), then RTP.
        data[packet + 14 + 20 + 6 : packet + 14 + 20 + 8] = b"\x00\x00"
        rtp = packet + 14 + 20 + 8
        data[rtp + 1] = (data[rtp + 1] & 0x80) | payload_type
        offset = packet + captured
    dest.write_bytes(bytes(data))
    return dest


def udp_port_bound(port: int, host: str = HOST) -> bool:
    """Whether some process holds host:port (UDP), read from /proc rather than by binding.

    Probing with bind() would race the process we are waiting for: for a moment we would hold
    the port it is about to take.
    """
    # /proc/net/udp writes 127.0.0.1:5060 as 0100007F:13C4 (address bytes little-endian).
    address = "".join(f"{int(b):02X}" for b in reversed(host.split(".")))
    wanted = f"{address}:{port:04X}"
    with open("/proc/net/udp") as table:
        next(table)
        return any(line.split()[1] == wanted for line in table)


def process_alive(pid: int) -> bool:
    """True while pid runs; a zombie (exited, not yet reaped by its adopter) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@dataclass(frozen=True)
class TracedMessage:
    """One SIP message from a SIPp message trace."""

    direction: str  # "received" or "sent"
    start_line: str
    headers: dict[str, str]  # first occurrence of each header, name lower-cased


def parse_message_trace(text: str) -> list[TracedMessage]:
    """The SIP messages in a -trace_msg file, in order, unexpected ones included."""
    messages: list[TracedMessage] = []
    for entry in _ENTRY_SPLIT_RE.split(text):
        lines = [line.rstrip("\r") for line in entry.strip().splitlines()]
        if len(lines) < 3:
            continue
        # "UDP message received [n] bytes :", "UDP message sent (n bytes):" or
        # "Unexpected UDP message received:" (already logged once as received: skip).
        banner = lines[0]
        if banner.startswith("Unexpected"):
            continue
        direction = "received" if " received" in banner else "sent"
        body = lines[2:] if lines[1] == "" else lines[1:]
        headers: dict[str, str] = {}
        for line in body[1:]:
            if not line:
                break
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        messages.append(TracedMessage(direction, body[0], headers))
    return messages


def _has_to_tag(message: TracedMessage) -> bool:
    return ";tag=" in message.headers.get("to", "").replace(" ", "")


def initial_invite_uris(messages: list[TracedMessage]) -> list[str]:
    """Request-URIs of the dialog-creating INVITEs received, one per call attempt.

    A retransmission repeats the Call-ID and CSeq of the original, and a re-INVITE carries a To
    tag: neither is a second dial, so neither is counted.
    """
    seen: set[tuple[str, str]] = set()
    uris: list[str] = []
    for msg in messages:
        if msg.direction != "received" or not msg.start_line.startswith("INVITE "):
            continue
        if _has_to_tag(msg):
            continue
        key = (msg.headers.get("call-id", ""), msg.headers.get("cseq", ""))
        if key in seen:
            continue
        seen.add(key)
        uris.append(msg.start_line.split()[1])
    return uris


def received_request_count(messages: list[TracedMessage], method: str) -> int:
    """Distinct requests of this method received (retransmissions counted once)."""
    keys = {
        (m.headers.get("call-id", ""), m.headers.get("cseq", ""))
        for m in messages
        if m.direction == "received" and m.start_line.startswith(method + " ")
    }
    return len(keys)


def _key_args(keys: dict[str, str] | None) -> list[str]:
    args: list[str] = []
    for name, value in (keys or {}).items():
        args += ["-key", name, value]
    return args


def _scenario_path(scenario: str) -> Path:
    """A bare name is a file in tests/sipp/; an absolute path is taken as it is."""
    path = SCENARIO_DIR / scenario
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


class SippUAS:
    """A background SIPp UAS on 127.0.0.1 for the length of a `with` block."""

    def __init__(
        self,
        scenario: str,
        *,
        port: int | None = None,
        keys: dict[str, str] | None = None,
        max_calls: int | None = None,
        workdir: Path,
        lifetime_s: int = DEFAULT_LIFETIME_S,
    ) -> None:
        self.scenario = scenario
        self.port = port if port is not None else free_udp_port()
        self.keys = dict(keys or {})
        self.max_calls = max_calls
        self.workdir = Path(workdir)
        self.lifetime_s = lifetime_s
        stem = f"{Path(scenario).stem}_{self.port}"
        self.message_file = self.workdir / f"{stem}_messages.log"
        self.error_file = self.workdir / f"{stem}_errors.log"
        self.pid: int | None = None

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    def command(self) -> list[str]:
        cmd = [SIPP, "-sf", str(_scenario_path(self.scenario)), "-i", HOST, "-p", str(self.port)]
        cmd += ["-bg", "-timeout", f"{self.lifetime_s}s"]
        cmd += ["-trace_msg", "-message_file", str(self.message_file)]
        cmd += ["-trace_err", "-error_file", str(self.error_file)]
        if self.max_calls is not None:
            cmd += ["-m", str(self.max_calls)]
        return cmd + _key_args(self.keys)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # SIPp checks the scenario before it forks, so a bad one fails here with its reason.
        done = subprocess.run(
            self.command(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        # The parent exits 99 ("no call processed") once it has forked, so the PID is the signal.
        found = _PID_RE.search(done.stdout)
        if found is None:
            raise RuntimeError(
                f"sipp did not start (exit {done.returncode}): {done.stdout}{done.stderr}"
                f"{self.errors()}"
            )
        self.pid = int(found.group(1))
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.pid is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if udp_port_bound(self.port):
                return
            if not process_alive(self.pid):
                raise RuntimeError(f"sipp exited before binding port {self.port}: {self.errors()}")
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sipp did not bind port {self.port} within {_READY_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop exactly the SIPp this object started: SIGTERM, then SIGKILL if it lingers."""
        pid, self.pid = self.pid, None
        if pid is None or not process_alive(pid):
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + _STOP_TIMEOUT_S
            while time.monotonic() < deadline:
                if not process_alive(pid):
                    return
                time.sleep(0.02)
        raise RuntimeError(f"sipp pid {pid} survived SIGKILL")

    def running(self) -> bool:
        return self.pid is not None and process_alive(self.pid)

    def messages(self) -> list[TracedMessage]:
        try:
            text = self.message_file.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return parse_message_trace(text)

    def invites(self) -> list[str]:
        """Request-URIs of every call attempt (initial INVITE) received, in arrival order."""
        return initial_invite_uris(self.messages())

    def cancels(self) -> int:
        return received_request_count(self.messages(), "CANCEL")

    def errors(self) -> str:
        try:
            return self.error_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> SippUAS:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class UacResult:
    returncode: int  # SIPp's: 0 when every call succeeded, 1 when one failed, others: fatal
    rtp_packets: int  # RTP datagrams the far end sent to the address in our SDP offer
    output: str  # SIPp's stdout and stderr, then its error log, for assertion messages


def run_uac(
    scenario: str,
    target: str,
    *,
    service: str,
    workdir: Path,
    keys: dict[str, str] | None = None,
    hold_ms: int = 1500,
    timeout_s: int = 20,
) -> UacResult:
    """Run one call from a SIPp UAC scenario against target ("host:port") and wait for the end.

    The UAC's SDP offer points the far end's RTP at a socket of ours (-key rtp_port), and the
    datagrams that arrive there are counted, which proves audio flowed towards the caller.
    Scenarios that hold an answered call hold it for hold_ms before they hang up.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    stem = f"{Path(scenario).stem}_{port}"
    error_file = workdir / f"{stem}_errors.log"
    # A file, not a pipe: SIPp redraws its screen every second and would fill an unread pipe.
    screen_file = workdir / f"{stem}_screen.txt"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
        rtp.bind((HOST, 0))
        rtp.setblocking(False)
        cmd = [SIPP, "-sf", str(_scenario_path(scenario)), "-i", HOST, "-p", str(port), target]
        cmd += ["-s", service, "-m", "1", "-timeout", f"{timeout_s}s", "-timeout_error"]
        cmd += ["-key", "rtp_port", str(rtp.getsockname()[1]), "-key", "hold_ms", str(hold_ms)]
        cmd += ["-trace_err", "-error_file", str(error_file), *_key_args(keys)]
        with screen_file.open("wb") as screen:
            proc = subprocess.Popen(
                cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=screen, stderr=screen
            )
        packets = 0
        deadline = time.monotonic() + timeout_s + 10
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sipp UAC {scenario} ran past {timeout_s + 10} s")
                readable, _, _ = select.select([rtp], [], [], 0.05)
                while readable:
                    try:
                        rtp.recv(2048)
                    except BlockingIOError:
                        break
                    packets += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
    output = screen_file.read_text(errors="replace")[-4000:]
    if error_file.exists():
        output += error_file.read_text(errors="replace")
    return UacResult(proc.returncode, packets, output)
