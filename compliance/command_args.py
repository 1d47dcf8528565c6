"""Argument parsing shared by the compliance commands."""

from __future__ import annotations

import datetime as dt
import getpass

from django.core.management.base import CommandError, CommandParser


def parse_when(value: str | None, flag: str) -> dt.datetime | None:
    """An ISO 8601 time that must carry its UTC offset ('Z' accepted); bad input exits 2."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{flag} {value!r} is not an ISO 8601 time", returncode=2) from exc
    if parsed.tzinfo is None:
        raise CommandError(f"{flag} {value!r} needs a UTC offset (e.g. +05:30 or Z)", returncode=2)
    return parsed


def cli_actor(by: str | None) -> str:
    """Who a command's change is audited as: --by NAME, else the operating-system user."""
    if by:
        return f"cli:{by.strip()[:140]}"
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "cli:unknown"


def add_by_argument(parser: CommandParser) -> None:
    parser.add_argument("--by", help="who is making this change (audited; default: the OS user)")
