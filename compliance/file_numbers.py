"""Numbers from files we take in, normalised as compliance.numbers.to_e164 does, faster.

phonenumbers.parse costs about 20 us a number, which alone holds a suppression file to under
50k rows/s. The usual spellings of an Indian number (ten digits, a trunk 0, +91) need no
parsing: the number is built directly and checked with the same is_valid_number, which gives
to_e164's answer for them (a test compares the two over many numbers). Anything else goes
through to_e164 itself, which also words the error.
"""

from __future__ import annotations

import phonenumbers

from compliance.numbers import InvalidNumber, to_e164

_INDIA = 91


def _national(text: str) -> str | None:
    """The ten national digits of '9876543210', '09876543210' or '+919876543210', else None."""
    if len(text) == 10:
        national = text
    elif len(text) == 11 and text[0] == "0":
        national = text[1:]
    elif len(text) == 13 and text.startswith("+91"):
        national = text[3:]
    else:
        return None
    # A leading 0 after the trunk prefix or +91 is something phonenumbers reads its own way.
    if not (national.isascii() and national.isdigit()) or national[0] == "0":
        return None
    return national


def file_e164(raw: str) -> str:
    """E.164 of an Indian number as written in a file; raises InvalidNumber like to_e164."""
    national = _national(raw.strip())
    if national is not None:
        number = phonenumbers.PhoneNumber(country_code=_INDIA, national_number=int(national))
        if phonenumbers.is_valid_number(number):
            return "+91" + national
    return to_e164(raw, region="IN")


__all__ = ["InvalidNumber", "file_e164"]
