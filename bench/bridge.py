"""The agent bridge with real parts on loopback: latency each way, barge-in, bridged calls per core.

    .venv/bin/python bench/bridge.py [--calls 30] [--probe-calls 4] [--hold 20] [--window 7]

Parts, all on 127.0.0.1 and all stopped in a finally block:

- callee A, `manage.py run_callee --record-dir --dtmf`: answers the probe calls, plays its 440 Hz
  tone (1 s on, 0.25 s off) and records what it hears; its JSON sidecar times every tone burst it
  sent and every 20 ms frame written to the WAV, with the clock ticks of its conference bridge;
- callee B, `run_callee --record-dir`: the peer of the baseline call, which has no engine and no
  bridge: SIPp places it (bench/sipp/uac_direct.xml) and a plain UDP socket of ours carries RTP;
- an agent, a Twilio Media Streams WebSocket server in a process of its own (one asyncio loop;
  "probe" streams run a timed script, "echo" streams send every frame straight back);
- the engine pool, `manage.py run_engine --processes P`, as in production, fed by attempts that
  the real worker code approves (attempt_process) in a database of its own (dialer_bench_bridge);
- SIPp as the far end of the load phases (bench/sipp/uas_answer_hold.xml, as bench/engine.py).

Every time is time.monotonic(): CLOCK_MONOTONIC is one clock for all processes of the machine, so
the callee's sidecar, the agent and our socket compare directly.

Phases: (1) baseline: the callee's own audio path with a plain RTP socket as the other end;
(2) bridged latency: probe calls alone, with a packet capture on lo of the engines' RTP to the
callee; (3) load, media only: N calls to SIPp, no agent; (4) load, bridged: the same N calls with
an echoing agent, plus probe calls (latency under load). LEGEND below says what each figure is.
The last line printed is one JSON object.

Needs root or CAP_NET_RAW, like bench/engine.py: SIPp plays RTP from a pcap through a raw socket,
and the capture on lo is an AF_PACKET socket (without it the on-the-wire figures are left out).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.engine import (  # noqa: E402
    AnsweredPoller,
    CpuWindow,
    Sipp,
    _bound_udp_ports,
    _pids_named,
    wait_until,
    write_hold_pcap,
)
from bench.setup_django import setup_django  # noqa: E402

if TYPE_CHECKING:
    from dialer.processes import ManagedProcess

with warnings.catch_warnings():
    # Deprecated (gone in 3.13), but the project's G.711 choice too (telephony/bridge/audio.py).
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

HOST = "127.0.0.1"
DATABASE = "dialer_bench_bridge"
UAC_DIRECT = ROOT / "bench" / "sipp" / "uac_direct.xml"
SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_S = 0.020
EDGE_PEAK = 1000  # the callee's threshold (telephony/callee.py): a frame peaking here is "sound"
QUIET_BEFORE_ONSET = 3  # an onset counts only after this many quiet frames
SENDER = "1101BENCHBRIDGE"
CLI_SIPP, CLI_CALLEE = "+911600900911", "+911600900912"

# The probe script (agent side, and the same shape for the baseline's RTP socket).
SETTLE_S = 1.0  # after the stream starts: let the jitter buffers settle
BURSTS = 12  # 100 ms tone bursts after silence: agent -> callee onsets
BURST_FRAMES = 5
BURST_GAP_S = 0.42  # longer than any plausible one-way delay, so each onset has one sender
BARGE_INS = 5  # 2 s of tone, then `clear` while it plays
BARGE_TONE_FRAMES = 100
BARGE_AFTER_S = 0.5
BARGE_QUIET_S = 0.6
MATCH_WINDOW_S = 0.35  # an onset further than this from its cause is reported as unmatched
# Callee A's digits. The RFC 4733 one goes out inside the third 250 ms pause of the tone (from
# 3.52 s after the answer): telephone-events replace the audio while they last, and in the
# middle of a burst they would cut it and fake a new onset.
CALLEE_DTMF = "3540:5:rfc2833,4000:9:info"


LEGEND = """\
What each figure is (all times CLOCK_MONOTONIC, one clock for every process of the machine):
  callee -> agent   callee A's conference clock tick that sends the first frame of a burst of its
                    tone as RTP (its sidecar) -> the agent receives the media message carrying it:
                    the RTP relay and the WebSocket (with ENGINE_BRIDGE_MEDIA=tap: the engine's
                    jitter buffer and clock tick and the tap as well).
  agent -> callee   the agent's ws.send of 100 ms of tone after silence -> callee A plays its first
                    sample (WAV offset mapped to time by the sidecar's clock ticks): the bridge, the
                    relay's 20 ms tick, the network, and callee A's own jitter buffer and playout
                    (phase 1 and "callee playout" show that last part alone).
  agent -> wire     the same sends -> the engine's first RTP packet of the burst (capture on lo).
  barge-in          the agent's ws.send of `clear` while 2 s of tone is queued -> the tone stops in
                    callee A's WAV ("at the callee") / the engine's first silent packet ("on the
                    wire", which is what "clear received -> outbound audio stops" means).
  DTMF              callee A's Call.sendDtmf -> the agent receives the `dtmf` message (signalling).
  calls per core    100 / (CPU of all engine processes, % of one core, per bridged call), over a
                    window with N echo calls and the probe calls up; phase 3 is the same with no
                    agent (media only), the baseline cost of a call.
The JSON's first four keys come from phase 2 (latency, p95) and phase 4 (calls per core)."""


# -- small helpers ---------------------------------------------------------------------------------
def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def summary(label: str, samples_s: list[float]) -> str:
    if not samples_s:
        return f"{label}: no samples"
    ms = [s * 1000 for s in samples_s]
    return (
        f"{label}: n={len(ms)} min {min(ms):.1f} p50 {pct(ms, 0.5):.1f} p95 {pct(ms, 0.95):.1f}"
        f" max {max(ms):.1f} ms"
    )


def p95_ms(samples_s: list[float]) -> float | None:
    return round(pct(samples_s, 0.95) * 1000, 1) if samples_s else None


def tone_ulaw(frames: int, hz: float = 1000.0, amplitude: int = 8000) -> bytes:
    """mu-law tone starting at its peak (cosine), so its first sample is already loud."""
    n = frames * FRAME_SAMPLES
    pcm = struct.pack(
        f"<{n}h", *(int(amplitude * math.cos(2 * math.pi * hz * i / SAMPLE_RATE)) for i in range(n))
    )
    return audioop.lin2ulaw(pcm, 2)


SILENCE_ULAW = b"\xff" * FRAME_SAMPLES


def ulaw_peak(ulaw: bytes) -> int:
    return audioop.max(audioop.ulaw2lin(ulaw, 2), 2) if ulaw else 0


class OnsetDetector:
    """Frame by frame: True on a loud frame that follows QUIET_BEFORE_ONSET quiet ones."""

    def __init__(self) -> None:
        self.quiet_run = 0

    def feed(self, peak: int) -> bool:
        if peak < EDGE_PEAK:
            self.quiet_run += 1
            return False
        onset = self.quiet_run >= QUIET_BEFORE_ONSET
        self.quiet_run = 0
        return onset


def latest_before(times: Iterable[float], t: float) -> float | None:
    """The latest of times at or before t (None if none)."""
    best: float | None = None
    for x in times:
        if x <= t and (best is None or x > best):
            best = x
    return best


# -- the callee's recordings -----------------------------------------------------------------------
@dataclass
class Recording:
    """One call as callee A or B heard it: sound segments on the WAV's clock, and its sidecar."""

    number: str
    sidecar: dict[str, Any]
    segments: list[tuple[float, float | None, bool]]  # (on, off, onset after quiet), monotonic
    probe_mismatch_frames: int  # WAV edges vs the sidecar's own edges (should be 0)
    frames: int

    @classmethod
    def load(cls, sidecar_path: Path) -> Recording:
        info = json.loads(sidecar_path.read_text())
        received = info["received"]
        # WAV frame i was written by the tick at first + i * period. A frame handed over at a
        # tick plays from that tick on, so its sample j plays j / 8000 s later: sound starts at
        # its first loud sample and stops after its last one.
        first, period = tick_clock(received)
        with wave.open(str(sidecar_path.with_name(info["wav"]))) as wav:
            pcm = wav.readframes(wav.getnframes())
        frames = [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]
        segments: list[tuple[float, float | None, bool]] = []
        detector = OnsetDetector()
        loud_before = False
        wav_edges: list[tuple[str, int]] = []
        for i, frame in enumerate(frames):
            peak = audioop.max(frame, 2)
            after_quiet = detector.feed(peak)
            loud = peak >= EDGE_PEAK
            if loud and not loud_before:
                j = _loud_samples(frame)[0]
                segments.append((first + i * period + j / SAMPLE_RATE, None, after_quiet))
                wav_edges.append(("on", i))
            elif loud_before and not loud:
                j = _loud_samples(frames[i - 1])[-1] + 1
                on, _, q = segments[-1]
                segments[-1] = (on, first + (i - 1) * period + j / SAMPLE_RATE, q)
                wav_edges.append(("off", i))
            loud_before = loud
        own = [(e["kind"], e["frame"]) for e in received["edges"]]
        mismatch = sum(1 for a, b in zip(wav_edges, own, strict=False) if a != b)
        mismatch += abs(len(wav_edges) - len(own))
        return cls(info["number"], info, segments, mismatch, len(frames))

    @property
    def tone_onsets(self) -> list[float]:
        """When each burst of the callee's tone went out: the tick of its first frame."""
        tone = self.sidecar["tone"]
        onsets = tone.get("onsets", [])
        if not onsets or tone.get("last_frame_mono") is None:
            return [e["mono"] for e in onsets]
        first, period = tick_clock(tone)
        return [first + e["frame"] * period for e in onsets]


def tick_clock(log: dict[str, Any]) -> tuple[float, float]:
    """(time of frame 0, tick period) of a callee frame log ("received" or "tone" in a sidecar).

    Each stamp there is taken in a Python callback that runs a little after its clock tick,
    later still when the callee's main loop holds the GIL; never earlier. So the tick period is
    measured over the whole log (20 ms on CLOCK_MONOTONIC unless the callee's clock fell
    behind), and frame 0's tick is the earliest that any stamp implies."""
    first, last, n = log["first_frame"]["mono"], log["last_frame_mono"], log["frames"]
    period = (last - first) / (n - 1) if n > 1 else FRAME_S
    implied = [e["mono"] - e["frame"] * period for e in log.get("edges", log.get("onsets", []))]
    return min([first, *implied]), period


def _loud_samples(frame: bytes) -> list[int]:
    samples = struct.unpack(f"<{len(frame) // 2}h", frame)
    return [j for j, v in enumerate(samples) if abs(v) >= EDGE_PEAK]


def load_recordings(record_dir: Path) -> dict[str, Recording]:
    out: dict[str, Recording] = {}
    for path in sorted(record_dir.glob("*.json")):
        rec = Recording.load(path)
        out[rec.number] = rec
    return out


# -- the agent -------------------------------------------------------------------------------------
@dataclass
class StreamLog:
    mode: str
    campaign_id: str
    number: str
    stream_sid: str
    started: float
    frames_in: int = 0
    frames_out: int = 0
    onsets: list[float] = field(default_factory=list)  # arrival of a media frame with an onset
    sends: list[tuple[str, float]] = field(default_factory=list)  # (burst | long | clear, when)
    dtmf: list[tuple[str, float]] = field(default_factory=list)
    ended: float | None = None


class Agent:
    """A Twilio Media Streams agent on its own asyncio loop thread. A stream's campaignId picks
    its mode from `modes`: probe, echo, or (unknown) listen."""

    def __init__(self) -> None:
        self.modes: dict[str, str] = {}
        self.streams: list[StreamLog] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="agent", daemon=True)
        self._server: Any = None
        self._burst = tone_ulaw(BURST_FRAMES)
        self._long = tone_ulaw(BARGE_TONE_FRAMES)

    def start(self) -> str:
        from websockets.asyncio.server import serve

        self._thread.start()

        async def open_server() -> Any:
            return await serve(self._handle, HOST, 0, compression=None, max_size=2**24)

        self._server = asyncio.run_coroutine_threadsafe(open_server(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"ws://{HOST}:{self.port}"

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        except Exception as exc:  # best effort at teardown
            print(f"agent: close failed: {exc!r}")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def frames(self) -> tuple[int, int]:
        """Media frames received from and sent to the bridge so far, over all streams."""
        streams = list(self.streams)
        return sum(s.frames_in for s in streams), sum(s.frames_out for s in streams)

    def snapshot(self) -> list[StreamLog]:
        """A copy of every stream's log, taken on the loop so that none is half-updated."""

        async def take() -> list[StreamLog]:
            return copy.deepcopy(self.streams)

        return asyncio.run_coroutine_threadsafe(take(), self._loop).result(10)

    async def _handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        log: StreamLog | None = None
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("event") == "start":
                    start = msg["start"]
                    params = start.get("customParameters") or {}
                    campaign_id = str(params.get("campaignId", ""))
                    log = StreamLog(
                        self.modes.get(campaign_id, "listen"), campaign_id,
                        str(params.get("number", "")), start["streamSid"], time.monotonic(),
                    )  # fmt: skip
                    self.streams.append(log)
                    break
            if log is None:
                return
            if log.mode == "echo":
                await self._echo(ws, log)
            elif log.mode == "probe":
                await self._probe(ws, log)
            else:
                await self._listen(ws, log, None)
        except ConnectionClosed:
            pass
        finally:
            if log is not None:
                log.ended = time.monotonic()

    async def _echo(self, ws: Any, log: StreamLog) -> None:
        # Straight back, payload untouched: the agent's own cost stays small, so the engines'
        # CPU is what the measurement sees. Built by hand: base64 needs no JSON escaping.
        head = '{"event":"media","streamSid":"' + log.stream_sid + '","media":{"payload":"'
        key = '"payload":"'
        async for raw in ws:
            # The bridge writes compact JSON: find the payload without parsing the message.
            at = raw.find(key) if isinstance(raw, str) else -1
            if at >= 0:
                start = at + len(key)
                payload = raw[start : raw.index('"', start)]
                log.frames_in += 1
                await ws.send(head + payload + '"}}')
                log.frames_out += 1
            elif json.loads(raw).get("event") == "stop":
                return

    async def _listen(self, ws: Any, log: StreamLog, detector: OnsetDetector | None) -> None:
        async for raw in ws:
            now = time.monotonic()
            msg = json.loads(raw)
            event = msg.get("event")
            if event == "media":
                log.frames_in += 1
                if detector is not None:
                    peak = ulaw_peak(base64.b64decode(msg["media"]["payload"]))
                    if detector.feed(peak):
                        log.onsets.append(now)
            elif event == "dtmf":
                log.dtmf.append((str(msg["dtmf"]["digit"]), now))
            elif event == "stop":
                return

    async def _probe(self, ws: Any, log: StreamLog) -> None:
        sid = log.stream_sid

        def media(ulaw: bytes) -> str:
            payload = base64.b64encode(ulaw).decode()
            return json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})

        burst, long, clear = (
            media(self._burst),
            media(self._long),
            json.dumps({"event": "clear", "streamSid": sid}),
        )
        listener = asyncio.create_task(self._listen(ws, log, OnsetDetector()))
        try:
            await asyncio.sleep(SETTLE_S)
            # Random extra waits put the sends at every phase of the engines' 20 ms clock.
            for _ in range(BURSTS):
                log.sends.append(("burst", time.monotonic()))
                await ws.send(burst)
                await asyncio.sleep(BURST_GAP_S + random.uniform(0, 0.02))
            for _ in range(BARGE_INS):
                log.sends.append(("long", time.monotonic()))
                await ws.send(long)
                await asyncio.sleep(BARGE_AFTER_S + random.uniform(0, 0.02))
                log.sends.append(("clear", time.monotonic()))
                await ws.send(clear)
                await asyncio.sleep(BARGE_QUIET_S)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await ws.close()  # the agent hangs up: the engine ends the call


def _agent_process(conn: Connection) -> None:
    """The agent's own process: no GIL shared with this benchmark's database work. Commands come
    down the pipe as (name, argument) and each gets one answer."""
    agent = Agent()
    conn.send(agent.start())
    try:
        while True:
            command, argument = conn.recv()
            if command == "mode":
                agent.modes[argument[0]] = argument[1]
                conn.send(None)
            elif command == "frames":
                conn.send(agent.frames())
            elif command == "streams":
                conn.send(agent.snapshot())
            else:
                break
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        agent.stop()
        conn.close()


class AgentProcess:
    """Runs the agent in a process of its own (spawned: nothing of ours is inherited)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=_agent_process, args=(child,), name="bench-agent")
        self.url = ""

    @property
    def pid(self) -> int:
        return self._proc.pid or 0

    def start(self) -> str:
        self._proc.start()
        if not self._conn.poll(30):
            raise RuntimeError("the agent process did not start")
        self.url = self._conn.recv()
        return self.url

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        if not self._conn.poll(30):
            raise RuntimeError(f"the agent did not answer {command!r}")
        return self._conn.recv()

    def set_mode(self, campaign_id: int, mode: str) -> None:
        self._ask("mode", (str(campaign_id), mode))

    def frames(self) -> tuple[int, int]:
        return tuple(self._ask("frames"))  # type: ignore[return-value]

    def streams(self, campaign_id: int | None = None) -> list[StreamLog]:
        streams: list[StreamLog] = self._ask("streams")
        return [s for s in streams if campaign_id is None or s.campaign_id == str(campaign_id)]

    def stop(self) -> None:
        if self._proc.pid is None:
            return
        if self._proc.is_alive():
            try:
                self._conn.send(("stop", None))
            except OSError:
                pass
            self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)


# -- the baseline: a plain RTP socket as the callee's other end ----------------------------------
class DirectPeer(threading.Thread):
    """Receives the callee's RTP (PCMU) and sends it 20 ms PCMU packets from the same port: mostly
    silence, and after SETTLE_S the same bursts the probe agent sends, noting when each began."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="direct-rtp")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port: int = self.sock.getsockname()[1]
        self.halt = threading.Event()
        self.onsets: list[float] = []  # arrival of a packet whose audio turned on
        self.bursts: list[float] = []  # when the first packet of each burst was sent
        self.packets_in = 0
        self.packets_out = 0

    def run(self) -> None:
        import select

        remote: tuple[str, int] | None = None
        detector = OnsetDetector()
        burst = tone_ulaw(BURST_FRAMES)
        seq, ts, ssrc = random.randrange(65536), random.randrange(2**32), random.randrange(2**32)
        script: list[tuple[float, bytes]] = []  # (when, audio) still to send
        next_send = 0.0
        playing: list[bytes] = []
        while not self.halt.is_set():
            now = time.monotonic()
            wait = max(0.0, next_send - now) if remote else 0.05
            readable, _, _ = select.select([self.sock], [], [], wait)
            if readable:
                data, addr = self.sock.recvfrom(2048)
                arrived = time.monotonic()
                if len(data) > 12 and data[1] & 0x7F == 0:  # PCMU audio, not telephone-event
                    self.packets_in += 1
                    if detector.feed(ulaw_peak(data[12:])):
                        self.onsets.append(arrived)
                if remote is None:
                    remote = addr  # the callee sends from the port it listens on
                    start = arrived + SETTLE_S
                    script = [(start + i * (BURST_GAP_S + 0.01), burst) for i in range(BURSTS)]
                    next_send = arrived
                continue
            if remote is None or time.monotonic() < next_send:
                continue
            if script and script[0][0] <= next_send:
                _, audio = script.pop(0)
                playing = [audio[i : i + FRAME_SAMPLES] for i in range(0, len(audio), 160)]
                self.bursts.append(time.monotonic())
            payload = playing.pop(0) if playing else SILENCE_ULAW
            header = struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc)
            self.sock.sendto(header + payload, remote)
            self.packets_out += 1
            seq, ts = (seq + 1) & 0xFFFF, (ts + FRAME_SAMPLES) & 0xFFFFFFFF
            next_send += FRAME_S
        self.sock.close()


