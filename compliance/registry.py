"""Loading the DND registry: a full snapshot replaces it atomically and makes a new version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction

from compliance.models import DndEntry, RegistryVersion
from compliance.numbers import to_e164


@transaction.atomic
def registry_replace(
    *, rows: Iterable[tuple[str, str]], as_of: dt.datetime, source: str = ""
) -> RegistryVersion:
    """Replace the registry with rows of (number, preferences); all or nothing."""
    entries = {to_e164(number, region="IN"): prefs.strip() for number, prefs in rows}
    DndEntry.objects.all().delete()
    DndEntry.objects.bulk_create(
        [DndEntry(number=n, preferences=p) for n, p in entries.items()], batch_size=5000
    )
    return RegistryVersion.objects.create(as_of=as_of, source=source, rows=len(entries))
