"""Capacity of the engine pool on this machine: concurrent answered calls with RTP, call setups per
second, setup time added by the dialer, memory and CPU per call.

    .venv/bin/python bench/engine.py [--processes 52] [--calls 208] [--hold 20]

Runs against a benchmark database of its own (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/dialer_bench_engine: engines dial any approved attempt in their
database, so sharing one with another benchmark's engine pool would mix the two runs) and a SIPp
UAS on 127.0.0.1 that answers at once and streams 20 ms PCMA RTP (bench/sipp/uas_answer_hold.xml).
It starts `manage.py run_engine --processes N`, waits for N fresh heartbeats, measures the idle
pool, then:

1. hold phase: `--calls` attempts of a transactional campaign, approved one after another by the
   real worker code (attempt_process: claim + compliance check + approve), held `--hold` seconds.
   It polls the database every 100 ms for the number of answered attempts, samples CPU (utime +
   stime from /proc) of every process involved over a window while the calls are held, RSS/PSS
   of the engines, and the kernel's UDP datagram counters (the RTP evidence);
2. setup phase: `--setup-calls` attempts held 1 s, approved in one transaction (their approved_at
   restamped with clock_timestamp() just before commit), so every engine is free and the pool's
   own setup rate shows: first to last INVITE.

Everything it starts (SIPp, the pool) is stopped in a finally block. The last line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.setup_django import setup_django  # noqa: E402

SCENARIO = ROOT / "bench" / "sipp" / "uas_answer_hold.xml"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLI = "+911600900900"
OWN_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/dialer_bench_engine"


# -- small /proc readers -------------------------------------------------------------------------
def _ticks(pid: int) -> int | None:
    """utime + stime of a process (all its threads), in clock ticks; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def _kb(pid: int, path: str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _system_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _udp_counters() -> dict[str, int]:
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], (int(v) for v in rows[1][1:]), strict=True))


def _pids_named(comm: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == comm:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _bound_udp_ports() -> set[int]:
    ports = set()
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            ports.add(int(line.split()[1].split(":")[1], 16))
    return ports


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- CPU accounting over a window ----------------------------------------------------------------
@dataclass
class CpuWindow:
    """CPU of named process groups over a wall-clock window, as % of one core."""

    groups: dict[str, list[int]]
    start: dict[str, int] = field(default_factory=dict)
    t0: float = 0.0
    sys0: tuple[int, int] = (0, 0)
    udp0: dict[str, int] = field(default_factory=dict)

    def _sample(self) -> dict[str, int]:
        return {
            name: sum(t for t in (_ticks(p) for p in pids) if t is not None)
            for name, pids in self.groups.items()
        }

    def __enter__(self) -> CpuWindow:
        self.start, self.t0 = self._sample(), time.monotonic()
        self.sys0, self.udp0 = _system_ticks(), _udp_counters()
        return self

    def __exit__(self, *exc: object) -> None:
        end, elapsed = self._sample(), time.monotonic() - self.t0
        busy1, total1 = _system_ticks()
        udp1 = _udp_counters()
        self.seconds = elapsed
        self.pct = {
            name: 100.0 * (end[name] - self.start[name]) / CLK_TCK / elapsed for name in end
        }
        busy = busy1 - self.sys0[0]
        # /proc/stat counts every core: 100% per core busy.
        self.pct["machine (all)"] = (
            100.0 * busy / max(1, total1 - self.sys0[1]) * (os.cpu_count() or 1)
        )
        self.udp_per_s = {k: (udp1[k] - self.udp0[k]) / elapsed for k in udp1}

    def report(self, label: str) -> None:
        parts = ", ".join(f"{k} {v:.1f}%" for k, v in self.pct.items())
        print(f"{label} ({self.seconds:.1f} s, % of one core): {parts}")


# -- SIPp ----------------------------------------------------------------------------------------
def write_hold_pcap(path: Path, *, seconds: float) -> None:
    """An Ethernet pcap of 20 ms PCMA RTP packets (A-law silence), `seconds` long.

    SIPp rewrites addresses and ports and recomputes the UDP checksum; the RTP header (sequence,
    timestamp) is sent as written, so it is continuous here.
    """
    packets = int(seconds * 50)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    payload = b"\xd5" * 160
    for i in range(packets):
        rtp = struct.pack("!BBHII", 0x80, 8 | (0x80 if i == 0 else 0), i & 0xFFFF, i * 160, 0xBE7C)
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp) + len(payload), 0)
        total = 20 + len(udp) + len(rtp) + len(payload)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, bytes(4), bytes(4))
        eth = b"\x00" * 12 + b"\x08\x00"
        frame = eth + ip + udp + rtp + payload
        usec = i * 20_000
        out.append(
            struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
        )
        out.append(frame)
    path.write_bytes(b"".join(out))