# -- the database side -------------------------------------------------------------------------
def make_campaign(
    *, name: str, trunk_uri: str, cli: str, numbers: list[str], agent_url: str, max_call_s: int
) -> int:
    """A running transactional bfsi campaign with one queued attempt per number."""
    from django.utils import timezone

    from campaigns.models import CallAttempt, CallerId, Campaign, Contact, ContactList, Trunk
    from compliance.models import Sender

    sender, _ = Sender.objects.update_or_create(
        dlt_entity_id=SENDER, defaults={"name": "Bench bridge", "sector": "bfsi"}
    )
    trunk, _ = Trunk.objects.update_or_create(
        name=f"bench-bridge-{cli[-2:]}",
        defaults={"sip_uri": trunk_uri, "max_cps": 1000, "max_channels": 10000},
    )
    caller_id, _ = CallerId.objects.update_or_create(
        number=cli, defaults={"sender": sender, "trunk": trunk}
    )
    campaign = Campaign.objects.create(
        name=name, sender=sender, purpose="transactional", trunk=trunk, status="running",
        max_call_s=max_call_s, ring_timeout_s=10, max_concurrent=100000, max_cps=1000,
        agent_url=agent_url,
    )  # fmt: skip
    campaign.caller_ids.set([caller_id])
    clist = ContactList.objects.create(campaign=campaign, name=name)
    people = Contact.objects.bulk_create(
        Contact(campaign=campaign, contact_list=clist, number=n, status="in_progress", attempts=1)
        for n in numbers
    )
    now = timezone.now()
    CallAttempt.objects.bulk_create(
        CallAttempt(campaign=campaign, contact=c, attempt_number=1, number=c.number, queued_at=now)
        for c in people
    )
    return int(campaign.pk)


