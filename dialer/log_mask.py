"""Phone numbers in log lines keep only their last four digits: +919876543210 -> +91******3210.

Logs leave the process (journald, a log service, a support ticket) and are kept outside the
retention and erasure rules that apply to call data, so a number must not be readable in them.
Four digits are enough to tell two calls apart when reading a log against the admin.
"""

from __future__ import annotations

import logging
import re

# A run of 10-15 digits (E.164 is at most 15), optionally after "+", not part of a longer run,
# a word, a decimal fraction or a dashed id (a UUID group). Shorter runs (ports, pids, attempt
# ids, times) and longer ones (time_ns, hashes) are not phone numbers. A 10-digit Unix time
# would be masked too: the line's own timestamp is in asctime.
_NUMBER = re.compile(r"(?<![\w.\-+])(\+?)(\d{10,15})(?!\w)")
_KEEP = 4  # last digits kept
_NATIONAL = 10  # digits of a national number (IN, NANP); those before it are the country code


def _mask(match: re.Match[str]) -> str:
    plus, digits = match.group(1), match.group(2)
    country = digits[: len(digits) - _NATIONAL]
    return f"{plus}{country}{'*' * (_NATIONAL - _KEEP)}{digits[-_KEEP:]}"


def mask_numbers(text: str) -> str:
    return _NUMBER.sub(_mask, text)


class MaskNumbers(logging.Filter):
    """On a handler: rewrites the record's message (arguments merged in), traceback and stack.

    The record is shared with the handlers after this one, which then see the masked text too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A broken format (wrong argument count): leave it to the handler's error report.
            return True
        record.msg, record.args = mask_numbers(message), None
        if record.exc_info and not record.exc_text:
            # Formatted here so the formatter uses this (masked) text instead of its own.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        return True