class Sipp:
    """A SIPp UAS in the foreground of its own session, stopped by its PID."""

    def __init__(self, *, workdir: Path, port: int, media_port: int, lifetime_s: int) -> None:
        self.workdir, self.port, self.media_port = workdir, port, media_port
        self.stat_file = workdir / "sipp_stats.csv"
        self.error_file = workdir / "sipp_errors.log"
        self.cmd = [
            "sipp", "-sf", str(SCENARIO), "-i", HOST, "-mi", HOST, "-p", str(port),
            "-mp", str(media_port), "-l", "5000", "-nostdin", "-timeout", f"{lifetime_s}s",
            "-trace_stat", "-stf", str(self.stat_file), "-fd", "1",
            "-trace_err", "-error_file", str(self.error_file),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.workdir / "sipp_stderr.log").open("wb") as err:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 5
        while self.port not in _bound_udp_ports():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sipp did not start: {self.cmd}; see {self.workdir}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=3)
                return
            except subprocess.TimeoutExpired:
                continue

    def stats(self) -> list[dict[str, str]]:
        """Rows of SIPp's statistics file (one per second)."""
        try:
            lines = self.stat_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        if len(lines) < 2:
            return []
        header = lines[0].rstrip(";").split(";")
        return [dict(zip(header, row.rstrip(";").split(";"), strict=False)) for row in lines[1:]]


