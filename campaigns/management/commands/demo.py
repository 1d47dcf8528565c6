"""python manage.py demo: the whole stack on embedded defaults, one campaign dialed end to end.

Starts the built-in SIP callee, the reference agent, a 2-process engine pool and a Celery worker
with beat (filesystem broker, SQLite: no servers), runs a campaign of a dozen contacts, prints
what happened to each, writes the audit export, and stops everything it started.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.demo_data import demo_setup
from campaigns.models import CallAttempt, Campaign, CampaignStatus
from campaigns.services.lifecycle import campaign_start
from compliance.exports import audit_export
from compliance.policy import in_window, parse_window
from compliance.selectors import audit_entry_list
from dialer.processes import ManagedProcess, celery_cmd, free_port, manage_cmd


def _free_udp_pair() -> int:
    for _ in range(50):
        base = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", base + 1))
            return base
        except OSError:
            continue
    raise CommandError("no two free consecutive UDP ports on 127.0.0.1")


class Command(BaseCommand):
    help = "Run the demo: a dozen calls through the whole stack on embedded defaults."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=100.0)

    def handle(self, *args: Any, **opts: Any) -> None:
        run_dir = Path(settings.VAR_DIR) / "demo"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            # Messages a previous, interrupted run left behind would only be no-ops; drop them.
            shutil.rmtree(settings.CELERY_QUEUE_DIR, ignore_errors=True)
            Path(settings.CELERY_QUEUE_DIR).mkdir(parents=True)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="dialer.settings", PYTHONUNBUFFERED="1")
        self._explain_window(env)

        callee_port, agent_port, engine_port = (
            free_port(socket.SOCK_DGRAM),
            free_port(socket.SOCK_STREAM),
            _free_udp_pair(),
        )
        procs = [
            ManagedProcess("callee", manage_cmd("run_callee", "--port", str(callee_port)),
                           env=env, log_dir=run_dir),
            ManagedProcess("agent", manage_cmd("run_agent", "--port", str(agent_port),
                                               "--talk-seconds", "3"), env=env, log_dir=run_dir),
            ManagedProcess("engine", manage_cmd("run_engine", "--processes", "2", "--base-port",
                                                str(engine_port), "--drain-seconds", "10"),
                           env=env, log_dir=run_dir),
            ManagedProcess("worker", celery_cmd("worker", "-B", "--pool", "solo", "-Q", "dialer",
                                                "--loglevel", "INFO", "-s",
                                                str(run_dir / "beat-schedule")),
                           env=env, log_dir=run_dir),
        ]  # fmt: skip
        ready = ["callee listening", "agent listening", "engine ready", "ready."]
        started = time.monotonic()
        try:
            for proc, line in zip(procs, ready, strict=True):
                self.stdout.write(f"starting {proc.name} ...")
                proc.start(ready=line, timeout=60)
            campaign = demo_setup(
                callee_uri=f"sip:127.0.0.1:{callee_port}", agent_url=f"ws://127.0.0.1:{agent_port}"
            )
            campaign_start(campaign_id=campaign.pk)
            self.stdout.write(f"dialing '{campaign.name}' ({campaign.contacts.count()} contacts)")
            self._wait(campaign.pk, opts["timeout"])
        finally:
            for proc in reversed(procs):
                proc.stop()
        self._report(campaign.pk, run_dir)
        self.stdout.write(f"demo finished in {time.monotonic() - started:.1f}s; logs in {run_dir}")

    def _explain_window(self, env: dict[str, str]) -> None:
        now_ist = dt.datetime.now(ZoneInfo("Asia/Kolkata"))
        if in_window(parse_window(settings.COMPLIANCE_PROMO_WINDOW), now_ist.time()):
            return
        # The real window would block every promotional call now; say so and widen it for the
        # demo's processes only, so the other rules can still be seen at work.
        env["COMPLIANCE_PROMO_WINDOW"] = "00:00-24:00"
        self.stdout.write(
            f"note: it is {now_ist:%H:%M} in India, outside the promotional window "
            f"{settings.COMPLIANCE_PROMO_WINDOW}; the demo runs with "
            "COMPLIANCE_PROMO_WINDOW=00:00-24:00 (a real deployment keeps the default)."
        )

    def _wait(self, campaign_id: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = Campaign.objects.values_list("status", flat=True).get(id=campaign_id)
            if status == CampaignStatus.COMPLETED:
                return
            time.sleep(0.5)
        raise CommandError(f"the demo campaign did not complete within {timeout:.0f}s")

    def _report(self, campaign_id: int, run_dir: Path) -> None:
        attempts = CallAttempt.objects.filter(campaign_id=campaign_id).select_related("contact")
        header = f"{'contact':<8} {'number':<14} {'disposition':<15} {'sip':>4} {'pdd_ms':>6} "
        header += f"{'secs':>5} {'to/from agent':>13} {'mos':>4}  reasons"
        self.stdout.write("\n" + header + "\n" + "-" * len(header))
        for a in attempts.order_by("contact__number"):
            reasons = ", ".join(a.reasons) if a.reasons else a.hangup_cause
            frames = f"{a.agent_frames_out}/{a.agent_frames_in}" if a.answered_at else ""
            mos = f"{a.mos:.1f}" if a.mos is not None else ""
            secs = f"{a.duration_s:.1f}" if a.duration_s else ""
            self.stdout.write(
                f"{a.contact.name:<8} {a.number:<14} {a.disposition:<15} {a.sip_code or '':>4} "
                f"{a.pdd_ms if a.pdd_ms is not None else '':>6} "
                f"{secs:>5} {frames:>13} {mos:>4}  {reasons}"
            )
        export = run_dir / f"audit-campaign-{campaign_id}.csv"
        with export.open("w", newline="") as out:
            count = audit_export(
                entries=audit_entry_list(campaign_id=campaign_id), out=out, fmt="csv"
            )
        self.stdout.write(f"\naudit export: {count} entries in {export}")
