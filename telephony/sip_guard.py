"""Keep strangers away from an engine's SIP socket, below pjsua.

pjsua2 offers no hook before it acts on a request: an unsolicited INVITE gets a media transport
(two sockets) before any callback runs, and a burst of them exhausts pjlib's ioqueue (64 handles)
and aborts the process; SUBSCRIBE and MESSAGE are answered 200 before the application hears of
them. So the filter sits in the kernel: a classic BPF program on pjsua's own UDP socket
(SO_ATTACH_FILTER) that lets a datagram through only when its IPv4 source is an allowed address,
and drops SUBSCRIBE, MESSAGE and PUBLISH from anyone (an outbound dialer has no presence or
messaging). A dropped datagram never reaches pjsua: no reply, no socket, no log line.

Allowed sources: the engine's own address (its loop wakes itself with a datagram to its port),
the trunks it dials (added as it dials them) and the operator's list (ENGINE_SIP_ALLOW: an SBC or
SIP edge in front of the trunks, as addresses, networks or host names).
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Iterable

log = logging.getLogger(__name__)

SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; Python's socket module does not export it
# cBPF opcodes (<linux/filter.h>).
_LD_W_ABS = 0x00 | 0x00 | 0x20
_ALU_AND_K = 0x04 | 0x50 | 0x00
_JEQ_K = 0x05 | 0x10 | 0x00
_JA = 0x05 | 0x00  # unconditional: a 32-bit offset (conditional jumps reach 255 at most)
_RET_K = 0x06 | 0x00
_SKF_NET_OFF = -0x100000  # loads relative to the IP header (source address at +12)
_UDP_PAYLOAD = 8  # a UDP socket's filter sees the UDP header first
_ACCEPT = 0x40000  # keep up to 256 KiB of the datagram: all of it
_MAX_NETWORKS = 1000  # cBPF programs hold at most 4096 instructions (4 per network)
# The first four bytes of the methods nobody may send us (SIP methods are case-sensitive).
REFUSED_METHODS = ("SUBSCRIBE", "MESSAGE", "PUBLISH")


class SipGuardError(RuntimeError):
    pass


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def filter_program(networks: Iterable[ipaddress.IPv4Network]) -> list[bytes]:
    """The cBPF program: accept datagrams from `networks` unless they start with a refused
    method; drop everything else."""
    nets = sorted(set(networks), key=lambda n: (int(n.network_address), n.prefixlen))
    if len(nets) > _MAX_NETWORKS:
        raise SipGuardError(f"{len(nets)} allowed networks: at most {_MAX_NETWORKS}")
    prog: list[bytes] = []
    # Source checks: each network is "load source, mask, compare"; a match takes the jump to
    # the method checks, a miss skips it to the next network; after the last, drop.
    for i, net in enumerate(nets):
        to_methods = 4 * (len(nets) - i - 1) + 1  # past the remaining networks and the drop
        prog.append(_insn(_LD_W_ABS, 0, 0, _SKF_NET_OFF + 12))
        prog.append(_insn(_ALU_AND_K, 0, 0, int(net.netmask)))
        prog.append(_insn(_JEQ_K, 0, 1, int(net.network_address)))
        prog.append(_insn(_JA, 0, 0, to_methods))
    prog.append(_insn(_RET_K, 0, 0, 0))
    # Method checks: a datagram shorter than four bytes ends the program (dropped) here, which
    # costs nothing: no SIP message or keep-alive is that short.
    prog.append(_insn(_LD_W_ABS, 0, 0, _UDP_PAYLOAD))
    prefixes = [struct.unpack("!I", m[:4].encode())[0] for m in REFUSED_METHODS]
    for j, prefix in enumerate(prefixes):
        to_drop = len(prefixes) - j  # past the remaining checks and the accept
        prog.append(_insn(_JEQ_K, to_drop, 0, prefix))
    prog.append(_insn(_RET_K, 0, 0, _ACCEPT))
    prog.append(_insn(_RET_K, 0, 0, 0))
    return prog


def attach(fd: int, program: list[bytes]) -> None:
    """Attach `program` to the socket `fd` (replacing any filter it had)."""
    code = ctypes.create_string_buffer(b"".join(program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(code))
    sock = socket.socket(fileno=fd)
    try:
        # The kernel copies the program during the call: `code` need not outlive it.
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    finally:
        sock.detach()  # the descriptor is pjsua's: never close it


def udp_socket_fd(host: str, port: int) -> int:
    """The descriptor of this process's UDP socket bound to host:port (pjsua opened it and does
    not tell): its inode from /proc/net/udp, then the fd pointing at that inode."""
    want = f"{socket.htonl(int(ipaddress.IPv4Address(host))):08X}:{port:04X}"
    inodes = set()
    with open("/proc/net/udp") as table:
        next(table)
        for line in table:
            cols = line.split()
            if cols[1] == want:
                inodes.add(cols[9])
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return int(name)
    raise SipGuardError(f"no UDP socket of this process is bound to {host}:{port}")


def uri_host(uri: str) -> str:
    """The host of a SIP URI: sip:+9198...@carrier.example:5060;transport=udp -> carrier.example."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.rsplit("@", 1)[-1]
    rest = rest.split(";", 1)[0].split("?", 1)[0].split(">", 1)[0]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    return rest.split(":", 1)[0]


def resolve(entry: str) -> list[ipaddress.IPv4Network]:
    """An allow-list entry as networks: an address, a network (10.0.0.0/24) or a host name
    (all its IPv4 addresses, now)."""
    try:
        return [ipaddress.IPv4Network(entry, strict=False)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(entry, None, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        raise SipGuardError(f"cannot resolve {entry!r}: {exc}") from exc
    return [ipaddress.IPv4Network(info[4][0]) for info in infos]


class SipGuard:
    """The filter on one engine's SIP socket and the addresses it lets through."""

    def __init__(self, *, host: str, port: int, allow: Iterable[str] = ()) -> None:
        self._fd = udp_socket_fd(host, port)
        own = "127.0.0.1" if host in {"0.0.0.0", ""} else host  # noqa: S104 (a test, not a bind)
        self._networks: set[ipaddress.IPv4Network] = set(resolve(own))
        self._hosts: set[str] = set()
        for entry in allow:
            self._networks.update(resolve(entry))
        self._apply()

    def allow_host(self, host: str) -> None:
        """Let `host` (a trunk about to be dialed) through; resolved once per engine."""
        if host in self._hosts:
            return
        self._hosts.add(host)
        try:
            added = set(resolve(host)) - self._networks
        except SipGuardError as exc:
            # pjsua cannot reach it either: the INVITE fails on its own.
            log.warning("SIP guard: %s", exc)
            return
        if added:
            self._networks |= added
            self._apply()

    def _apply(self) -> None:
        attach(self._fd, filter_program(self._networks))
        log.info(
            "SIP guard: accepting SIP from %s",
            ", ".join(str(n) for n in sorted(self._networks, key=str)),
        )