# -- answered-call poller ------------------------------------------------------------------------
class AnsweredPoller(threading.Thread):
    """Counts attempts in status "answered" of some campaigns every 100 ms (its own database
    connection). campaign_ids may be replaced while it runs (bench/bridge.py does, per phase)."""

    def __init__(self, campaign_ids: list[int] | None = None) -> None:
        super().__init__(daemon=True)
        self.campaign_ids: list[int] = list(campaign_ids or [])
        self.samples: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from campaigns.models import CallAttempt

        try:
            while not self.halt.is_set():
                ids = list(self.campaign_ids)
                n = CallAttempt.objects.filter(campaign_id__in=ids, status="answered").count()
                self.samples.append((time.monotonic(), n))
                self.halt.wait(0.1)
        finally:
            connection.close()

    @property
    def current(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    @property
    def peak(self) -> int:
        return max((n for _, n in self.samples), default=0)

    def first_answer(self) -> float | None:
        return next((t for t, n in self.samples if n > 0), None)

    def mean_between(self, t0: float, t1: float) -> float:
        values = [n for t, n in self.samples if t0 <= t <= t1]
        return statistics.fmean(values) if values else 0.0

    def min_between(self, t0: float, t1: float) -> int:
        return min((n for t, n in self.samples if t0 <= t <= t1), default=0)


# -- database fixtures ---------------------------------------------------------------------------
def make_campaign(*, trunk_uri: str, name: str, hold_s: int, contacts: int, offset: int) -> int:
    """A transactional bfsi campaign on a 1600-series CLI with `contacts` queued attempts."""
    from django.utils import timezone

    from campaigns.models import CallAttempt, CallerId, Campaign, Contact, ContactList, Trunk
    from compliance.models import Sender

    sender, _ = Sender.objects.update_or_create(
        dlt_entity_id="1101BENCHENGINE", defaults={"name": "Bench engine", "sector": "bfsi"}
    )
    trunk, _ = Trunk.objects.update_or_create(
        name="bench-engine", defaults={"sip_uri": trunk_uri, "max_cps": 1000, "max_channels": 10000}
    )
    caller_id, _ = CallerId.objects.update_or_create(
        number=CLI, defaults={"sender": sender, "trunk": trunk}
    )
    campaign = Campaign.objects.create(
        name=name, sender=sender, purpose="transactional", trunk=trunk, status="running",
        max_call_s=hold_s, ring_timeout_s=10, max_concurrent=100000, max_cps=1000,
    )  # fmt: skip
    campaign.caller_ids.set([caller_id])
    clist = ContactList.objects.create(campaign=campaign, name=name)
    people = Contact.objects.bulk_create(
        Contact(campaign=campaign, contact_list=clist, number=f"+919800{offset + i:06d}",
                status="in_progress", attempts=1)
        for i in range(contacts)
    )  # fmt: skip
    now = timezone.now()
    CallAttempt.objects.bulk_create(
        CallAttempt(campaign=campaign, contact=c, attempt_number=1, number=c.number, queued_at=now)
        for c in people
    )
    return campaign.pk


def attempt_ids(campaign_id: int) -> list[int]:
    from campaigns.models import CallAttempt

    return list(
        CallAttempt.objects.filter(campaign_id=campaign_id)
        .order_by("id")
        .values_list("id", flat=True)
    )


def approve_one_by_one(ids: list[int]) -> dict[str, int]:
    from campaigns.services.claim_check import attempt_process

    results: dict[str, int] = {}
    for attempt_id in ids:
        r = attempt_process(attempt_id=attempt_id)
        results[r] = results.get(r, 0) + 1
    return results


def approve_together(ids: list[int]) -> dict[str, int]:
    """Approve all in one transaction; approved_at becomes the commit moment (clock_timestamp)."""
    from django.db import transaction
    from django.db.models import DateTimeField, Func

    from campaigns.models import CallAttempt
    from campaigns.services.claim_check import attempt_process

    results: dict[str, int] = {}
    with transaction.atomic():
        for attempt_id in ids:
            r = attempt_process(attempt_id=attempt_id)
            results[r] = results.get(r, 0) + 1
        CallAttempt.objects.filter(id__in=ids, approved_at__isnull=False).update(
            approved_at=Func(function="CLOCK_TIMESTAMP", output_field=DateTimeField())
        )
    return results


def attempt_rows(campaign_id: int) -> list[dict[str, Any]]:
    from campaigns.models import CallAttempt

    return [
        dict(row)
        for row in CallAttempt.objects.filter(campaign_id=campaign_id).values(
            "status", "disposition", "hangup_cause", "approved_at", "taken_at", "invite_at",
            "answered_at", "ended_at", "engine_id",
        )
    ]  # fmt: skip


def _ms(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds() * 1000


def latency_line(label: str, samples: list[float]) -> str:
    if not samples:
        return f"{label}: no samples"
    return (
        f"{label}: n={len(samples)} p50 {_pct(samples, 0.5):.1f} ms, p90 {_pct(samples, 0.9):.1f}"
        f" ms, p99 {_pct(samples, 0.99):.1f} ms, max {max(samples):.1f} ms"
    )


def counts(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key] or "-"] = out.get(r[key] or "-", 0) + 1
    return out


# -- the run -------------------------------------------------------------------------------------
def pick_base_port(processes: int) -> int:
    """A base SIP port whose N ports and the engines' RTP ranges are all unbound."""
    from telephony.pjsip import media_port_range

    bound = _bound_udp_ports()
    for base in range(7100, 9000, 100):
        ports = set(range(base - 10, base + processes))
        for p in range(base, base + processes):
            lo, n = media_port_range(p)
            ports |= set(range(lo, lo + n))
        if not ports & bound and (base % 1000) + processes < 1000:
            return base
    raise SystemExit("no free port range for the engine pool")


def wait_until(pred: Callable[[], bool], *, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return bool(pred())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=52)
    parser.add_argument("--calls", type=int, default=208)
    parser.add_argument("--hold", type=int, default=20, help="seconds each held call lasts")
    parser.add_argument(
        "--setup-calls", type=int, default=None, help="default: 4 x processes (every slot once)"
    )
    parser.add_argument("--window", type=float, default=10.0, help="CPU sampling window, s")
    parser.add_argument("--max-run-seconds", type=int, default=360)
    args = parser.parse_args()
    setup_calls = args.setup_calls or 4 * args.processes
    os.environ["DIAL_APPROVAL_MAX_AGE_S"] = "3600"
    os.environ.setdefault("BENCH_DATABASE_URL", OWN_DATABASE_URL)
    url = setup_django()
    run_deadline = time.monotonic() + args.max_run_seconds

    from django.conf import settings
    from django.utils import timezone

    from campaigns.models import CallAttempt
    from campaigns.models.attempt import FINAL_STATUSES
    from dialer.processes import ManagedProcess, manage_cmd
    from telephony.pool.models import EngineProcess
    from telephony.pool.selectors import engines_live

    workdir = Path(settings.VAR_DIR) / "bench-engine"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    base = pick_base_port(args.processes)
    sipp_port, media_port = base - 10, base - 8
    write_hold_pcap(workdir / "hold.pcap", seconds=args.hold + 15)
    sipp = Sipp(
        workdir=workdir, port=sipp_port, media_port=media_port, lifetime_s=args.max_run_seconds + 60
    )
    env = dict(os.environ, DATABASE_URL=url, DIAL_APPROVAL_MAX_AGE_S="3600", LOG_LEVEL="WARNING")
    # Engines as in production: DEBUG off (no per-query bookkeeping).
    env |= {"DEBUG": "0"}
    # Production settings: each key of its own (settings refuse a shared or missing one).
    env |= {k: secrets.token_hex(24) for k in ("SECRET_KEY", "AUDIT_KEY", "ENGINE_REST_SECRET")}
    pool = ManagedProcess(
        "engine-pool",
        manage_cmd("run_engine", "--processes", str(args.processes), "--base-port", str(base),
                   "--drain-seconds", "3"),
        env=env, log_dir=workdir,
    )  # fmt: skip
    result: dict[str, Any] = {"processes": args.processes}
    poller: AnsweredPoller | None = None
    try:
        sipp.start()
        print(f"sipp UAS on {HOST}:{sipp_port} (media {media_port}); logs in {workdir}")
        t_start = timezone.now()
        t0 = time.monotonic()
        pool.start(ready="engine pool:", timeout=30)

        def fresh() -> list[EngineProcess]:
            return list(engines_live(now=timezone.now()).filter(started_at__gte=t_start))

        if not wait_until(lambda: len(fresh()) >= args.processes, timeout=180, every=0.5):
            raise RuntimeError(f"only {len(fresh())}/{args.processes} engines came up")
        engines = fresh()
        pids = [e.pid for e in engines]
        print(f"pool: {len(pids)} engines up in {time.monotonic() - t0:.1f} s on ports {base}+")
        groups = {
            "engines": pids,
            "supervisor": [pool.pid],
            "postgres": _pids_named("postgres"),
            "sipp": [sipp.proc.pid] if sipp.proc else [],
            "bench": [os.getpid()],
        }
        rss_idle = sum(_kb(p, "status", "VmRSS:") for p in pids) / 1024
        pss_idle = sum(_kb(p, "smaps_rollup", "Pss:") for p in pids) / 1024
        time.sleep(1.0)
        with CpuWindow(groups) as idle:
            time.sleep(args.window)
        idle.report("idle pool")
        print(f"idle pool memory: RSS {rss_idle:.0f} MB ({rss_idle / len(pids):.1f} MB/process),"
              f" PSS {pss_idle:.0f} MB ({pss_idle / len(pids):.1f} MB/process)")  # fmt: skip

        # -- phase 1: held calls ------------------------------------------------------------
        hold_id = make_campaign(trunk_uri=f"sip:{HOST}:{sipp_port}", name=f"bench hold {t0}",
                                hold_s=args.hold, contacts=args.calls, offset=0)  # fmt: skip
        poller = AnsweredPoller([hold_id])
        poller.start()
        ta = time.monotonic()
        outcome = approve_one_by_one(attempt_ids(hold_id))
        approve_s = time.monotonic() - ta
        print(f"hold phase: {args.calls} attempts through attempt_process in {approve_s:.1f} s "
              f"({args.calls / approve_s:.0f}/s): {outcome}")  # fmt: skip
        last_change = [time.monotonic(), -1]

        def plateau() -> bool:
            n = poller.current if poller else 0
            if n != last_change[1]:
                last_change[:] = [time.monotonic(), n]
            return n >= args.calls or time.monotonic() - last_change[0] > 2.0

        wait_until(plateau, timeout=max(1.0, args.hold - 2), every=0.1)
        first = poller.first_answer() or time.monotonic()
        window = min(args.window, first + args.hold - time.monotonic() - 1.0)
        print(
            f"answered now: {poller.current} (peak so far {poller.peak}); CPU window {window:.1f} s"
        )
        rss_busy = pss_busy = 0.0
        held = 0.0
        if window >= 2:
            w0 = time.monotonic()
            with CpuWindow(groups) as busy:
                time.sleep(window / 2)
                rss_busy = sum(_kb(p, "status", "VmRSS:") for p in pids) / 1024
                pss_busy = sum(_kb(p, "smaps_rollup", "Pss:") for p in pids) / 1024
                time.sleep(window / 2)
            held = poller.mean_between(w0, time.monotonic())
            busy.report(f"held calls (mean {held:.0f} answered)")
            # Engines send RTP through UDP sockets (OutDatagrams); SIPp plays its pcap through a
            # raw socket (not counted as UDP out) into the engines' sockets (InDatagrams). SIPp
            # never reads its own media socket, so the engines' RTP ends as RcvbufErrors there.
            udp = busy.udp_per_s
            rtp_in, rtp_out = udp["InDatagrams"], udp["OutDatagrams"]
            print(
                f"UDP/s during the window: delivered {rtp_in:.0f} (SIPp -> engines), sent "
                f"{rtp_out:.0f} (engines -> SIPp), dropped at SIPp's unread media socket "
                f"{udp['RcvbufErrors']:.0f}, no port {udp['NoPorts']:.0f}; per held call "
                f"{rtp_in / max(1, held):.1f} in, {rtp_out / max(1, held):.1f} out "
                f"(20 ms RTP is 50/s each way)"
            )
            result["rtp_in_per_call_s"] = round(rtp_in / max(1, held), 1)
            result["rtp_out_per_call_s"] = round(rtp_out / max(1, held), 1)
            result["engine_cpu_pct_idle"] = round(idle.pct["engines"], 1)
            result["engine_cpu_pct_held"] = round(busy.pct["engines"], 1)
            result["cpu_pct_per_call"] = round(busy.pct["engines"] / max(1, held), 3)
            result["cpu_pct_per_call_marginal"] = round(
                (busy.pct["engines"] - idle.pct["engines"]) / max(1, held), 3
            )
        else:
            print("hold too short for a CPU window; use a longer --hold")
        wait_until(lambda: poller is not None and poller.current == 0, timeout=args.hold + 5)
        poller.halt.set()
        poller.join()
        result["concurrent_answered"] = poller.peak
        if rss_busy:
            calls_at = max(1.0, held)
            result["rss_mb_per_call"] = round(rss_busy / calls_at, 2)
            result["pss_mb_per_call"] = round(pss_busy / calls_at, 2)
            result["rss_mb_per_process"] = round(rss_busy / len(pids), 1)
            print(f"held memory: RSS {rss_busy:.0f} MB ({rss_busy / len(pids):.1f} MB/process, "
                  f"{rss_busy / calls_at:.2f} MB/call), PSS {pss_busy:.0f} MB "
                  f"({pss_busy / calls_at:.2f} MB/call); RSS added by calls "
                  f"{rss_busy - rss_idle:.0f} MB")  # fmt: skip
        wait_until(
            lambda: (
                not CallAttempt.objects.filter(campaign_id=hold_id)
                .exclude(status__in=FINAL_STATUSES)
                .exists()
            ),
            timeout=15,
        )
        hold_rows = attempt_rows(hold_id)
        print(f"hold phase: status {counts(hold_rows, 'status')}, "
              f"hangup {counts(hold_rows, 'hangup_cause')}")  # fmt: skip
        # -- phase 2: setup rate with free engines --------------------------------------------
        if time.monotonic() > run_deadline - 40:
            raise TimeoutError("out of time before the setup phase")
        setup_id = make_campaign(trunk_uri=f"sip:{HOST}:{sipp_port}", name=f"bench setup {t0}",
                                 hold_s=1, contacts=setup_calls, offset=args.calls)  # fmt: skip
        ta = time.monotonic()
        outcome = approve_together(attempt_ids(setup_id))
        print(f"setup phase: {setup_calls} attempts approved in one transaction "
              f"({time.monotonic() - ta:.1f} s): {outcome}")  # fmt: skip
        wait_until(
            lambda: not CallAttempt.objects.filter(campaign_id=setup_id, invite_at=None).exists(),
            timeout=min(60, run_deadline - time.monotonic()),
            every=0.5,
        )
        wait_until(
            lambda: (
                not CallAttempt.objects.filter(campaign_id=setup_id)
                .exclude(status__in=FINAL_STATUSES)
                .exists()
            ),
            timeout=15,
        )
        setup_rows = attempt_rows(setup_id)
        invites = sorted(r["invite_at"] for r in setup_rows if r["invite_at"])
        if len(invites) >= 2:
            span = (invites[-1] - invites[0]).total_seconds()
            result["setups_per_s"] = round((len(invites) - 1) / span, 1) if span else None
            first_round = invites[: min(len(invites), 4 * len(pids))]
            span1 = (first_round[-1] - first_round[0]).total_seconds()
            print(f"setup phase: {len(invites)} INVITEs in {span:.2f} s = "
                  f"{result['setups_per_s']}/s; first {len(first_round)} (all slots free) in "
                  f"{span1:.2f} s = {(len(first_round) - 1) / max(span1, 1e-9):.1f}/s; status "
                  f"{counts(setup_rows, 'status')}")  # fmt: skip

        # -- latencies ----------------------------------------------------------------------
        taken_invite = [
            v
            for r in hold_rows + setup_rows
            if (v := _ms(r["taken_at"], r["invite_at"])) is not None
        ]
        approved_hold = [
            v for r in hold_rows if (v := _ms(r["approved_at"], r["invite_at"])) is not None
        ]
        approved_setup = [
            v for r in setup_rows if (v := _ms(r["approved_at"], r["invite_at"])) is not None
        ]
        invite_answer = [
            v for r in hold_rows if (v := _ms(r["invite_at"], r["answered_at"])) is not None
        ]
        print(latency_line("taken -> INVITE (both phases)", taken_invite))
        print(latency_line("approved -> INVITE (hold phase, one-by-one approval)", approved_hold))
        print(
            latency_line("approved -> INVITE (setup phase, burst, queueing incl.)", approved_setup)
        )
        print(latency_line("INVITE -> answered (hold phase, SIPp answers at once)", invite_answer))
        result["setup_added_p50_ms"] = round(_pct(taken_invite, 0.5), 1)
        result["setup_added_p99_ms"] = round(_pct(taken_invite, 0.99), 1)
        result["approved_to_invite_p50_ms"] = round(_pct(approved_hold, 0.5), 1)
        result["approved_to_invite_p99_ms"] = round(_pct(approved_hold, 0.99), 1)
    finally:
        if poller is not None:
            poller.halt.set()
        t_stop = time.monotonic()
        pool.stop(timeout=30)
        sipp.stop()
        print(f"stopped pool and sipp in {time.monotonic() - t_stop:.1f} s")
    stats = sipp.stats()
    if stats:
        last = stats[-1]
        result["sipp_peak_calls"] = max(int(r.get("CurrentCall") or 0) for r in stats)
        print(f"sipp: peak concurrent calls {result['sipp_peak_calls']}, successful "
              f"{last.get('SuccessfulCall(C)')}, failed {last.get('FailedCall(C)')} (unexpected "
              f"message {last.get('FailedUnexpectedMessage(C)')})")  # fmt: skip
    keys = ["processes", "concurrent_answered", "setups_per_s", "setup_added_p99_ms",
            "rss_mb_per_call", "cpu_pct_per_call"]  # fmt: skip
    ordered = {k: result.get(k) for k in keys} | {k: v for k, v in result.items() if k not in keys}
    print(json.dumps(ordered))


if __name__ == "__main__":
    main()