def approve(campaign_id: int) -> dict[str, int]:
    """Claim, check and approve every attempt with the real worker code; the pool dials them."""
    from campaigns.models import CallAttempt
    from campaigns.services.claim_check import attempt_process

    results: dict[str, int] = {}
    ids = CallAttempt.objects.filter(campaign_id=campaign_id).order_by("id")
    for attempt_id in ids.values_list("id", flat=True):
        r = attempt_process(attempt_id=attempt_id)
        results[r] = results.get(r, 0) + 1
    return results


def attempts_summary(campaign_ids: list[int]) -> dict[str, int]:
    from campaigns.models import CallAttempt

    out: dict[str, int] = {}
    rows = CallAttempt.objects.filter(campaign_id__in=campaign_ids)
    for status, cause in rows.values_list("status", "hangup_cause"):
        key = f"{status}/{cause or '-'}"
        out[key] = out.get(key, 0) + 1
    return out


def all_final(campaign_ids: list[int]) -> bool:
    from campaigns.models import CallAttempt
    from campaigns.models.attempt import FINAL_STATUSES

    live = CallAttempt.objects.filter(campaign_id__in=campaign_ids).exclude(
        status__in=FINAL_STATUSES
    )
    return not live.exists()


# -- the wire: RTP the engines send to callee A, seen on the loopback interface -----------------
class WireTap(threading.Thread):
    """Captures the RTP sent to some UDP ports on `lo` (an AF_PACKET socket: root or CAP_NET_RAW)
    and keeps, per destination port, each audio packet's kernel timestamp and peak sample.

    Kernel timestamps (SO_TIMESTAMPNS, CLOCK_REALTIME) are moved onto CLOCK_MONOTONIC with one
    offset read at start: this thread shares the GIL with the agent, so its own clock readings
    could lag the packets by milliseconds."""

    SO_TIMESTAMPNS = 35  # Linux; the stdlib does not name it on every version
    ETH_P_ALL = 0x0003

    def __init__(self, ports: range) -> None:
        super().__init__(daemon=True, name="wiretap")
        self.ports = ports
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(self.ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.offset = time.time() - time.monotonic()
        self.halt = threading.Event()
        self.packets: dict[int, list[tuple[float, int]]] = {}

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                try:
                    data, ancillary, _, addr = self.sock.recvmsg(2048, 64)
                except TimeoutError:
                    continue
                # Loopback shows each packet twice, going out and coming in: keep one.
                if addr[2] == socket.PACKET_OUTGOING or data[12:14] != b"\x08\x00":
                    continue
                ihl = (data[14] & 0x0F) * 4
                if data[23] != 17:  # not UDP
                    continue
                udp = 14 + ihl
                (dport,) = struct.unpack_from("!H", data, udp + 2)
                rtp = data[udp + 8 :]
                if dport not in self.ports or len(rtp) <= 12 or rtp[0] & 0x0F:
                    continue
                payload_type = rtp[1] & 0x7F
                if payload_type not in (0, 8):  # PCMU, PCMA; not telephone-event, not RTCP
                    continue
                stamp = time.monotonic()
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        stamp = sec + nsec / 1e9 - self.offset
                pcm = (audioop.ulaw2lin if payload_type == 0 else audioop.alaw2lin)(rtp[12:], 2)
                self.packets.setdefault(dport, []).append((stamp, audioop.max(pcm, 2)))
        finally:
            self.sock.close()


def wire_segments(packets: list[tuple[float, int]]) -> list[tuple[float, float | None, bool]]:
    """(first loud packet, first quiet packet after it, after quiet?) per run of sound."""
    segments: list[tuple[float, float | None, bool]] = []
    detector = OnsetDetector()
    loud_before = False
    for stamp, peak in sorted(packets):
        after_quiet = detector.feed(peak)
        loud = peak >= EDGE_PEAK
        if loud and not loud_before:
            segments.append((stamp, None, after_quiet))
        elif loud_before and not loud:
            on, _, q = segments[-1]
            segments[-1] = (on, stamp, q)
        loud_before = loud
    return segments


# -- analysis --------------------------------------------------------------------------------------
# The callee's probe stamps a tick from a Python callback that runs after the stream has sent
# that tick's RTP, a fraction of a millisecond later: allow this much "early" arrival.
PROBE_SLACK_S = 0.002


@dataclass
class Latencies:
    callee_to_agent: list[float] = field(default_factory=list)
    agent_to_callee: list[float] = field(default_factory=list)
    bargein: list[float] = field(default_factory=list)
    agent_to_wire: list[float] = field(default_factory=list)
    bargein_wire: list[float] = field(default_factory=list)
    callee_playout: list[float] = field(default_factory=list)  # wire -> WAV, same onset
    dtmf: dict[str, list[float]] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)
    probe_mismatch_frames: int = 0
    calls: int = 0

    def miss(self, what: str, n: int = 1) -> None:
        if n:
            self.unmatched[what] = self.unmatched.get(what, 0) + n


