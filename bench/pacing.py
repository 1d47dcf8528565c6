"""Distributed pacing, measured where it matters: INVITEs arriving at the carrier (SIPp).

    .venv/bin/python bench/pacing.py [--limit 20] [--seconds 10]

Four engine processes (the processes that send INVITEs) take pre-approved attempts of one
campaign whose trunk allows --limit calls per second. SIPp plays the carrier (180, then 486) and
logs every INVITE it receives; from its own timestamps we count the busiest 1-second window and
the sustained rate. The baseline in the same run is the same pool without the Redis pacer
(only the per-tick dispatch pacing, bypassed here by pre-approving): what the limit prevents.
Uses BENCH_DATABASE_URL (default .../dialer_bench_pacing) and Redis db 14.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup_django import setup_django  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/14"
WORKERS = 4
_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


def invite_times(trace: str) -> list[float]:
    """Receive times (epoch seconds) of the initial INVITEs in a SIPp -trace_msg file; a
    retransmission (same Call-ID) is the same call attempt and is not counted again."""
    first_seen: dict[str, float] = {}
    stamp: float | None = None
    in_invite = False
    for line in trace.splitlines():
        found = _STAMP.match(line)
        if found:
            stamp = dt.datetime.fromisoformat(found.group(1)).timestamp()
            in_invite = False
        elif line.startswith("INVITE sip:"):
            in_invite = stamp is not None
        elif in_invite and line.lower().startswith("call-id:") and stamp is not None:
            first_seen.setdefault(line.split(":", 1)[1].strip(), stamp)
            in_invite = False
    return sorted(first_seen.values())


def busiest_window(times: list[float]) -> int:
    """The most INVITEs in any sliding 1-second window."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def run(*, paced: bool, limit: float, calls: int, workdir: Path) -> tuple[int, float, int]:
    from campaigns.models import CallAttempt, Contact, ContactList
    from campaigns.services.claim_check import attempt_process
    from dialer.processes import ManagedProcess, manage_cmd
    from telephony.pool.models import EngineProcess
    from tests.helpers.factories import make_caller_id, make_campaign, make_sender, make_trunk
    from tests.helpers.sipp import SippUAS, free_udp_port

    env = dict(os.environ, DIAL_APPROVAL_MAX_AGE_S="600", PYTHONUNBUFFERED="1")
    env.pop("REDIS_URL", None)
    if paced:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
    with SippUAS(
        "uas_reject.xml", keys={"code": "486", "reason": "Busy Here"}, workdir=workdir
    ) as uas:
        run_id = f"{time.time_ns() % 10**6:06d}"  # the bench database persists across runs
        sender = make_sender(sector="bfsi", dlt_entity_id=f"1101PACE{run_id}")
        trunk = make_trunk(name=f"pace-{run_id}", sip_uri=uas.uri, max_cps=limit, max_channels=1000)
        cli = make_caller_id(number=f"+911600{run_id}", sender=sender)
        campaign = make_campaign(
            sender=sender,
            trunk=trunk,
            caller_ids=[cli],
            purpose="transactional",
            max_cps=1000,
            max_concurrent=1000,
            status="running",
        )
        contact_list = ContactList.objects.create(campaign=campaign, name="bench")
        EngineProcess.objects.update(stopped_at=dt.datetime.now(dt.UTC))
        pool = ManagedProcess(
            "engine-paced" if paced else "engine-free",
            manage_cmd(
                "run_engine",
                "--processes",
                str(WORKERS),
                "--base-port",
                str(free_udp_port()),
                "--drain-seconds",
                "3",
            ),
            env=env,
            log_dir=workdir,
        )
        try:
            pool.start(ready="engine ready", timeout=60)
            deadline = time.monotonic() + 30
            while EngineProcess.objects.filter(stopped_at=None).count() < WORKERS:
                assert time.monotonic() < deadline, "the engine pool did not come up"
                time.sleep(0.2)
            ids = []
            for i in range(calls):
                contact = Contact.objects.create(
                    campaign=campaign,
                    contact_list=contact_list,
                    number=f"+9198{i:08d}",
                    status="in_progress",
                    attempts=1,
                )
                ids.append(
                    CallAttempt.objects.create(
                        campaign=campaign, contact=contact, attempt_number=1, number=contact.number
                    ).pk
                )
            for attempt_id in ids:
                attempt_process(attempt_id=attempt_id)
            deadline = time.monotonic() + calls / limit * 3 + 30
            while CallAttempt.objects.filter(id__in=ids, ended_at=None).exists():
                assert time.monotonic() < deadline, "the calls did not finish"
                time.sleep(0.2)
        finally:
            pool.stop()
        times = sorted(invite_times(uas.message_file.read_text(errors="replace")))
    sustained = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    per_second = [0] * (int(times[-1] - times[0]) + 1) if times else []
    for t in times:
        per_second[int(t - times[0])] += 1
    print(f"  INVITEs per second ({'paced' if paced else 'free'}): {per_second}")
    return busiest_window(times), sustained, len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    # A database of its own: engines of another benchmark would take these attempts.
    setup_django(database="dialer_bench_pacing")
    calls = int(args.limit * args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        free_max, free_rate, free_n = run(
            paced=False, limit=args.limit, calls=calls, workdir=Path(tmp) / "free"
        )
        print(
            f"without the pacer: {free_n} INVITEs, busiest 1 s window {free_max}, "
            f"{free_rate:.1f} calls/s"
        )
        paced_max, paced_rate, paced_n = run(
            paced=True, limit=args.limit, calls=calls, workdir=Path(tmp) / "paced"
        )
        print(
            f"with the pacer: {paced_n} INVITEs, busiest 1 s window {paced_max} "
            f"(limit {args.limit:g}), sustained {paced_rate:.2f} calls/s "
            f"= {100 * paced_rate / args.limit:.1f}% of the limit"
        )
    print(
        json.dumps(
            {
                "workers": WORKERS,
                "limit_cps": args.limit,
                "max_window_calls": paced_max,
                "sustained_cps": round(paced_rate, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
