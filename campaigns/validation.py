"""The rules a campaign, trunk or caller ID must meet before it is saved (issue #10).

A bad setting used to be found by whoever read it first: an engine's database writer, mid-call.
Each model's clean() runs these rules, so the admin shows a field error; its save() runs them
too (check_before_save), so commands, the demo, the dial tool and tests cannot store what the
admin would refuse. Errors are keyed by field, as ModelForm expects.

Two campaign rules are form-only (`complete=True`): a promotional campaign's category and
ends_at after starts_at. The runtime already refuses both safely (the gate blocks every
registry-listed number of an uncategorised promotional campaign; scheduling refuses a campaign
that ends before it starts), and existing code creates such campaigns on purpose: `dial`
defaults to an uncategorised promotional test campaign, and the scheduling tests build a
backwards one to prove the lifecycle refuses it.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from campaigns.retry import MAX_DELAY_S, RETRYABLE, delay_seconds
from compliance.models import Purpose
from compliance.numbers import InvalidNumber, cli_series, to_e164
from compliance.policy import policy_from_settings

if TYPE_CHECKING:
    from campaigns.models.campaign import Campaign
    from campaigns.models.trunk import Trunk

Errors = dict[str, list[str]]

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_BRACKETED = re.compile(r"\[[^\]]*\](:\d+)?")
# Caller IDs are numbers in India's plan: the series rules (140, 1600) are national prefixes.
CLI_REGION = "IN"


def raise_if_any(errors: Errors) -> None:
    if errors:
        raise ValidationError(errors)


def check_before_save(
    instance: models.Model, *, update_fields: Iterable[str] | None, rules: Callable[[], Errors]
) -> None:
    """What save() checks: the fields' own validators (choices, ranges, slugs) and the model's
    rules, limited to the fields being written, so that saving one field of a row stored
    before these rules existed still works. Relations are left to the database's foreign keys
    (validating them here would cost a query each)."""
    names = {f.name for f in instance._meta.concrete_fields}
    checked = names if update_fields is None else names & set(update_fields)
    exclude = {f.name for f in instance._meta.concrete_fields if f.is_relation} | (names - checked)
    errors: Errors = {}
    try:
        instance.clean_fields(exclude=exclude)
    except ValidationError as exc:
        errors = {field: list(messages) for field, messages in exc.message_dict.items()}
    for field, messages in rules().items():
        if field in checked:
            errors.setdefault(field, []).extend(messages)
    raise_if_any(errors)


# -- campaigns ------------------------------------------------------------------------------
def retry_delays_errors(value: object) -> list[str]:
    """A JSON object of retryable dispositions to whole seconds (campaigns.retry.delay_seconds)."""
    example = 'e.g. {"busy": 600, "no_answer": 3600}'
    if not isinstance(value, dict):
        return [f"Must be a JSON object of seconds per disposition, {example} ({{}}: defaults)."]
    errors: list[str] = []
    for key, seconds in value.items():
        if key not in RETRYABLE:
            errors.append(
                f"{key!r} is never retried; only {', '.join(sorted(RETRYABLE))} take a delay."
            )
        elif delay_seconds(seconds) is None:
            errors.append(
                f"{key!r}: {json.dumps(seconds)} is not a whole number of seconds "
                f"from 1 to {MAX_DELAY_S} (7 days)."
            )
    return errors


def agent_url_error(url: str) -> str | None:
    """Blank (no agent), or ws:// / wss:// with a host."""
    if not url:
        return None
    if any(ch.isspace() for ch in url):
        return "The agent URL must not contain spaces or line breaks."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"Not a valid URL: {exc}."
    if parts.scheme not in ("ws", "wss"):
        return "The agent URL must start with ws:// or wss://."
    if not parts.hostname:
        return "The agent URL must name a host, e.g. wss://agent.example.com/stream."
    return None


def campaign_errors(campaign: Campaign, *, complete: bool) -> Errors:
    """complete: also the two form-only rules (see the module docstring)."""
    errors: Errors = {}
    problems = retry_delays_errors(campaign.retry_delays)
    if problems:
        errors["retry_delays"] = problems
    url_error = agent_url_error(campaign.agent_url or "")
    if url_error:
        errors["agent_url"] = [url_error]
    if campaign.window_start is not None and campaign.window_start == campaign.window_end:
        errors["window_end"] = ["The daily window cannot end when it starts: it would never open."]
    if campaign.fallback_trunk_id is not None and campaign.fallback_trunk_id == campaign.trunk_id:
        errors["fallback_trunk"] = ["The fallback trunk must be another trunk than the campaign's."]
    if not complete:
        return errors
    if campaign.purpose == Purpose.PROMOTIONAL and campaign.category is None:
        errors["category"] = ["A promotional campaign needs its TRAI preference category (1-8)."]
    if campaign.starts_at and campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        errors["ends_at"] = ["The end time must be after the start time."]
    return errors


# -- trunks ---------------------------------------------------------------------------------
def _host_error(host: str, *, bracketed: bool) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if bracketed:
        return None if address and address.version == 6 else f"[{host}] is not an IPv6 address."
    if address is not None:
        return None
    labels = host.removesuffix(".").split(".")
    if not host or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return f"{host!r} is not a host name or IP address."
    return None


def sip_uri_error(uri: str) -> str | None:
    """sip:host[:port] or sips:host[:port]; no user part and no parameters (the engine puts
    the callee's number in front of the host, and the transport has its own field)."""
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips"):
        return "Must be sip:host[:port] or sips:host[:port], e.g. sip:sbc.example.com:5060."
    if not rest or any(ch.isspace() or ch in "@;?/#" for ch in rest):
        return "Only host[:port] may follow sip: (no user@, ;parameters, spaces or paths)."
    try:
        parts = urlsplit("//" + rest)
        port = parts.port
    except ValueError:
        port = 0
    if rest.startswith("[") and not _BRACKETED.fullmatch(rest):
        return f"{rest!r} is not [IPv6 address][:port]."
    if port == 0 or rest.endswith(":"):
        return f"{rest!r} is not host[:port] with a port from 1 to 65535."
    return _host_error(parts.hostname or "", bracketed=rest.startswith("["))


def trunk_errors(trunk: Trunk) -> Errors:
    errors: Errors = {}
    uri_error = sip_uri_error(trunk.sip_uri or "")
    if uri_error:
        errors["sip_uri"] = [uri_error]
    if trunk.max_cps is not None and not (math.isfinite(trunk.max_cps) and trunk.max_cps > 0):
        errors["max_cps"] = ["Calls per second must be more than 0."]
    if trunk.max_channels is not None and trunk.max_channels < 1:
        errors["max_channels"] = ["A trunk needs at least one channel."]
    return errors


# -- caller IDs -----------------------------------------------------------------------------
def caller_id_number(raw: object) -> tuple[str, str]:
    """(E.164, series) of a caller ID given as E.164, national or with a trunk 0. The series is
    one of COMPLIANCE_PROMO_SERIES / COMPLIANCE_SERVICE_SERIES, or 'mobile' / 'other'."""
    try:
        e164 = to_e164(str(raw), region=CLI_REGION)
    except InvalidNumber:
        raise ValidationError(
            {
                "number": [
                    f"{raw!r} is not a valid phone number. Give it as +911401234567, "
                    "1401234567 or 01401234567."
                ]
            }
        ) from None
    policy = policy_from_settings()
    return e164, cli_series(e164, series=policy.promo_series + policy.service_series)
