"""What both wire codecs (Twilio, Exotel) need to read a JSON text frame safely: parse it into
an object, and pull typed fields out of it, raising CodecError with a clear message otherwise."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# Sequence numbers, chunks and timestamps fit in 63 bits; anything longer is not one, and int()
# of a 5,000-digit string raises a plain ValueError (Python's 4,300-digit limit) besides.
MAX_NUMBER = 2**63 - 1
MAX_NUMBER_DIGITS = len(str(MAX_NUMBER))
# Names and ids are short; a mark name is echoed back, so a long one would cost us twice.
MAX_FIELD_CHARS = 1024


class CodecError(ValueError):
    """A WebSocket text frame that is not a valid stream message."""


def preview(value: object) -> str:
    """A value for an error message, cut short: errors are logged, and agents choose the value."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_object(text: str | bytes) -> dict[str, Any]:
    if not isinstance(text, str | bytes):
        raise CodecError(f"expected str or bytes, got {type(text).__name__}")
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int of 4,300+ digits
        raise CodecError(f"not valid JSON: {preview(str(exc))}") from exc
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


def str_field(
    parent: dict[str, Any],
    key: str,
    event: str,
    *,
    default: str | None = None,
    max_chars: int | None = MAX_FIELD_CHARS,
) -> str:
    if key not in parent:
        if default is None:
            raise CodecError(f"{event} message is missing {key!r}")
        return default
    value = parent[key]
    if not isinstance(value, str):
        raise CodecError(f"{event} message field {key!r} must be a string")
    if max_chars is not None and len(value) > max_chars:
        raise CodecError(f"{event} message field {key!r} is over {max_chars} characters")
    return value


def int_field(parent: dict[str, Any], key: str, event: str) -> int | None:
    """A number both codecs accept as an int or a decimal string (Twilio sends strings)."""
    value = parent.get(key)
    if value is None:
        return None
    # bool is an int subclass, and "true" is never a sequence number.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    # isascii() too: str.isdigit() accepts characters such as "²" that int() then rejects.
    elif (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= MAX_NUMBER_DIGITS
    ):
        number = int(value)
    else:
        raise CodecError(
            f"{event} message field {key!r} must be a decimal number, got {preview(value)}"
        )
    if not 0 <= number <= MAX_NUMBER:
        raise CodecError(f"{event} message field {key!r} is out of range: {preview(value)}")
    return number


def b64_field(parent: dict[str, Any], key: str, event: str) -> bytes:
    return b64_prefix_field(parent, key, event, max_bytes=None)[0]


def b64_prefix_field(
    parent: dict[str, Any], key: str, event: str, *, max_bytes: int | None
) -> tuple[bytes, int]:
    """The first max_bytes (None: all) of a base64 field, decoded, and how many bytes follow.

    Only what is kept is decoded, and checked: an agent may send 16 MiB of audio in one message,
    and decoding all of it to keep a few frames would cost the loop every call shares. Past the
    cut only the length is looked at."""
    text = str_field(parent, key, event, max_chars=None)
    need = None if max_bytes is None else -(-max(0, max_bytes) // 3) * 4
    whole = need is None or len(text) <= need
    if not whole and len(text) % 4:
        raise CodecError(f"{event} {key} is not valid base64: its length is not a multiple of 4")
    try:
        data = base64.b64decode(text if whole else text[:need], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"{event} {key} is not valid base64: {exc}") from exc
    total = len(data) if whole else len(text) // 4 * 3 - text[-2:].count("=")
    if max_bytes is not None and len(data) > max_bytes:
        data = data[: max(0, max_bytes)]
    return data, total - len(data)


def put_if(out: dict[str, Any], key: str, value: object) -> None:
    """Add key when value is set: a field an agent left out stays out, so round trips are exact
    (numbers go on the wire as strings, as both platforms send them)."""
    if value is not None and value != "":
        out[key] = str(value) if isinstance(value, int) else value
