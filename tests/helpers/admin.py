"""Driving the admin's forms as a browser would, through Django's test client."""

from __future__ import annotations

from typing import Any

from django.forms import CheckboxInput, MultiWidget
from django.test import Client


def admin_form_data(client: Client, url: str) -> dict[str, Any]:
    """What the admin's form would post back unchanged, read from the page's own form."""
    form = client.get(url).context["adminform"].form
    data: dict[str, Any] = {}
    for field in form:
        value, widget = field.value(), field.field.widget
        if isinstance(widget, MultiWidget):  # the split date/time inputs
            for i, part in enumerate(widget.decompress(value) or []):
                data[f"{field.html_name}_{i}"] = "" if part is None else str(part)
        elif isinstance(widget, CheckboxInput):
            if value:
                data[field.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[field.html_name] = [str(v) for v in value]
        else:
            data[field.html_name] = "" if value is None else str(value)
    return data
