"""Number parsing and caller-ID series, on phonenumbers rather than hand-made prefix tables."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import timezone as pn_timezone


class InvalidNumber(ValueError):
    pass


# phonenumbers is lenient on purpose: it reads letters as keypad digits, "x" or ";ext=" as an
# extension it then drops, and digits of other scripts. A number typed into a form or a file is
# taken only as ASCII digits with the usual separators, so nobody is suppressed, erased or
# called under a number other than the one that was typed.
_NUMBER_CHARS = frozenset("0123456789+-(). ")


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber:
    text = raw.strip()
    if not text or not _NUMBER_CHARS.issuperset(text):
        raise InvalidNumber(f"{raw!r} is not a phone number: only digits, +, spaces, - ( ) .")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"{raw!r} is not a valid number")
    return parsed


def to_e164(raw: str, *, region: str) -> str:
    """Normalise a number given as E.164, national or with a trunk 0; raise InvalidNumber if bad."""
    return phonenumbers.format_number(_parse(raw, region), phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class NumberInfo:
    e164: str
    region: str
    time_zone: str


def number_info(raw: str, *, region: str, fallback_tz: str) -> NumberInfo:
    """Parse once: E.164, region and the callee's zone. Raises InvalidNumber."""
    parsed = _parse(raw, region)
    zones = pn_timezone.time_zones_for_number(parsed)
    zone = fallback_tz
    if len(zones) == 1 and zones[0] != "Etc/Unknown":
        # phonenumbers still names India's zone by its old alias.
        zone = "Asia/Kolkata" if zones[0] == "Asia/Calcutta" else zones[0]
    return NumberInfo(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(parsed) or "",
        time_zone=zone,
    )


def national_digits(cli: str) -> str:
    """A caller ID's Indian national number: '+911401234567', '911401234567', '01401234567' all
    give '1401234567'."""
    digits = "".join(ch for ch in cli if ch.isdigit())
    if cli.strip().startswith("+91") or (len(digits) == 12 and digits.startswith("91")):
        return digits[2:]
    return digits[1:] if digits.startswith("0") else digits


def cli_series(cli: str, *, series: tuple[str, ...] = ("140", "1600")) -> str:
    """Which numbering series a caller ID belongs to: one of the given prefixes (10-digit national
    numbers that start with it), 'mobile' for a regular 10-digit mobile number, else 'other'."""
    national = national_digits(cli)
    for prefix in sorted(series, key=len, reverse=True):
        if national.startswith(prefix) and len(national) == 10:
            return prefix
    try:
        parsed = phonenumbers.parse(national, "IN")
    except phonenumbers.NumberParseException:
        return "other"
    kind = phonenumbers.number_type(parsed)
    if phonenumbers.is_valid_number(parsed) and kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return "mobile"
    return "other"