def match(
    effects: Iterable[float], causes: list[float], *, slack: float = 0.0
) -> tuple[list[tuple[float, float]], int]:
    """Pairs each effect with the latest cause at most MATCH_WINDOW_S before it (and at most
    `slack` after it): ([(cause, effect)], how many effects had no cause)."""
    pairs: list[tuple[float, float]] = []
    missed = 0
    for effect in effects:
        cause = latest_before(causes, effect + slack)
        if cause is None or effect - cause > MATCH_WINDOW_S:
            missed += 1
        else:
            pairs.append((cause, effect))
    return pairs, missed


def _sound_latencies(
    out: Latencies,
    sends: list[tuple[str, float]],
    segments: list[tuple[float, float | None, bool]],
    onsets: list[float],
    stops: list[float],
    where: str,
) -> dict[float, float]:
    """Onset latencies (into `onsets`) and barge-in stops (into `stops`) of one call's sound
    segments against the agent's sends; returns {send time: onset time}."""
    causes = [t for kind, t in sends if kind in ("burst", "long")]
    longs = {t for kind, t in sends if kind == "long"}
    clears = sorted(t for kind, t in sends if kind == "clear")
    starts = [on for on, _, after_quiet in segments if after_quiet]
    pairs, missed = match(starts, causes)
    out.miss(f"agent->{where} onset", missed)
    by_start = {on: off for on, off, _ in segments}
    for cause, on in pairs:
        onsets.append(on - cause)
        if cause in longs:
            # barge-in: `clear` went after this tone started; its end is where the sound stops.
            clear = next((c for c in clears if c > cause), None)
            off = by_start[on]
            if clear is None or off is None or off < clear:
                out.miss(f"barge-in at {where}")
            else:
                stops.append(off - clear)
    return {cause: on for cause, on in pairs}


