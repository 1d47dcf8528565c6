"""Strict parsers for environment settings: a bad value stops start-up with a clear message."""

from __future__ import annotations

import os
from pathlib import Path


class SettingError(ValueError):
    pass


def env_str(name: str, default: str = "") -> str:
    """A string from NAME, or from the file named by NAME_FILE (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise SettingError(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingError(f"{name}={raw!r} is not an integer") from exc
    if minimum is not None and value < minimum:
        raise SettingError(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(
    name: str,
    *,
    dev_default: str,
    required: bool,
    min_length: int = 32,
    distinct_from: dict[str, str] | None = None,
) -> str:
    """A secret from NAME or NAME_FILE. With required (DEBUG off) it must be set, not the
    development default, at least min_length characters and unlike every secret in
    distinct_from (name -> value): one leaked key must not unlock another's job."""
    value = env_str(name, "")
    if not required:
        return value or dev_default
    if not value:
        raise SettingError(f"{name} (or {name}_FILE) must be set when DEBUG is off")
    if value == dev_default:
        raise SettingError(f"{name} is the development default; set a real secret")
    if len(value) < min_length:
        raise SettingError(f"{name} must be at least {min_length} characters")
    for other_name, other in (distinct_from or {}).items():
        if value == other:
            raise SettingError(f"{name} must differ from {other_name}")
    return value
