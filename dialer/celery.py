from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_init

from dialer.log_mask import MaskNumbers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dialer.settings")

app = Celery("dialer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)


@app.on_after_configure.connect
def _schedule(sender: Celery, **_: object) -> None:
    from django.conf import settings

    sender.add_periodic_task(settings.DIALER_TICK_SECONDS, sender.signature("campaigns.dispatch"))
    sender.add_periodic_task(5.0, sender.signature("campaigns.reap"))
    sender.add_periodic_task(10.0, sender.signature("campaigns.schedule"))
    sender.add_periodic_task(
        float(settings.AUDIT_ANCHOR_INTERVAL_S), sender.signature("compliance.anchor_audit")
    )
    sender.add_periodic_task(24 * 3600.0, sender.signature("campaigns.retention"))


@worker_init.connect
def one_solo_worker_on_filesystem_broker(sender: Any, **_: object) -> None:
    """On the embedded broker, `-c 4` (as the README writes the worker command) or `-P prefork`
    become one solo process: a command-line -c beats CELERY_WORKER_CONCURRENCY, so settings alone
    cannot hold it (see CELERY_WORKER_POOL in dialer/settings.py for why one)."""
    if not str(sender.app.conf.broker_url).startswith("filesystem://"):
        return
    # A class once the command line named a pool (or fell back to the setting), else an alias.
    pool = sender.pool_cls if isinstance(sender.pool_cls, str) else sender.pool_cls.__module__
    if "solo" in pool and sender.concurrency == 1:
        return
    log.warning(
        "filesystem broker: one solo worker process, whatever -c/-P say (%s x %s asked); "
        "use Redis (REDIS_URL) for a pool",
        pool.rsplit(".", 1)[-1],
        sender.concurrency,
    )
    sender.pool_cls = "solo"
    sender.concurrency = 1


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_numbers_in_celery_logs(logger: logging.Logger, **_: object) -> None:
    # Celery replaces the root logger's handlers (the console handler of settings.LOGGING with
    # its filter) with its own in workers and beat; numbers stay masked there too.
    for handler in logger.handlers:
        if not any(isinstance(f, MaskNumbers) for f in handler.filters):
            handler.addFilter(MaskNumbers())
