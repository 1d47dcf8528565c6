"""Numbers from files we take in, normalised as compliance.numbers.to_e164 does, faster.

phonenumbers.parse costs about 20 us a number, which alone holds a suppression file to under
50k rows/s, and is_valid_number another 13 (it tries up to ten patterns, compiling each again
through re's cache). The usual spellings of an Indian number (ten digits, a trunk 0, +91) need
neither: the ten national digits are checked against the same patterns of phonenumbers'
metadata, compiled once, which gives is_valid_number's answer for them (a test compares the two
over every four-digit prefix). Anything else goes through to_e164 itself, which also words
the error.
"""

from __future__ import annotations

import re

from phonenumbers import PhoneMetadata

from compliance.numbers import InvalidNumber, to_e164

_LENGTH = 10


def _ten_digit_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """is_valid_number for a ten-digit Indian national number: it must match the general
    description and one of the number types that take ten digits (phonenumbers'
    _number_type_helper, each type tried only when its possible lengths allow ten)."""
    meta = PhoneMetadata.metadata_for_region("IN")
    if meta is None:  # phonenumbers without India: leave every number to to_e164
        return re.compile("(?!)"), re.compile("(?!)")

    def pattern(desc: object) -> str | None:
        lengths = getattr(desc, "possible_length", None) or ()
        text = getattr(desc, "national_number_pattern", None)
        return text if text and (not lengths or _LENGTH in lengths) else None

    kinds = (meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip,
             meta.personal_number, meta.pager, meta.uan, meta.voicemail, meta.fixed_line,
             meta.mobile)  # fmt: skip
    typed = [p for p in map(pattern, kinds) if p]
    general = pattern(meta.general_desc)
    if general is None or not typed:
        return re.compile("(?!)"), re.compile("(?!)")
    return re.compile(general), re.compile("|".join(f"(?:{p})" for p in typed))


_GENERAL, _TYPED = _ten_digit_patterns()


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


def indian_e164(text: str) -> str | None:
    """E.164 of a valid Indian number in one of the usual spellings; None for anything else,
    which the caller parses in full (that also words why a number is not valid)."""
    national = _national(text)
    if national is not None and _GENERAL.fullmatch(national) and _TYPED.fullmatch(national):
        return "+91" + national
    return None


def file_e164(raw: str) -> str:
    """E.164 of an Indian number as written in a file; raises InvalidNumber like to_e164."""
    return indian_e164(raw.strip()) or to_e164(raw, region="IN")


__all__ = ["InvalidNumber", "file_e164", "indian_e164"]
