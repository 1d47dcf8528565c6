"""Beat's compliance chores: anchoring the audit chain and applying the retention period."""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings

from compliance.anchors import AnchorError, anchor_append

log = logging.getLogger(__name__)


@shared_task(name="compliance.anchor_audit", queue="dialer")
def anchor_audit() -> None:
    try:
        anchor = anchor_append(path=Path(settings.AUDIT_ANCHOR_FILE))
    except AnchorError as exc:
        # Loud on purpose: a chain that cannot be anchored is one someone may have edited.
        log.critical("audit anchor: %s", exc)
        return
    if anchor is not None:
        log.info("audit anchor: entry %s in %s", anchor.entry_id, settings.AUDIT_ANCHOR_FILE)
