"""What both wire codecs (Twilio, Exotel) need to read a JSON text frame safely: parse it into
an object, and pull typed fields out of it, raising CodecError with a clear message otherwise."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class CodecError(ValueError):
    """A WebSocket text frame that is not a valid stream message."""


def load_object(text: str | bytes) -> dict[str, Any]:
    if not isinstance(text, str | bytes):
        raise CodecError(f"expected str or bytes, got {type(text).__name__}")
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:  # json's C scanner recurses per "[": a hostile "[[[[..."
        raise CodecError("not valid JSON: nested too deeply") from exc
    if not isinstance(data, dict):
        raise CodecError(f"expected a JSON object, got {type(data).__name__}")
    return data


def obj_field(parent: dict[str, Any], key: str, event: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise CodecError(f"{event} message needs a {key!r} object")
    return value


def str_field(parent: dict[str, Any], key: str, event: str, *, default: str | None = None) -> str:
    if key not in parent:
        if default is None:
            raise CodecError(f"{event} message is missing {key!r}")
        return default
    value = parent[key]
    if not isinstance(value, str):
        raise CodecError(f"{event} message field {key!r} must be a string")
    return value


def int_field(parent: dict[str, Any], key: str, event: str) -> int | None:
    """A number both codecs accept as an int or a decimal string (Twilio sends strings)."""
    value = parent.get(key)
    if value is None:
        return None
    # bool is an int subclass, and "true" is never a sequence number.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # isascii() too: str.isdigit() accepts characters such as "²" that int() then rejects.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise CodecError(f"{event} message field {key!r} must be a decimal number, got {value!r}")


def b64_field(parent: dict[str, Any], key: str, event: str) -> bytes:
    text = str_field(parent, key, event)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"{event} {key} is not valid base64: {exc}") from exc


def put_if(out: dict[str, Any], key: str, value: object) -> None:
    """Add key when value is set: a field an agent left out stays out, so round trips are exact
    (numbers go on the wire as strings, as both platforms send them)."""
    if value is not None and value != "":
        out[key] = str(value) if isinstance(value, int) else value
