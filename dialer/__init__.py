from __future__ import annotations

from dialer.celery import app as celery_app

__all__ = ["celery_app"]