def analyse_probe_calls(
    streams: list[StreamLog], recordings: dict[str, Recording], wire: WireTap | None = None
) -> Latencies:
    out = Latencies()
    for stream in streams:
        rec = recordings.get(stream.number)
        if rec is None:
            out.miss("no recording")
            continue
        out.calls += 1
        out.probe_mismatch_frames += rec.probe_mismatch_frames
        # callee -> agent: the tick that sent a tone burst's first frame as RTP -> the agent
        # receiving the media message that carries that frame.
        pairs, missed = match(stream.onsets, rec.tone_onsets, slack=PROBE_SLACK_S)
        out.callee_to_agent += [effect - cause for cause, effect in pairs]
        out.miss("callee->agent onset", missed)
        # agent -> callee: the agent's ws.send of a burst -> the first sample of it that the
        # callee plays out (WAV), and -> the first packet of it on the wire.
        segments = [seg for seg in rec.segments if seg[0] >= stream.started]
        at_callee = _sound_latencies(
            out, stream.sends, segments, out.agent_to_callee, out.bargein, "callee"
        )
        local = rec.sidecar.get("rtp", {}).get("local", "")
        if wire is not None and local:
            packets = wire.packets.get(int(local.rsplit(":", 1)[1]), [])
            at_wire = _sound_latencies(
                out, stream.sends, wire_segments(packets), out.agent_to_wire, out.bargein_wire,
                "wire",
            )  # fmt: skip
            out.callee_playout += [
                at_callee[c] - at_wire[c] for c in at_callee.keys() & at_wire.keys()
            ]
        # DTMF: the callee's sendDtmf -> the agent receiving the `dtmf` message (signalling).
        for sent_dtmf in rec.sidecar["dtmf"]:
            got = [t for d, t in stream.dtmf if d == sent_dtmf["digit"] and t >= sent_dtmf["mono"]]
            key = f"dtmf {sent_dtmf['method']}"
            if got:
                out.dtmf.setdefault(key, []).append(min(got) - sent_dtmf["mono"])
            else:
                out.miss(key)
        extra = len(stream.dtmf) - len(rec.sidecar["dtmf"])
        if extra > 0:
            out.miss("dtmf events beyond the digits sent", extra)
    return out


def report_latencies(label: str, lat: Latencies, *, peer: str = "agent") -> None:
    print(f"{label}: {lat.calls} call(s)")
    lines = [
        (f"callee -> {peer}: a tone burst's first frame leaves the callee as RTP -> the {peer} "
         f"has it", lat.callee_to_agent),
        (f"{peer} -> callee: the {peer} sends a burst -> its first sample plays out of the "
         f"callee's jitter buffer (WAV)", lat.agent_to_callee),
        (f"{peer} -> wire: the {peer} sends a burst -> the engine sends its first RTP packet",
         lat.agent_to_wire),
        ("callee playout: that RTP packet on the wire -> the callee plays it (WAV)",
         lat.callee_playout),
        ("barge-in at the callee: the agent sends clear -> the tone stops in the callee's WAV",
         lat.bargein),
        ("barge-in on the wire: the agent sends clear -> the engine's first silent RTP packet",
         lat.bargein_wire),
    ]  # fmt: skip
    lines += [
        (f"{key}: the callee's sendDtmf -> the agent has the dtmf message", samples)
        for key, samples in sorted(lat.dtmf.items())
    ]
    for text, samples in lines:
        if samples:
            print("  " + summary(text, samples))
    if lat.unmatched:
        print(f"  unmatched: {lat.unmatched}")
    if lat.probe_mismatch_frames:
        print(f"  WARNING: WAV edges differ from the callee's frame log in "
              f"{lat.probe_mismatch_frames} places: the WAV-to-time mapping is off")  # fmt: skip


