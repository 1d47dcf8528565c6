"""Shared pjsua2 set-up for the engine and the built-in callee: one Endpoint per process.

The wheel is compiled with PJSUA_MAX_CALLS = 4, so one process never holds more than 4 calls. We
run pjsua2 with no worker threads of its own (threadCnt = 0) and poll libHandleEvents() from the
process's main loop, which keeps every SIP callback on one Python thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pjsua2 as pj

log = logging.getLogger("pjsua2")

MAX_CALLS_PER_PROCESS = 4
CLOCK_RATE = 8000
FRAME_MS = 20
SAMPLES_PER_FRAME = CLOCK_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = SAMPLES_PER_FRAME * 2  # 16-bit PCM

# A SIP keep-alive (RFC 5626 section 4.4.1): pjsip reads and drops it, but it returns a
# libHandleEvents() sleeping on that port at once: how other threads and processes wake an
# engine's loop.
SIP_KEEPALIVE = b"\r\n\r\n"

# The adaptive jitter buffer: it starts small (loopback and fixed lines add no latency) and may
# grow to 300 ms of prefetch for the 50-150 ms jitter of Indian mobile legs; past 600 ms of
# audio queued, frames are discarded (counted as loss in the call's MOS).
JB_MIN_PREFETCH_MS = 20
JB_MAX_PREFETCH_MS = 300
JB_MAX_MS = 600

# Twilio's wire format is mu-law; A-law is what Indian trunks often offer. Nothing else is offered.
_CODEC_PRIORITY = {"PCMU/8000/1": 254, "PCMA/8000/1": 253}


class OutboundEndpoint(pj.Endpoint):  # type: ignore[misc]
    """An endpoint that hands every out-of-dialog request to one account (`incoming_account`,
    once set) instead of the account pjsua would match by URI: the engine's refusing account,
    whose media is a loopback transport, so an unsolicited INVITE costs no socket (pjsua sets
    up a call's media before any callback can refuse it, and a burst of socket pairs exhausts
    pjlib's 64-handle ioqueue)."""

    incoming_account: int | None = None

    def onSelectAccount(self, prm: Any) -> None:
        if self.incoming_account is not None:
            prm.accountIndex = self.incoming_account


def start_endpoint(
    *,
    host: str,
    port: int,
    user_agent: str,
    log_level: int = 1,
    endpoint_class: type[pj.Endpoint] = pj.Endpoint,
) -> pj.Endpoint:
    """Create, initialise and start an endpoint with a UDP transport on host:port."""
    ep = endpoint_class()
    with _stdout_silenced():
        ep.libCreate()  # logs a banner at pjlib's built-in level before our config applies
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.maxCalls = MAX_CALLS_PER_PROCESS
    cfg.uaConfig.userAgent = user_agent
    cfg.medConfig.clockRate = CLOCK_RATE
    cfg.medConfig.sndClockRate = CLOCK_RATE
    cfg.medConfig.channelCount = 1
    cfg.medConfig.audioFramePtime = FRAME_MS
    cfg.medConfig.ptime = FRAME_MS
    cfg.medConfig.noVad = True
    cfg.medConfig.jbMinPre = JB_MIN_PREFETCH_MS
    cfg.medConfig.jbMaxPre = JB_MAX_PREFETCH_MS
    cfg.medConfig.jbMax = JB_MAX_MS
    cfg.logConfig.level = log_level
    cfg.logConfig.consoleLevel = log_level
    # pjsua2 logs through Python logging, never onto stdout (commands print JSON there).
    writer = _LogWriter()
    cfg.logConfig.writer = writer
    ep.libInit(cfg)
    ep._dialer_log_writer = writer  # pjsua2 does not keep the writer alive for us

    tcfg = pj.TransportConfig()
    tcfg.port = port
    tcfg.boundAddress = host
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    # No sound card: the null device still clocks the conference bridge (and our media ports).
    ep.audDevManager().setNullDev()
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, _CODEC_PRIORITY.get(codec.codecId, 0))
    ep.libStart()
    return ep


class _LogWriter(pj.LogWriter):  # type: ignore[misc]
    def write(self, entry: pj.LogEntry) -> None:
        log.log(logging.ERROR if entry.level <= 1 else logging.INFO, "%s", entry.msg.rstrip())


@contextmanager
def _stdout_silenced() -> Iterator[None]:
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def media_port_range(sip_port: int) -> tuple[int, int]:
    """RTP ports for the process on sip_port: disjoint per process, so engines never collide."""
    base = 20000 + (sip_port % 1000) * 40
    return base, 40
