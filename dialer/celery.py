from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dialer.settings")

app = Celery("dialer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _schedule(sender: Celery, **_: object) -> None:
    from django.conf import settings

    sender.add_periodic_task(settings.DIALER_TICK_SECONDS, sender.signature("campaigns.dispatch"))
    sender.add_periodic_task(5.0, sender.signature("campaigns.reap"))
    sender.add_periodic_task(10.0, sender.signature("campaigns.schedule"))