# -- where the engines' CPU goes: per thread ---------------------------------------------------
def thread_ticks(pids: list[int]) -> dict[str, int]:
    """utime + stime per thread name over some processes: "main" for each main thread, else the
    name the thread gave the kernel (pjlib names its threads; Python's do not, and show as the
    process name)."""
    out: dict[str, int] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            name = "main" if tid == str(pid) else raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


# -- processes -------------------------------------------------------------------------------------
def pick_ports(processes: int) -> int:
    """A base SIP port with base-10..base+P-1 and every RTP band (engines, callees) unbound: SIPp
    takes base-10 (SIP) and base-8..base-5 (its audio and video RTP/RTCP), the callees base-3
    and base-2, the engines base..base+P-1."""
    from telephony.pjsip import media_port_range

    bound = _bound_udp_ports()
    for base in range(7100, 9000, 100):
        if (base % 1000) + processes >= 1000 or (base - 10) // 1000 != base // 1000:
            continue
        ports = set(range(base - 10, base + processes))
        for p in [base - 3, base - 2, *range(base, base + processes)]:
            lo, n = media_port_range(p)
            ports |= set(range(lo, lo + n))
        if not ports & bound:
            return base
    raise SystemExit("no free port range")


def callee_process(
    name: str, port: int, record_dir: Path, env: dict[str, str], *extra: str
) -> ManagedProcess:
    from dialer.processes import ManagedProcess, manage_cmd

    cmd = manage_cmd("run_callee", "--port", str(port), "--record-dir", str(record_dir),
                     "--talk-seconds", "120", *extra)  # fmt: skip
    return ManagedProcess(name, cmd, env=env, log_dir=record_dir.parent)


def run_direct_baseline(callee_port: int, record_dir: Path, workdir: Path) -> Latencies:
    """One call, SIPp as the caller and our socket as its RTP: the callee's own audio path."""
    peer = DirectPeer()
    peer.start()
    hold_ms = int((SETTLE_S + BURSTS * (BURST_GAP_S + 0.01) + 1.0) * 1000)
    cmd = ["sipp", "-sf", str(UAC_DIRECT), "-i", HOST, "-p", "0", f"{HOST}:{callee_port}",
           "-s", "5550", "-m", "1", "-timeout", "30s", "-timeout_error", "-nostdin",
           "-key", "rtp_port", str(peer.port), "-key", "hold_ms", str(hold_ms),
           "-trace_err", "-error_file", str(workdir / "sipp_direct_errors.log")]  # fmt: skip
    try:
        with (workdir / "sipp_direct.log").open("wb") as screen:
            done = subprocess.run(
                cmd, cwd=workdir, stdout=screen, stderr=screen, timeout=45, check=False
            )
    finally:
        peer.halt.set()
        peer.join(5)
    if done.returncode != 0:
        print(f"baseline call: sipp exited {done.returncode} (see {workdir})")
    wait_until(lambda: any(_ended(p) for p in record_dir.glob("*.json")), timeout=5, every=0.1)
    recordings = load_recordings(record_dir)
    out = Latencies()
    rec = recordings.get("5550")
    if rec is None:
        out.miss("no recording")
        return out
    out.calls = 1
    out.probe_mismatch_frames = rec.probe_mismatch_frames
    pairs, missed = match(peer.onsets, rec.tone_onsets, slack=PROBE_SLACK_S)
    out.callee_to_agent += [effect - cause for cause, effect in pairs]
    out.miss("callee->socket onset", missed)
    _sound_latencies(
        out, [("burst", t) for t in peer.bursts], rec.segments, out.agent_to_callee, [], "callee"
    )
    print(f"baseline call: {peer.packets_out} RTP packets sent, {peer.packets_in} received")
    return out


def _ended(sidecar: Path) -> bool:
    try:
        return json.loads(sidecar.read_text()).get("ended") is not None
    except (OSError, ValueError):
        return False


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    held: float  # mean answered calls during the CPU window
    cpu: dict[str, float]  # % of one core per process group
    frames_in_s: float  # media frames the agent received per second
    frames_out_s: float  # media frames the agent sent per second
    probe: Latencies | None

    @property
    def engine_pct_per_call(self) -> float:
        return self.cpu["engines"] / max(self.held, 1.0)


class Bench:
    """The parts of one run and the phases that use them."""

    def __init__(self, args: argparse.Namespace, *, url: str, workdir: Path) -> None:
        from dialer.processes import ManagedProcess, manage_cmd

        self.args = args
        self.processes: int = args.processes or math.ceil((args.calls + args.probe_calls) / 4) + 1
        self.workdir = workdir
        self.deadline = time.monotonic() + args.max_run_seconds
        self.t0 = time.monotonic()
        base = pick_ports(self.processes)
        self.sipp_port, sipp_media, self.callee_a, self.callee_b = (
            base - 10,
            base - 8,
            base - 3,
            base - 2,
        )
        env = dict(
            os.environ, DATABASE_URL=url, DIAL_APPROVAL_MAX_AGE_S="3600", LOG_LEVEL="WARNING"
        )
        env |= {"DEBUG": "0", "PYTHONUNBUFFERED": "1"}
        # Production settings: each key of its own (settings refuse a shared or missing one).
        env |= {k: secrets.token_hex(24) for k in ("SECRET_KEY", "AUDIT_KEY", "ENGINE_REST_SECRET")}
        self.rec_a, self.rec_b = workdir / "callee-a", workdir / "callee-b"
        self.proc_a = callee_process(
            "callee-a", self.callee_a, self.rec_a, env, "--dtmf", CALLEE_DTMF
        )
        self.proc_b = callee_process("callee-b", self.callee_b, self.rec_b, env)
        write_hold_pcap(workdir / "hold.pcap", seconds=args.hold + 15)
        self.sipp = Sipp(workdir=workdir, port=self.sipp_port, media_port=sipp_media,
                         lifetime_s=args.max_run_seconds + 60)  # fmt: skip
        self.pool = ManagedProcess(
            "engine-pool",
            manage_cmd("run_engine", "--processes", str(self.processes), "--base-port", str(base),
                       "--drain-seconds", "3"),
            env=env, log_dir=workdir,
        )  # fmt: skip
        self.agent = AgentProcess()
        self.agent_url = ""
        self.poller = AnsweredPoller()
        self.groups: dict[str, list[int]] = {}
        self._probe_numbers = iter([f"+91981{i:06d}0" for i in range(1000)])
        self._sipp_numbers = iter([f"+91982{i:07d}" for i in range(10 * args.calls + 10)])

    def start_peers(self) -> None:
        self.agent_url = self.agent.start()
        self.proc_a.start(ready="callee listening", timeout=30)
        self.proc_b.start(ready="callee listening", timeout=30)
        print(f"agent on {self.agent_url}; callee A on port {self.callee_a} (DTMF {CALLEE_DTMF}), "
              f"callee B on {self.callee_b}; logs and recordings in {self.workdir}")  # fmt: skip

    def start_pool(self) -> None:
        from django.utils import timezone

        from telephony.pool.models import EngineProcess
        from telephony.pool.selectors import engines_live

        self.sipp.start()
        t_start = timezone.now()
        t0 = time.monotonic()
        self.pool.start(ready="engine pool:", timeout=30)

        def fresh() -> list[EngineProcess]:
            return list(engines_live(now=timezone.now()).filter(started_at__gte=t_start))

        if not wait_until(lambda: len(fresh()) >= self.processes, timeout=120, every=0.5):
            raise RuntimeError(f"only {len(fresh())}/{self.processes} engines came up")
        pids = [e.pid for e in fresh()]
        print(f"engine pool: {len(pids)} processes up in {time.monotonic() - t0:.1f} s")
        self.groups = {
            "engines": pids,
            "supervisor": [self.pool.pid],
            "agent": [self.agent.pid],
            "bench": [os.getpid()],
            "sipp": [self.sipp.proc.pid] if self.sipp.proc else [],
            "callees": [self.proc_a.pid, self.proc_b.pid],
            "postgres": _pids_named("postgres"),
        }
        self.poller.start()

    def stop(self) -> None:
        self.poller.halt.set()
        self.pool.stop(timeout=30)
        self.sipp.stop()
        for proc in (self.proc_a, self.proc_b):
            proc.stop(timeout=10)
        self.agent.stop()

    def probe_campaign(self, label: str) -> int:
        numbers = [next(self._probe_numbers) for _ in range(self.args.probe_calls)]
        cid = make_campaign(
            name=f"bench bridge {label} {self.t0}", trunk_uri=f"sip:{HOST}:{self.callee_a}",
            cli=CLI_CALLEE, numbers=numbers, agent_url=self.agent_url, max_call_s=30,
        )  # fmt: skip
        self.agent.set_mode(cid, "probe")
        return cid

    def probe_latencies(self, campaign_id: int, wire: WireTap | None = None) -> Latencies:
        streams = self.agent.streams(campaign_id)
        return analyse_probe_calls(streams, load_recordings(self.rec_a), wire)

    def probe_alone(self) -> Latencies:
        from telephony.pjsip import media_port_range

        lo, n = media_port_range(self.callee_a)
        wire: WireTap | None = None
        try:
            # Only here: under load it would read every packet on lo and slow the agent down.
            wire = WireTap(range(lo, lo + n))
            wire.start()
        except PermissionError:
            print("2. no packet capture (needs root or CAP_NET_RAW): no on-the-wire figures")
        cid = self.probe_campaign("latency")
        try:
            print(f"2. probe calls: {approve(cid)}")
            wait_until(lambda: all_final([cid]), timeout=40, every=0.5)
            time.sleep(0.5)  # the callee writes its last sidecar as the BYE arrives
        finally:
            if wire is not None:
                wire.halt.set()
                wire.join(2)
        print(f"   attempts: {attempts_summary([cid])}")
        return self.probe_latencies(cid, wire)

    def _wait_answered(self, want: int, timeout: float) -> None:
        """Until `want` calls are answered, or the count stops moving for 3 s."""
        last = (time.monotonic(), -1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.poller.current
            if n >= want:
                return
            if n != last[1]:
                last = (time.monotonic(), n)
            elif time.monotonic() - last[0] > 3.0:
                return
            time.sleep(0.1)

    def load_phase(self, label: str, *, bridged: bool) -> LoadResult:
        args = self.args
        if time.monotonic() > self.deadline - args.hold - 15:
            raise TimeoutError(f"out of time before phase {label}")
        numbers = [next(self._sipp_numbers) for _ in range(args.calls)]
        cid = make_campaign(
            name=f"bench bridge {label} {self.t0}", trunk_uri=f"sip:{HOST}:{self.sipp_port}",
            cli=CLI_SIPP, numbers=numbers, agent_url=self.agent_url if bridged else "",
            max_call_s=args.hold,
        )  # fmt: skip
        ids = [cid]
        if bridged:
            self.agent.set_mode(cid, "echo")
        self.poller.campaign_ids = ids
        ta = time.monotonic()
        outcome = approve(cid)
        self._wait_answered(args.calls, timeout=args.hold / 2)
        print(f"{label}: {args.calls} attempts {outcome} in {time.monotonic() - ta:.1f} s; "
              f"{self.poller.current} answered")  # fmt: skip
        if bridged and args.probe_calls:
            ids.append(self.probe_campaign("under load"))
            self.poller.campaign_ids = ids
            approve(ids[-1])
            self._wait_answered(args.calls + args.probe_calls, timeout=4)
        frames0, w0 = self.agent.frames(), time.monotonic()
        threads0 = thread_ticks(self.groups["engines"])
        with CpuWindow(self.groups) as cpu:
            time.sleep(args.window)
        threads1 = thread_ticks(self.groups["engines"])
        frames1, w1 = self.agent.frames(), time.monotonic()
        clk_tck = os.sysconf("SC_CLK_TCK")
        by_thread = {
            name: 100.0 * (threads1[name] - threads0.get(name, 0)) / clk_tck / (w1 - w0)
            for name in threads1
        }
        held = self.poller.mean_between(w0, w1)
        cpu.report(f"{label}: CPU, {held:.1f} calls up (min {self.poller.min_between(w0, w1)})")
        result = LoadResult(
            held=held,
            cpu=cpu.pct,
            frames_in_s=(frames1[0] - frames0[0]) / (w1 - w0),
            frames_out_s=(frames1[1] - frames0[1]) / (w1 - w0),
            probe=None,
        )
        per_call = result.engine_pct_per_call
        split = ", ".join(
            f"{name} {pct_:.1f}%"
            for name, pct_ in sorted(by_thread.items(), key=lambda kv: -kv[1])
            if pct_ >= 0.5
        )
        print(f"{label}: engine CPU by thread (% of a core, all engines): {split}")
        print(f"{label}: engines {cpu.pct['engines']:.1f}% of a core = {per_call:.2f}% per call"
              f" -> {100 / per_call if per_call else float('inf'):.0f} calls per core")  # fmt: skip
        if bridged:
            fin, fout = result.frames_in_s, result.frames_out_s
            print(f"{label}: the agent got {fin:.0f} media frames/s ({fin / max(held, 1):.1f} per"
                  f" call) and echoed {fout:.0f}/s ({fout / args.calls:.1f} per echo call); "
                  f"20 ms frames are 50/s")  # fmt: skip
        wait_until(lambda: all_final(ids), timeout=args.hold + 15, every=0.5)
        outcomes = attempts_summary(ids)
        print(f"{label}: attempts {outcomes}")
        lost = sum(n for key, n in outcomes.items() if key.endswith("engine_lost"))
        if lost:
            print(f"{label}: WARNING: {lost} calls lost to an engine process that died (see "
                  f"{self.workdir / 'engine-pool.log'} and dmesg)")  # fmt: skip
        if len(ids) > 1:
            time.sleep(0.5)
            result.probe = self.probe_latencies(ids[-1])
            report_latencies(f"{label}: probe calls during the load", result.probe)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 30 echo calls keep a 2-core box short of saturation with the agent, SIPp and PostgreSQL on
    # it too; past that the calls starve each other and calls per core (a ratio) says no more.
    parser.add_argument("--calls", type=int, default=30, help="calls held in phases 3 and 4")
    parser.add_argument("--probe-calls", type=int, default=4, choices=range(0, 5))
    parser.add_argument("--hold", type=int, default=20, help="seconds each load call lasts")
    parser.add_argument("--window", type=float, default=7.0, help="CPU sampling window, s")
    parser.add_argument("--processes", type=int, default=None, help="default: enough for all")
    parser.add_argument("--max-run-seconds", type=int, default=240)
    args = parser.parse_args()
    os.environ["DIAL_APPROVAL_MAX_AGE_S"] = "3600"
    url = setup_django(database=DATABASE)

    from django.conf import settings

    workdir = Path(settings.VAR_DIR) / "bench-bridge"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bench = Bench(args, url=url, workdir=workdir)
    extra: dict[str, Any] = {"calls": args.calls, "processes": bench.processes}
    print(LEGEND)
    try:
        bench.start_peers()
        direct = run_direct_baseline(bench.callee_b, bench.rec_b, workdir)
        report_latencies(
            "1. baseline, RTP socket <-> callee (no engine, no bridge)", direct, peer="socket"
        )
        bench.start_pool()
        idle = bench.probe_alone() if args.probe_calls else Latencies()
        report_latencies("2. bridged, probe calls alone (engine pool otherwise idle)", idle)
        media_only = bench.load_phase("3. media only", bridged=False)
        bridged = bench.load_phase("4. bridged", bridged=True)
    finally:
        t_stop = time.monotonic()
        bench.stop()
        print(f"stopped everything in {time.monotonic() - t_stop:.1f} s")

    base_per_call, per_call = media_only.engine_pct_per_call, bridged.engine_pct_per_call
    print(f"bridge cost: {per_call:.2f}% of a core per bridged call against {base_per_call:.2f}% "
          f"with media only (+{per_call - base_per_call:.2f}% for the bridge)")  # fmt: skip
    under_load = bridged.probe or Latencies()
    result = {
        "callee_to_agent_p95_ms": p95_ms(idle.callee_to_agent),
        "agent_to_callee_p95_ms": p95_ms(idle.agent_to_callee),
        "bargein_ms": p95_ms(idle.bargein),
        "bridged_calls_per_core": round(100 / per_call, 1) if per_call else None,
    }
    extra |= {
        "bargein_p50_ms": p50_ms(idle.bargein),
        "bargein_wire_p95_ms": p95_ms(idle.bargein_wire),
        "agent_to_wire_p95_ms": p95_ms(idle.agent_to_wire),
        "callee_playout_p50_ms": p50_ms(idle.callee_playout),
        "callee_to_agent_p50_ms": p50_ms(idle.callee_to_agent),
        "agent_to_callee_p50_ms": p50_ms(idle.agent_to_callee),
        "baseline_callee_to_socket_p95_ms": p95_ms(direct.callee_to_agent),
        "baseline_socket_to_callee_p95_ms": p95_ms(direct.agent_to_callee),
        "under_load_callee_to_agent_p95_ms": p95_ms(under_load.callee_to_agent),
        "under_load_agent_to_callee_p95_ms": p95_ms(under_load.agent_to_callee),
        "under_load_bargein_p95_ms": p95_ms(under_load.bargein),
        "bridged_calls_held": round(bridged.held, 1),
        "engine_cpu_pct_bridged": round(bridged.cpu["engines"], 1),
        "engine_cpu_pct_per_bridged_call": round(per_call, 3),
        "engine_cpu_pct_per_media_only_call": round(base_per_call, 3),
        "media_only_calls_per_core": round(100 / base_per_call, 1) if base_per_call else None,
        "machine_cpu_pct_bridged": round(bridged.cpu["machine (all)"], 1),
        "agent_frames_in_per_s": round(bridged.frames_in_s),
        "agent_frames_out_per_s": round(bridged.frames_out_s),
        "dtmf_rfc2833_p50_ms": p50_ms(idle.dtmf.get("dtmf rfc2833", [])),
        "dtmf_info_p50_ms": p50_ms(idle.dtmf.get("dtmf info", [])),
    }
    print(
        "targets (DESIGN.md): "
        + "; ".join(
            f"{name} {value} {'<=' if le else '>='} {target}: "
            + ("n/a" if value is None else "met" if (value <= target) == le else "MISSED")
            for name, value, target, le in (
                ("callee->agent p95 ms", result["callee_to_agent_p95_ms"], 50, True),
                ("agent->callee p95 ms", result["agent_to_callee_p95_ms"], 50, True),
                ("barge-in p95 ms at the callee", result["bargein_ms"], 40, True),
                ("barge-in p95 ms on the wire", extra["bargein_wire_p95_ms"], 40, True),
                ("bridged calls per core", result["bridged_calls_per_core"], 50, False),
            )
        )
    )
    print(json.dumps(result | extra))


def p50_ms(samples_s: list[float]) -> float | None:
    return round(pct(samples_s, 0.5) * 1000, 1) if samples_s else None


if __name__ == "__main__":
    main()
